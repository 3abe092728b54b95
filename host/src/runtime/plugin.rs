//! A loaded plugin version: its compiled component, its manifest and
//! limits, its call slots, and its health (failed calls in a row, and the
//! quarantine they lead to). The call path is in `call.rs`.

use std::sync::Arc;
use std::time::Duration;

use onething_registry::Manifest;

use super::bindings::WorldPre;
use super::cache::CacheOutcome;
use super::{CallFailure, CallSuccess, PluginError};
use crate::config::LimitsConfig;
use crate::metrics::{Metrics, PluginMetrics};
use crate::model::ScenarioInfo;
use crate::storage::{DatasetReader, ItemReader};

/// Why a plugin version stopped taking new cases.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Quarantine {
    /// When.
    pub since: chrono::DateTime<chrono::Utc>,
    /// The failures that caused it.
    pub reason: String,
}

#[derive(Debug, Default)]
pub(super) struct Health {
    pub(super) failures_in_a_row: u32,
    pub(super) quarantine: Option<Quarantine>,
}

/// A compiled, checked plugin version, ready to be called.
pub struct LoadedPlugin {
    pub(super) health: std::sync::Mutex<Health>,
    pub(super) quarantine_after: u32,
    pub(super) manifest: Arc<Manifest>,
    pub(super) version: String,
    pub(super) cached: CacheOutcome,
    pub(super) metrics: Arc<PluginMetrics>,
    pub(super) host_metrics: Arc<Metrics>,
    pub(super) slots: Arc<tokio::sync::Semaphore>,
    pub(super) max_concurrent: u32,
    pub(super) memory_budget: Arc<tokio::sync::Semaphore>,
    pub(super) reserve_mib: u32,
    pub(super) queue_timeout: Duration,
    pub(super) info: ScenarioInfo,
    pub(super) pre: WorldPre,
    pub(super) datasets: Arc<dyn DatasetReader>,
    pub(super) items: Arc<dyn ItemReader>,
    pub(super) memory_bytes: usize,
    pub(super) memory_mib: u32,
    pub(super) deadline_ms: u32,
    pub(super) limits: Arc<LimitsConfig>,
}

impl LoadedPlugin {
    /// The manifest.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// The version, as text.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// Why this version takes no new cases, if it is quarantined.
    pub fn quarantine(&self) -> Option<Quarantine> {
        self.health
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .quarantine
            .clone()
    }

    /// Lifts a quarantine (an operator's decision); returns whether there
    /// was one.
    pub fn reactivate(&self) -> bool {
        let mut health = self.health.lock().unwrap_or_else(|e| e.into_inner());
        health.failures_in_a_row = 0;
        health.quarantine.take().is_some()
    }

    /// Failed calls in a row, for operators.
    pub fn failures_in_a_row(&self) -> u32 {
        self.health
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .failures_in_a_row
    }

    /// Counts a call's result towards quarantine: failures of the plugin
    /// itself count, refusals by the scenario and busy answers do not.
    pub(super) fn note_health(&self, answer: &Result<CallSuccess, CallFailure>) {
        let mut health = self.health.lock().unwrap_or_else(|e| e.into_inner());
        match answer {
            Err(CallFailure {
                error:
                    error @ (PluginError::Trap(_)
                    | PluginError::Timeout { .. }
                    | PluginError::OutOfMemory { .. }
                    | PluginError::InvalidAnswer(_)
                    | PluginError::BoundExceeded(_)),
                ..
            }) => {
                health.failures_in_a_row += 1;
                if health.failures_in_a_row >= self.quarantine_after && health.quarantine.is_none()
                {
                    let reason = format!(
                        "{} failed calls in a row; the last: {error}",
                        health.failures_in_a_row
                    );
                    tracing::error!(scenario = %self.manifest.id, plugin_version = %self.version, %reason, "plugin quarantined");
                    health.quarantine = Some(Quarantine {
                        since: chrono::Utc::now(),
                        reason,
                    });
                }
            }
            Err(_) => {}
            Ok(_) => health.failures_in_a_row = 0,
        }
    }

    /// Whether the compiled code came from the compile cache.
    pub fn cache_outcome(&self) -> CacheOutcome {
        self.cached
    }

    /// What `describe()` answered at load time.
    pub fn info(&self) -> &ScenarioInfo {
        &self.info
    }
}
