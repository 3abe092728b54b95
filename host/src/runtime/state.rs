//! What one plugin call's store holds: its WASI context (no files, no
//! environment, no sockets), its memory limiter, and the effects the call
//! has asked for so far.
//!
//! Effects are only collected here, never written: the service layer
//! commits them together with the call's outcome, or drops them when the
//! call fails (see `service/commit.rs`).

use std::sync::Arc;
use std::time::Instant;

use wasmtime::ResourceLimiter;
use wasmtime_wasi::{ResourceTable, WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

use onething_registry::Manifest;

use super::bindings::wit::Error as WitError;
use crate::limits::LimitsConfig;
use crate::model::{Due, Priority};
use crate::places::{PlaceTree, Routed, Target};
use crate::storage::{DatasetReader, ItemReader};

/// The call's WASI wall clock: it reads the case clock (`case-info.clock`,
/// the service's now) at the call's start and runs on from there, so
/// `SystemTime::now()` in a plugin agrees with the host.
struct CaseWallClock {
    at_start: std::time::Duration,
    started: Instant,
}

impl CaseWallClock {
    fn new(now: chrono::DateTime<chrono::Utc>) -> Self {
        let at_start = now
            .signed_duration_since(chrono::DateTime::UNIX_EPOCH)
            .to_std()
            .unwrap_or_default();
        CaseWallClock {
            at_start,
            started: Instant::now(),
        }
    }
}

impl wasmtime_wasi::HostWallClock for CaseWallClock {
    fn resolution(&self) -> std::time::Duration {
        std::time::Duration::from_nanos(1)
    }

    fn now(&self) -> std::time::Duration {
        self.at_start.saturating_add(self.started.elapsed())
    }
}

/// Which export a call runs; `describe` may not read or dispatch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Loading the plugin: `describe`.
    Describe,
    /// `start` or `on-event` for a case.
    Case,
}

/// Which plugin is calling, for which case and in which phase, and the
/// place tree as of the call's start (for `submit`'s place targets and the
/// routing of its items when it returns).
pub(crate) struct CallIdentity {
    pub manifest: Arc<Manifest>,
    pub case_id: String,
    pub phase: Phase,
    pub metrics: Arc<crate::metrics::PluginMetrics>,
    pub places: Arc<PlaceTree>,
}

/// A read a plugin made, allowed or not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataRead {
    /// `DEPARTMENT/NAME`.
    pub dataset: String,
    /// The record's key.
    pub key: String,
    /// Why, as the plugin said.
    pub purpose: String,
    /// Whether the grant allowed it.
    pub allowed: bool,
    /// Whether a record was found.
    pub found: bool,
}

/// A work item a plugin asked to dispatch.
#[derive(Debug, Clone, PartialEq)]
pub struct Dispatched {
    /// The id handed back to the plugin.
    pub id: String,
    /// The department.
    pub department: String,
    /// The task.
    pub task: String,
    /// The payload.
    pub payload: serde_json::Value,
    /// The time limit.
    pub due: Due,
    /// How urgent it is.
    pub priority: Priority,
    /// The time limit at each level up, if it escalates.
    pub escalation: Option<Due>,
    /// The time the office has to take it (报到), if it has a report step.
    pub report_due: Option<Due>,
    /// Where the plugin sent it (none: the case's place).
    pub target: Option<Target>,
    /// Where the host routed it when the call returned (see
    /// [`PlaceTree::route`](crate::places::PlaceTree::route)).
    pub routed: Routed,
}

/// What a denied attempt tried to reach.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DeniedKind {
    /// A read of an ungranted dataset.
    Read,
    /// A dispatch to an ungranted department.
    Dispatch,
}

impl DeniedKind {
    /// `read` or `dispatch`.
    pub fn as_str(self) -> &'static str {
        match self {
            DeniedKind::Read => "read",
            DeniedKind::Dispatch => "dispatch",
        }
    }
}

/// The denied attempts of one call at one target, summed: one audit
/// record per target and call, however often the plugin tried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denied {
    /// A read or a dispatch.
    pub kind: DeniedKind,
    /// The dataset or department.
    pub target: String,
    /// How many times this call tried.
    pub attempts: u32,
}

/// Everything a call asked the host to do, in the order it asked.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Effects {
    /// Data reads (kept on record even when the call fails).
    pub reads: Vec<DataRead>,
    /// Work items to dispatch.
    pub items: Vec<Dispatched>,
    /// Messages for the applicant.
    pub notifications: Vec<String>,
    /// Pending items of the case to cancel.
    pub cancelled: Vec<String>,
    /// Denied reads and dispatches, one entry per target.
    pub denied: Vec<Denied>,
}

/// The bytes a string takes when the host stores it as a JSON string: a
/// quote or backslash takes two, a control character up to six. Budgets
/// count these, so that what a plugin can make the host store is bounded
/// by them, not by its text's length alone.
pub fn stored_len(text: &str) -> usize {
    text.bytes().fold(0usize, |n, b| {
        n.saturating_add(match b {
            b'"' | b'\\' => 2,
            0..0x20 => 6,
            _ => 1,
        })
    })
}

/// The bytes a JSON value takes when the host stores it (compact JSON).
pub fn stored_json_len(value: &serde_json::Value) -> usize {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 = self.0.saturating_add(buf.len());
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(0);
    match serde_json::to_writer(&mut count, value) {
        Ok(()) => count.0,
        Err(_) => usize::MAX,
    }
}

/// Refuses memory growth past the plugin's limit and remembers that it did,
/// so that the failure is reported as out-of-memory rather than as the trap
/// the guest turns it into.
pub(crate) struct MemoryLimiter {
    pub max_bytes: usize,
    pub max_table_elements: usize,
    pub exceeded: bool,
}

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.max_bytes {
            self.exceeded = true;
            return Ok(false);
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= self.max_table_elements)
    }
}

/// The data of one call's store.
pub(crate) struct HostState {
    wasi: WasiCtx,
    table: ResourceTable,
    pub limiter: MemoryLimiter,
    pub deadline: Instant,
    pub identity: CallIdentity,
    pub limits: Arc<LimitsConfig>,
    /// Where `query` reads dataset records.
    pub datasets: Arc<dyn DatasetReader>,
    /// Where `cancel` reads the item it is asked to cancel.
    pub items: Arc<dyn ItemReader>,
    pub effects: Effects,
    pub log_lines: u32,
    pub log_dropped: u32,
    /// Bytes of effects the host would keep, so far (`max_call_effect_bytes`).
    pub spent: usize,
    /// Denied attempts so far (`max_denied_per_call`).
    pub denied_attempts: usize,
    /// The first bound this call crossed: once set, the call fails as a
    /// plugin fault whatever it returns.
    pub poisoned: Option<String>,
}

impl HostState {
    pub fn new(
        identity: CallIdentity,
        limits: Arc<LimitsConfig>,
        datasets: Arc<dyn DatasetReader>,
        items: Arc<dyn ItemReader>,
        max_memory_bytes: usize,
        deadline: Instant,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Self {
        // No preopened directories, no environment, no arguments, no
        // network: a plugin reaches the world only through onething's own
        // interfaces. Standard output and error are discarded.
        let wasi = WasiCtxBuilder::new()
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .wall_clock(CaseWallClock::new(now))
            .build();
        HostState {
            wasi,
            table: ResourceTable::new(),
            limiter: MemoryLimiter {
                max_bytes: max_memory_bytes,
                max_table_elements: limits.max_table_elements,
                exceeded: false,
            },
            deadline,
            identity,
            limits,
            datasets,
            items,
            effects: Effects::default(),
            log_lines: 0,
            log_dropped: 0,
            spent: 0,
            denied_attempts: 0,
            poisoned: None,
        }
    }

    /// Refuses a value past its bound: the host function answers
    /// `invalid`, naming the bound, and the whole call is poisoned.
    pub fn cross(&mut self, what: &str, size: usize, max: usize, key: &str) -> WitError {
        let message =
            format!("{what} is {size}; at most {max} are allowed (limits.{key}): the call fails");
        if self.poisoned.is_none() {
            // Logged once per call: a plugin that goes on crossing bounds
            // in a loop writes no more lines.
            tracing::warn!(bound = key, size, max, "plugin crossed a bound");
            self.poisoned = Some(message.clone());
        }
        WitError::Invalid(message)
    }

    /// Checks one value's size against its bound.
    pub fn within(
        &mut self,
        what: &str,
        size: usize,
        max: usize,
        key: &str,
    ) -> Result<(), WitError> {
        if size > max {
            return Err(self.cross(what, size, max, key));
        }
        Ok(())
    }

    /// Adds `bytes` that the host would keep to the call's budget.
    pub fn spend(&mut self, bytes: usize) -> Result<(), WitError> {
        let total = self.spent.saturating_add(bytes);
        let max = self.limits.max_call_effect_bytes;
        if total > max {
            return Err(self.cross(
                "the bytes of this call's effects",
                total,
                max,
                "max_call_effect_bytes",
            ));
        }
        self.spent = total;
        Ok(())
    }

    /// Counts a denied attempt at `target`: summed per target for the audit
    /// log; past `max_denied_per_call` attempts the call is poisoned.
    pub fn deny(&mut self, kind: DeniedKind, target: &str) -> Option<WitError> {
        self.identity
            .metrics
            .record_failure(crate::metrics::FailureKind::Denied);
        self.denied_attempts = self.denied_attempts.saturating_add(1);
        if self.denied_attempts > self.limits.max_denied_per_call {
            let max = self.limits.max_denied_per_call;
            return Some(self.cross(
                "the number of denied reads and dispatches",
                self.denied_attempts,
                max,
                "max_denied_per_call",
            ));
        }
        match self
            .effects
            .denied
            .iter_mut()
            .find(|d| d.kind == kind && d.target == target)
        {
            Some(seen) => seen.attempts = seen.attempts.saturating_add(1),
            None => self.effects.denied.push(Denied {
                kind,
                target: target.to_owned(),
                attempts: 1,
            }),
        }
        None
    }
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}
