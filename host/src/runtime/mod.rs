//! The plugin runtime: one wasmtime engine, a compiled component and an
//! `InstancePre` per plugin, and a fresh store and instance for every call.
//!
//! Invariants:
//! - Every call runs in a fresh instance: nothing leaks between applicants,
//!   and a trapped instance is never entered again. The pooling allocator
//!   and pre-instantiation keep that cheap.
//! - A call is bounded by its manifest's memory limit (a resource limiter
//!   refuses growth past it) and wall-clock deadline (one epoch ticker
//!   thread for the whole engine; the call yields to other tasks at every
//!   tick and is stopped at the first tick past its deadline).
//! - A call that traps, runs out of time or memory, or returns an error,
//!   fails only itself: it becomes a [`PluginError`], and the effects it
//!   asked for are handed back only so that its data reads stay on record.
//! - Plugins have no ambient authority: WASI without preopens, environment,
//!   arguments or network.
//! - Host functions reach storage only to read: a dataset record (`query`,
//!   through a [`DatasetReader`](crate::storage::DatasetReader)) and the
//!   item a plugin asks to cancel (through an
//!   [`ItemReader`](crate::storage::ItemReader)). Everything a call asks
//!   for is collected in its [`Effects`] and written by the service, with
//!   the call's outcome, in one commit.
//!
//! Files: `engine.rs` (the engine, pool and linker; loading a plugin),
//! `plugin.rs` (a loaded plugin version and its health), `call.rs` (the
//! call path), `error.rs` (load and call errors), `bindings/` (the
//! generated WIT bindings of both worlds, 0.2.0 and 0.1.0, and the
//! conversions and the 0.1.0 adapter at the boundary),
//! `state.rs` (one call's store), and one file per WIT interface the host
//! implements (`data.rs`, `dispatch.rs`, `log.rs`), plus `describe.rs`
//! (checking what `describe()` declares) and `cache.rs` (the compile cache).

mod bindings;
mod cache;
mod call;
mod data;
mod describe;
mod dispatch;
mod engine;
mod error;
mod log;
mod plugin;
mod state;

pub use cache::CacheOutcome;
pub use call::check_state;
pub use engine::Runtime;
pub use error::{LoadError, PluginError, ScenarioError};
pub(crate) use log::truncate;
pub use plugin::{LoadedPlugin, Quarantine};
pub use state::{DataRead, Denied, DeniedKind, Dispatched, Effects};

use crate::model::{CaseStatus, Due};

/// A failed call: the error, and what the call had done before failing
/// (only its data reads are kept, for the audit log).
#[derive(Debug)]
pub struct CallFailure {
    /// Why it failed.
    pub error: PluginError,
    /// What it asked for before failing.
    pub effects: Effects,
}

/// What a successful call decided.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// The case's new status.
    pub status: CaseStatus,
    /// The plugin's new state, as JSON text.
    pub state: String,
    /// The message for the applicant.
    pub message: String,
    /// The case's new place, if the plugin set one (checked against the
    /// tree; the call's items were routed from it).
    pub place: Option<String>,
}

/// A successful call: its outcome and its effects, to be committed together.
#[derive(Debug)]
pub struct CallSuccess {
    /// The outcome.
    pub outcome: Outcome,
    /// The effects.
    pub effects: Effects,
}

/// The case a call is for, as the plugin sees it.
#[derive(Debug, Clone)]
pub struct CaseContext {
    /// The case id.
    pub id: String,
    /// The scenario id.
    pub scenario: String,
    /// The applicant.
    pub applicant: String,
    /// The plugin's state for the case (`{}` on the first call).
    pub state: String,
    /// The host's now for this call (`case-info.clock`, and the call's
    /// WASI wall clock).
    pub now: chrono::DateTime<chrono::Utc>,
    /// Minutes east of UTC of the host's local time.
    pub utc_offset_minutes: i32,
    /// The case's place (`case-info.place`), if it has one.
    pub place: Option<String>,
    /// The person the case is about (`case-info.subject`), if its form
    /// has a subject field.
    pub subject: Option<String>,
    /// The place tree as of the call's start: the call's items are routed
    /// on it when the call returns.
    pub places: std::sync::Arc<crate::places::PlaceTree>,
}

/// An office's name in events: `DEPARTMENT@PLACE` (`public-security@cq/yubei`),
/// or the department alone for an item no office owns.
pub fn office_name(department: &str, office: Option<&str>) -> String {
    match office {
        Some(place) => format!("{department}@{place}"),
        None => department.to_owned(),
    }
}

/// Something that happened to a case, for `on-event`.
#[derive(Debug, Clone, PartialEq)]
pub enum CaseEvent {
    /// A department completed an item.
    ItemCompleted {
        /// The item.
        item_id: String,
        /// The department.
        department: String,
        /// The item's task.
        task: String,
        /// The department's result, as JSON text.
        result: String,
        /// The office that owned it: `DEPARTMENT@PLACE`, or the department
        /// for an unrouted item (see [`office_name`]).
        office: String,
        /// The officer who completed it, or the department.
        handled_by: String,
    },
    /// A department rejected an item.
    ItemRejected {
        /// The item.
        item_id: String,
        /// The department.
        department: String,
        /// The item's task.
        task: String,
        /// The department's reason.
        reason: String,
        /// The office that owned it (see [`office_name`]).
        office: String,
        /// The officer who rejected it, or the department.
        handled_by: String,
    },
    /// An item's time ran out and it moved up a level.
    ItemEscalated {
        /// The item.
        item_id: String,
        /// The department.
        department: String,
        /// The item's task.
        task: String,
        /// The office that held it (see [`office_name`]).
        from_office: String,
        /// The office that holds it now.
        to_office: String,
        /// Its new time limit.
        due: Due,
    },
    /// An office took an item (报到).
    ItemReported {
        /// The item.
        item_id: String,
        /// The department.
        department: String,
        /// The item's task.
        task: String,
        /// The officer who took it, or the department.
        handled_by: String,
        /// The office that owns it (see [`office_name`]).
        office: String,
    },
    /// An item is past its time limit.
    ItemOverdue {
        /// The item.
        item_id: String,
        /// The department.
        department: String,
        /// The item's task.
        task: String,
    },
    /// The applicant supplied material (JSON text).
    Supplement(String),
}

impl CaseEvent {
    /// A short name for spans and timelines.
    pub fn name(&self) -> &'static str {
        match self {
            CaseEvent::ItemCompleted { .. } => "item-completed",
            CaseEvent::ItemRejected { .. } => "item-rejected",
            CaseEvent::ItemOverdue { .. } => "item-overdue",
            CaseEvent::ItemEscalated { .. } => "item-escalated",
            CaseEvent::ItemReported { .. } => "item-reported",
            CaseEvent::Supplement(_) => "supplement",
        }
    }
}
