//! What one plugin call's store holds: its WASI context (no files, no
//! environment, no sockets), its memory limiter, and the effects the call
//! has asked for so far.
//!
//! Effects are only collected here, never written: the service layer
//! commits them together with the call's outcome, or drops them when the
//! call fails (see `service.rs`).

use std::sync::Arc;
use std::time::Instant;

use wasmtime::ResourceLimiter;
use wasmtime_wasi::{ResourceTable, WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

use onething_registry::Manifest;

use crate::model::Due;
use crate::storage::Storage;

/// Which export a call runs; `describe` may not read or dispatch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Loading the plugin: `describe`.
    Describe,
    /// `start` or `on-event` for a case.
    Case,
}

/// Which plugin is calling, and in which phase.
pub(crate) struct CallIdentity {
    pub manifest: Arc<Manifest>,
    pub case_id: String,
    pub phase: Phase,
    pub metrics: Arc<crate::metrics::PluginMetrics>,
}

/// Per-call caps taken from the host's limits.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CallCaps {
    pub max_log_lines: u32,
    pub max_json_bytes: usize,
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
}

/// Refuses memory growth past the plugin's limit and remembers that it did,
/// so that the failure is reported as out-of-memory rather than as the trap
/// the guest turns it into.
pub(crate) struct MemoryLimiter {
    pub max_bytes: usize,
    pub exceeded: bool,
}

/// The most table elements a plugin may grow a table to.
const MAX_TABLE_ELEMENTS: usize = 100_000;

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
        Ok(desired <= MAX_TABLE_ELEMENTS)
    }
}

/// The data of one call's store.
pub(crate) struct HostState {
    wasi: WasiCtx,
    table: ResourceTable,
    pub limiter: MemoryLimiter,
    pub deadline: Instant,
    pub identity: CallIdentity,
    pub caps: CallCaps,
    pub storage: Arc<dyn Storage>,
    pub effects: Effects,
    pub log_lines: u32,
    pub log_dropped: u32,
}

impl HostState {
    pub fn new(
        identity: CallIdentity,
        caps: CallCaps,
        storage: Arc<dyn Storage>,
        max_memory_bytes: usize,
        deadline: Instant,
    ) -> Self {
        // No preopened directories, no environment, no arguments, no
        // network: a plugin reaches the world only through onething's own
        // interfaces. Standard output and error are discarded.
        let wasi = WasiCtxBuilder::new()
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .build();
        HostState {
            wasi,
            table: ResourceTable::new(),
            limiter: MemoryLimiter {
                max_bytes: max_memory_bytes,
                exceeded: false,
            },
            deadline,
            identity,
            caps,
            storage,
            effects: Effects::default(),
            log_lines: 0,
            log_dropped: 0,
        }
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
