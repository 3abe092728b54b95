//! The service layer: what citizens and departments can do to cases and
//! work items, independent of HTTP.
//!
//! Invariants, and why they hold:
//! - **A call's effects commit atomically with its outcome.** Plugins only
//!   *ask* for effects (`runtime::Effects`); this module turns a successful
//!   call's outcome and effects into one [`Commit`](crate::storage::Commit)
//!   (case, items, audit) that
//!   storage applies all or nothing. A failed call commits no item and no
//!   state: only a `call-failed` timeline entry on the case (or a failure
//!   record when no case exists yet), plus the audit records of the data it
//!   read, because a read that happened must stay on record.
//! - **Events for one case are applied one at a time, in order.** Every
//!   change to an existing case happens under that case's lock, and each
//!   commit names the revision it started from, so a stale write is refused.
//! - **Submissions are idempotent.** One `Idempotency-Key` creates at most
//!   one case: submissions with the same key are serialised, and the key is
//!   written in the same commit as the case it created.
//!
//! Its rooms: this file holds the service, its errors and who applies;
//! `apply.rs` a new application (form, applicant, idempotency, `start`);
//! `events.rs` everything after (supplement, withdrawal, a department's
//! completion or rejection, overdue reports) and the one way an event
//! reaches the plugin, and escalation up the offices; `commit.rs` the one
//! place a call's answer becomes a commit and its audit records (routing
//! results, items held off a task list); `officers.rs` who may see and act
//! on a department's items; `held.rs` the operators' review of held items;
//! `reports.rs` the report step (报到) and missed report deadlines;
//! `subject.rs` the person a case is about and mandates.

use std::sync::Arc;

use chrono::{DateTime, Utc};

use crate::calendar::Calendar;
use crate::limits::LimitsConfig;
use crate::locks::KeyedLocks;
use crate::metrics::Metrics;
use crate::model::{Case, WorkItem};
use crate::ops::OpsStream;
use crate::places::Places;
use crate::plugins::PluginSet;
use crate::runtime::{PluginError, ScenarioError};
use crate::storage::{OfficeStatus, Storage, StorageError};

mod apply;
mod commit;
mod events;
mod held;
mod officers;
mod ops;
mod reports;
mod subject;

pub use apply::validate_application;
pub use officers::{Officer, at_or_below};
pub use subject::{MANDATES, subject_field};

/// The application field that names the applicant, until citizens are
/// identified by their tokens.
pub const APPLICANT_FIELD: &str = "applicant_id";

/// The field that names the device reporting an event (no citizen files it).
pub const SENSOR_FIELD: &str = "sensor_id";

/// Fields that name a citizen. A device's event may carry none of them: a
/// device reports for itself and never applies in anyone's name.
pub const CITIZEN_FIELDS: &[&str] = &[APPLICANT_FIELD];

/// Who a case is opened for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Applicant {
    /// The form's `applicant_id` (or `sensor_id`) field: the test kit.
    FromForm,
    /// An identified citizen.
    Citizen(String),
    /// An officer (a department token with a `place` claim, or none for
    /// the department as a whole), to a scenario whose manifest names
    /// `"officer"` in `applicants`: a whistle (吹哨).
    Officer(Officer),
    /// An identified device, reporting an event.
    Device {
        /// Its id (the token's `sub`).
        id: String,
        /// Where it is installed (the token's `place`): its events' cases
        /// take this place unless the event names one.
        place: Option<String>,
    },
}

impl Applicant {
    /// The `applicant` a case opened by this caller carries.
    pub fn owner(&self) -> Option<String> {
        match self {
            Applicant::FromForm => None,
            Applicant::Citizen(id) => Some(id.clone()),
            Applicant::Device { id, .. } => Some(device_owner(id)),
            Applicant::Officer(officer) => Some(officer_owner(&officer.id)),
        }
    }
}

/// The `applicant` of an officer's cases: `officer:ID` (the token's `sub`),
/// which no citizen's id can be (the one place this form is written).
pub fn officer_owner(officer_id: &str) -> String {
    format!("officer:{officer_id}")
}

/// The `applicant` of a device's cases: `sensor:ID`, which no citizen's id
/// can be (the one place this form is written).
pub fn device_owner(sensor_id: &str) -> String {
    format!("sensor:{sensor_id}")
}

/// Why a request could not be carried out. Each variant maps to one HTTP
/// status in `http`.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// Something named in the request does not exist.
    #[error("{what} `{id}` does not exist")]
    NotFound {
        /// What kind of thing.
        what: &'static str,
        /// Its id.
        id: String,
    },
    /// The request is not well formed.
    #[error("{0}")]
    BadRequest(String),
    /// The caller may not do this at all (e.g. an officer's token at a
    /// place where their department has no office).
    #[error("{0}")]
    Forbidden(String),
    /// The item is in the officer's area but another office owns it.
    #[error("{0}")]
    NotOwner(String),
    /// A citizen applied for someone else without a valid mandate.
    #[error(
        "you ({agent}) may not apply for {subject} in `{scenario}`: there is no valid mandate from them to you for this scenario (a mandate is recorded by civil affairs, dataset civil-affairs/mandates); leave the field out to apply for yourself"
    )]
    NoMandate {
        /// The caller.
        agent: String,
        /// Whom they named.
        subject: String,
        /// The scenario.
        scenario: String,
    },
    /// An application field is missing or of the wrong type.
    #[error("field `{field}`: {message}")]
    InvalidField {
        /// The field.
        field: String,
        /// What is wrong.
        message: String,
    },
    /// A device reported an event to a scenario whose manifest does not
    /// declare `device_events`.
    #[error(
        "scenario `{scenario}` does not take device events: only a scenario whose manifest declares `device_events = true` does; citizens apply with POST /v1/scenarios/{scenario}/cases"
    )]
    DeviceEventsNotAccepted {
        /// The scenario.
        scenario: String,
    },
    /// The caller's role may not open cases of this scenario (its
    /// manifest's `applicants` and `officer_departments`).
    #[error("scenario `{scenario}` takes applications from {who}; {yours}")]
    WrongApplicant {
        /// The scenario.
        scenario: String,
        /// Who may apply, in words.
        who: String,
        /// What the caller is, in words.
        yours: String,
    },
    /// The state of the case or item does not allow this.
    #[error("{message}")]
    Conflict {
        /// A stable code, e.g. `item_not_pending`.
        code: &'static str,
        /// A sentence for the caller.
        message: String,
    },
    /// An `Idempotency-Key` was reused for a different application.
    #[error(
        "Idempotency-Key `{key}` was already used for a different application (case {case_id}); use a new key for a new application"
    )]
    IdempotencyKeyReused {
        /// The key.
        key: String,
        /// The case it created.
        case_id: String,
    },
    /// The plugin refused the request on purpose.
    #[error("{0}")]
    Refused(ScenarioError),
    /// The plugin failed (trap, timeout, memory, bad answer).
    #[error("{0}")]
    Plugin(PluginError),
    /// The scenario's active version is quarantined after repeated failures.
    #[error(
        "scenario `{scenario}` takes no new cases: it was stopped after {reason}; an operator must reactivate it"
    )]
    Quarantined {
        /// The scenario.
        scenario: String,
        /// Why.
        reason: String,
    },
    /// The plugin version a case is pinned to is not loaded.
    #[error(
        "plugin `{scenario}` version {version}, which case {case_id} is pinned to, is not loaded"
    )]
    VersionUnavailable {
        /// The scenario.
        scenario: String,
        /// The pinned version.
        version: String,
        /// The case.
        case_id: String,
    },
    /// Storage failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

impl ServiceError {
    /// No scenario `id` takes cases (none is active under that id).
    pub fn no_scenario(id: &str) -> Self {
        ServiceError::NotFound {
            what: "scenario",
            id: id.to_owned(),
        }
    }

    fn from_call(error: PluginError) -> Self {
        match error {
            PluginError::Scenario(e) => ServiceError::Refused(e),
            other => ServiceError::Plugin(other),
        }
    }
}

/// A clock, so that deadline logic can be driven in tests.
pub trait Clock: Send + Sync + 'static {
    /// Now.
    fn now(&self) -> DateTime<Utc>;
}

/// The system clock.
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock an operator moves forward (`[testing] manual_clock`, `POST
/// /v1/admin/clock`): it starts at the time the host starts and stands
/// still between moves, so that a check from outside the process decides
/// exactly when each deadline passes; it never runs backwards. For tests
/// and acceptance checks; a production host runs on the system clock.
pub struct ManualClock {
    now: std::sync::Mutex<DateTime<Utc>>,
}

/// Why the manual clock was not moved.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClockError {
    /// A time earlier than the clock's.
    #[error("the clock only moves forward: it reads {now}, and {asked} is earlier")]
    Backwards {
        /// What it reads.
        now: DateTime<Utc>,
        /// What was asked.
        asked: DateTime<Utc>,
    },
}

impl ManualClock {
    /// A clock standing at `start`.
    pub fn at(start: DateTime<Utc>) -> Self {
        ManualClock {
            now: std::sync::Mutex::new(start),
        }
    }

    /// Moves the clock to `to`; returns the time it read before.
    pub fn move_to(&self, to: DateTime<Utc>) -> Result<DateTime<Utc>, ClockError> {
        let mut now = self.now.lock().unwrap_or_else(|e| e.into_inner());
        let before = *now;
        if to < before {
            return Err(ClockError::Backwards {
                now: before,
                asked: to,
            });
        }
        *now = to;
        Ok(before)
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.now.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A case with its items, as the APIs show it.
#[derive(Debug, Clone)]
pub struct CaseWithItems {
    /// The case.
    pub case: Case,
    /// Its items, in dispatch order.
    pub items: Vec<WorkItem>,
}

/// What an application produced.
#[derive(Debug, Clone)]
pub struct Applied {
    /// The case (new, or the one an earlier submission with the same
    /// idempotency key created).
    pub case: CaseWithItems,
    /// Whether this is a repeat of an earlier submission.
    pub replayed: bool,
}

/// What a department's action produced.
#[derive(Debug, Clone)]
pub struct ItemActed {
    /// The item after the action.
    pub item: WorkItem,
    /// Its case after the plugin handled the event.
    pub case: Case,
}

/// This run's id on the operations stream: the wall-clock start in ms (not
/// the service's clock, which a test may hold still across a restart).
fn boot_id() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Cases and work items over storage and plugins.
pub struct Service {
    storage: Arc<dyn Storage>,
    plugins: Arc<PluginSet>,
    places: Arc<Places>,
    locks: KeyedLocks,
    calendar: Calendar,
    clock: Arc<dyn Clock>,
    metrics: Arc<Metrics>,
    due_items_per_round: usize,
    overdue_calls_per_plugin: usize,
    ops: Arc<OpsStream>,
}

/// What became of one overdue item the deadline loop handed over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OverdueReport {
    /// The plugin was told and its decision committed.
    Reported,
    /// The plugin was told but its call failed or it refused; the failure is
    /// on the timeline and the item is marked reported.
    CallFailed,
    /// Nothing to do: the item is finished, reported already, or not due.
    Skipped,
    /// Its report deadline (报到) passed untaken: it moved up, or the top
    /// office's miss was recorded (counted as a missed report, not as an
    /// overdue item).
    ReportMissed,
}

impl Service {
    /// A service over `storage` and `plugins`, routing work on `places`.
    pub fn new(
        storage: Arc<dyn Storage>,
        plugins: Arc<PluginSet>,
        places: Arc<Places>,
        calendar: Calendar,
        clock: Arc<dyn Clock>,
        metrics: Arc<Metrics>,
    ) -> Self {
        Service {
            storage,
            plugins,
            places,
            locks: KeyedLocks::default(),
            calendar,
            ops: Arc::new(OpsStream::new(
                boot_id(),
                LimitsConfig::DEFAULT.ops_stream_backlog,
            )),
            clock,
            metrics,
            due_items_per_round: LimitsConfig::DEFAULT.due_items_per_round,
            overdue_calls_per_plugin: LimitsConfig::DEFAULT.overdue_calls_per_plugin,
        }
    }

    /// The same service with the deadline loop's limits of `limits`
    /// (`due_items_per_round`, `overdue_calls_per_plugin`) instead of the
    /// defaults.
    pub fn with_limits(mut self, limits: &LimitsConfig) -> Self {
        let limits = &limits.floored();
        self.due_items_per_round = limits.due_items_per_round;
        self.overdue_calls_per_plugin = limits.overdue_calls_per_plugin;
        self.ops = Arc::new(OpsStream::new(boot_id(), limits.ops_stream_backlog));
        self
    }

    /// The operations screen's live feed, which the service publishes on
    /// after each commit that changes the screen.
    pub fn ops_stream(&self) -> &Arc<OpsStream> {
        &self.ops
    }

    /// The deadline loop's limits: items per round, calls per plugin.
    pub(crate) fn overdue_limits(&self) -> (usize, usize) {
        (self.due_items_per_round, self.overdue_calls_per_plugin)
    }

    /// The host's metrics.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    async fn load_case(&self, case_id: &str) -> Result<Case, ServiceError> {
        self.storage
            .case(case_id)
            .await?
            .ok_or_else(|| ServiceError::NotFound {
                what: "case",
                id: case_id.to_owned(),
            })
    }

    /// A case with its items.
    pub async fn case(&self, case_id: &str) -> Result<CaseWithItems, ServiceError> {
        let case = self.load_case(case_id).await?;
        let mut items = Vec::with_capacity(case.item_ids.len());
        for id in &case.item_ids {
            if let Some(item) = self.storage.item(id).await? {
                items.push(item);
            }
        }
        Ok(CaseWithItems { case, items })
    }

    /// Now, by the service's clock.
    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// The data reads that concern `subject` (see
    /// [`Storage::access_log`]).
    pub async fn access_log(
        &self,
        subject: &str,
        from_seq: u64,
        limit: usize,
    ) -> Result<Vec<crate::storage::AuditEntry>, ServiceError> {
        Ok(self.storage.access_log(subject, from_seq, limit).await?)
    }

    /// Puts an operator's action that changes no record of its own (the
    /// test clock) on the audit log.
    pub async fn record_admin(
        &self,
        actor: &str,
        action: &str,
        subject: &str,
        detail: &str,
    ) -> Result<(), ServiceError> {
        self.storage
            .audit(vec![crate::storage::AuditRecord::Admin {
                actor: actor.to_owned(),
                action: action.to_owned(),
                subject: subject.to_owned(),
                detail: detail.to_owned(),
            }])
            .await?;
        Ok(())
    }

    /// A page of the items `officer` sees (their department's, owned by
    /// offices at their place and below; all of it without a place),
    /// optionally only those with one status, oldest first: at most
    /// `limit`, after the item `after`.
    pub async fn department_items(
        &self,
        officer: &Officer,
        status: Option<OfficeStatus>,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<WorkItem>, ServiceError> {
        officer.check(&self.places.tree())?;
        let items = match &officer.place {
            None => {
                let status = match status {
                    None => None,
                    Some(OfficeStatus::Is(status)) => Some(status),
                    Some(OfficeStatus::Escalated) => {
                        return Err(ServiceError::BadRequest(
                            "status `escalated` lists what moved up from an office: it takes an officer's token with a place".into(),
                        ));
                    }
                };
                self.storage
                    .department_items(&officer.department, status, after, limit)
                    .await?
            }
            Some(place) => {
                self.storage
                    .office_items(&officer.department, place, status, after, limit)
                    .await?
            }
        };
        Ok(items)
    }
}
