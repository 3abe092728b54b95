//! The service layer: what citizens and departments can do to cases and
//! work items, independent of HTTP.
//!
//! Invariants, and why they hold:
//! - **A call's effects commit atomically with its outcome.** Plugins only
//!   *ask* for effects (`runtime::Effects`); this module turns a successful
//!   call's outcome and effects into one [`Commit`] (case, items, audit) that
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

use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};
use serde_json::{Map, Value};

use crate::calendar::Calendar;
use crate::limits::LimitsConfig;
use crate::locks::KeyedLocks;
use crate::metrics::Metrics;
use crate::model::{
    Case, CaseStatus, FieldKind, FieldSpec, ItemStatus, TimelineEntry, TimelineEvent, WorkItem,
};
use crate::plugins::PluginSet;
use crate::runtime::{
    CallFailure, CallSuccess, CaseContext, CaseEvent, Effects, LoadedPlugin, PluginError,
    ScenarioError,
};
use crate::storage::{
    AuditRecord, Commit, FailureRecord, IdempotencyRecord, Storage, StorageError,
};

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
    /// An identified device, reporting an event.
    Device(String),
}

impl Applicant {
    /// The `applicant` a case opened by this caller carries.
    pub fn owner(&self) -> Option<String> {
        match self {
            Applicant::FromForm => None,
            Applicant::Citizen(id) => Some(id.clone()),
            Applicant::Device(id) => Some(format!("sensor:{id}")),
        }
    }
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

/// Cases and work items over storage and plugins.
pub struct Service {
    storage: Arc<dyn Storage>,
    plugins: Arc<PluginSet>,
    locks: KeyedLocks,
    calendar: Calendar,
    clock: Arc<dyn Clock>,
    metrics: Arc<Metrics>,
    due_items_per_round: usize,
    overdue_calls_per_plugin: usize,
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
}

impl Service {
    /// A service over `storage` and `plugins`.
    pub fn new(
        storage: Arc<dyn Storage>,
        plugins: Arc<PluginSet>,
        calendar: Calendar,
        clock: Arc<dyn Clock>,
        metrics: Arc<Metrics>,
    ) -> Self {
        Service {
            storage,
            plugins,
            locks: KeyedLocks::default(),
            calendar,
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
        self.due_items_per_round = limits.due_items_per_round;
        self.overdue_calls_per_plugin = limits.overdue_calls_per_plugin;
        self
    }

    /// The deadline loop's limits: items per round, calls per plugin.
    pub(crate) fn overdue_limits(&self) -> (usize, usize) {
        (self.due_items_per_round, self.overdue_calls_per_plugin)
    }

    /// The host's metrics.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// What the storage writer has done so far, if the backend has one.
    pub fn writer_stats(&self) -> Option<crate::storage::WriterStats> {
        self.storage.writer_stats()
    }

    /// The loaded plugins.
    pub fn plugins(&self) -> &PluginSet {
        &self.plugins
    }

    /// Applies to `scenario` with `application` (a JSON object), the
    /// applicant taken from the form (the test kit's and benchmarks' way
    /// in; over HTTP the applicant comes from the caller's token, see
    /// [`Service::apply_as`]).
    pub async fn apply(
        &self,
        scenario: &str,
        application: Value,
        idempotency_key: Option<String>,
    ) -> Result<Applied, ServiceError> {
        self.apply_as(scenario, application, idempotency_key, Applicant::FromForm)
            .await
    }

    /// The active version of `scenario`, if `applicant` may open a case in
    /// it: a device only in a scenario whose manifest declares
    /// `device_events`.
    pub fn accepting(
        &self,
        scenario: &str,
        applicant: &Applicant,
    ) -> Result<Arc<LoadedPlugin>, ServiceError> {
        let plugin = self
            .plugins
            .active(scenario)
            .ok_or_else(|| ServiceError::NotFound {
                what: "scenario",
                id: scenario.to_owned(),
            })?;
        if matches!(applicant, Applicant::Device(_)) && !plugin.manifest().device_events {
            return Err(ServiceError::DeviceEventsNotAccepted {
                scenario: scenario.to_owned(),
            });
        }
        Ok(plugin)
    }

    /// An identified caller applies to `scenario`. The applicant is the
    /// caller: a form field naming the applicant (`applicant_id`, or
    /// `sensor_id` for a device) may be left out, and is then filled in
    /// from the token, or must say the same; another value is refused. A
    /// device reports only to a scenario that declares device events, and
    /// its event may not name a citizen ([`CITIZEN_FIELDS`]).
    pub async fn apply_as(
        &self,
        scenario: &str,
        mut application: Value,
        idempotency_key: Option<String>,
        applicant: Applicant,
    ) -> Result<Applied, ServiceError> {
        // Idempotency keys are the caller's own: another caller's key
        // neither replays nor blocks anything of theirs. (A newline cannot
        // occur in a header value, so the two never run together.)
        let idempotency_key = match (applicant.owner(), idempotency_key) {
            (Some(owner), Some(key)) => Some(format!("{owner}\n{key}")),
            (_, key) => key,
        };
        let plugin = self.accepting(scenario, &applicant)?;
        if let Some(quarantine) = plugin.quarantine() {
            return Err(ServiceError::Quarantined {
                scenario: scenario.to_owned(),
                reason: quarantine.reason,
            });
        }
        let Value::Object(form) = &mut application else {
            return Err(ServiceError::BadRequest(
                "the application must be a JSON object of the scenario's fields".into(),
            ));
        };
        if let Applicant::Device(_) = &applicant
            && let Some(field) = CITIZEN_FIELDS.iter().find(|f| form.contains_key(**f))
        {
            return Err(ServiceError::InvalidField {
                field: (*field).to_owned(),
                message: format!(
                    "a device reports events for itself and cannot name a citizen: leave `{field}` out"
                ),
            });
        }
        let identified = match &applicant {
            Applicant::FromForm => None,
            Applicant::Citizen(id) => Some((APPLICANT_FIELD, id.clone(), id.clone())),
            Applicant::Device(id) => Some((SENSOR_FIELD, id.clone(), format!("sensor:{id}"))),
        };
        if let Some((field, id, _)) = &identified {
            match form.get(*field) {
                None | Some(Value::Null) => {
                    if plugin.info().fields.iter().any(|f| f.name == *field) {
                        form.insert((*field).to_owned(), Value::String(id.clone()));
                    }
                }
                Some(Value::String(given)) if given == id => {}
                Some(_) => {
                    return Err(ServiceError::InvalidField {
                        field: (*field).to_owned(),
                        message: format!(
                            "`{field}` names someone other than you: leave it out, it comes from your token"
                        ),
                    });
                }
            }
        }
        validate_application(&plugin.info().fields, form, scenario)?;
        let applicant = match identified {
            Some((_, _, applicant)) => applicant,
            None => match (form.get(APPLICANT_FIELD), form.get(SENSOR_FIELD)) {
                (Some(Value::String(id)), _) if !id.is_empty() => id.clone(),
                (_, Some(Value::String(sensor))) if !sensor.is_empty() => {
                    format!("sensor:{sensor}")
                }
                _ => "anonymous".to_owned(),
            },
        };
        let fingerprint = fingerprint(&application);

        let _guard = match &idempotency_key {
            Some(key) => {
                let guard = self.locks.lock(&format!("idem\0{scenario}\0{key}")).await;
                if let Some(record) = self.storage.idempotency(scenario, key).await? {
                    return self.replay(record, key, &fingerprint).await;
                }
                Some(guard)
            }
            None => None,
        };

        let now = self.clock.now();
        let case_id = uuid::Uuid::now_v7().to_string();
        let context = CaseContext {
            id: case_id.clone(),
            scenario: scenario.to_owned(),
            applicant: applicant.clone(),
            state: "{}".to_owned(),
        };
        let application_text = application.to_string();
        let answer = plugin.start(&context, &application_text).await;
        let success = match answer {
            Ok(success) => success,
            Err(failure) => {
                return Err(self
                    .record_start_failure(&plugin, &context, failure, now)
                    .await);
            }
        };
        let mut case = Case {
            id: case_id,
            scenario: scenario.to_owned(),
            plugin_version: plugin.version().to_owned(),
            applicant,
            status: CaseStatus::Submitted,
            message: String::new(),
            state: "{}".to_owned(),
            application,
            item_ids: Vec::new(),
            timeline: vec![TimelineEntry {
                at: now,
                event: TimelineEvent::Submitted {
                    plugin_version: plugin.version().to_owned(),
                },
            }],
            created_at: now,
            updated_at: now,
            revision: 0,
        };
        let (items, audit) = self.apply_success(&plugin, &mut case, success, Vec::new(), now);
        let idempotency = idempotency_key.as_ref().map(|key| IdempotencyRecord {
            scenario: scenario.to_owned(),
            key: key.clone(),
            case_id: case.id.clone(),
            fingerprint: fingerprint.clone(),
        });
        let commit = Commit {
            case: case.clone(),
            expected_revision: None,
            items: items.clone(),
            audit,
            idempotency,
        };
        match self.storage.commit(commit).await {
            Ok(()) => {
                if !case.status.is_final() {
                    self.metrics.add_open_cases(1);
                }
                Ok(Applied {
                    case: CaseWithItems { case, items },
                    replayed: false,
                })
            }
            // Another host took the key between our check and our commit:
            // the first case wins and nothing of ours was written.
            Err(StorageError::IdempotencyTaken { case_id }) => {
                let key = idempotency_key.unwrap_or_default();
                let record = IdempotencyRecord {
                    scenario: scenario.to_owned(),
                    key: key.clone(),
                    case_id,
                    fingerprint: fingerprint.clone(),
                };
                self.replay(record, &key, &fingerprint).await
            }
            Err(e) => Err(e.into()),
        }
    }

    async fn replay(
        &self,
        record: IdempotencyRecord,
        key: &str,
        fingerprint: &str,
    ) -> Result<Applied, ServiceError> {
        if record.fingerprint != fingerprint {
            return Err(ServiceError::IdempotencyKeyReused {
                key: key.to_owned(),
                case_id: record.case_id,
            });
        }
        let case = self.case(&record.case_id).await?;
        Ok(Applied {
            case,
            replayed: true,
        })
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

    /// The applicant supplies material to a case that waits for them.
    pub async fn supplement(
        &self,
        case_id: &str,
        material: Value,
    ) -> Result<CaseWithItems, ServiceError> {
        let _guard = self.locks.lock(case_id).await;
        let case = self.load_case(case_id).await?;
        if case.status != CaseStatus::AwaitingCitizen {
            return Err(ServiceError::Conflict {
                code: "case_not_awaiting_citizen",
                message: format!(
                    "case {case_id} is {}, not awaiting-citizen: it needs no material now",
                    case.status.as_str()
                ),
            });
        }
        let event = CaseEvent::Supplement(material.to_string());
        let (case, _) = self
            .deliver(case, event, TimelineEvent::Supplement, None, KeepItem::No)
            .await?;
        self.case(&case.id).await
    }

    /// Now, by the service's clock.
    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// Tells each case's plugin, once, about every pending item whose time
    /// ran out (`item-overdue`), at most `due_items_per_round` of them, and
    /// waits until each is handled (the test kit's way; the host runs
    /// [`DeadlineLoop::run`](crate::overdue::DeadlineLoop::run), which waits
    /// for none). Returns how many items' plugins were told. A plugin that
    /// fails to handle the event, or a failure of the host while handling
    /// it, is on the case's timeline; the item is still marked reported, so
    /// it is not retried forever.
    pub async fn report_overdue(self: &Arc<Self>) -> Result<usize, ServiceError> {
        crate::overdue::DeadlineLoop::new(self.clone())
            .report_round()
            .await
    }

    /// Pending items whose time ran out and whose plugin has not been told,
    /// soonest first, at most `limit`.
    pub(crate) async fn items_due(&self, limit: usize) -> Result<Vec<WorkItem>, ServiceError> {
        Ok(self.storage.items_due(self.clock.now(), limit).await?)
    }

    /// The plugin version a case is pinned to (fixed when it starts).
    pub(crate) async fn pinned_version(&self, case_id: &str) -> Result<String, ServiceError> {
        Ok(self.load_case(case_id).await?.plugin_version)
    }

    /// Tells the case's plugin that `item_id` is overdue, under the case's
    /// lock, if it is still pending, unreported and due; the item's
    /// `overdue_at` is committed with the call's outcome or failure.
    pub(crate) async fn report_item_overdue(
        &self,
        case_id: &str,
        item_id: &str,
    ) -> Result<OverdueReport, ServiceError> {
        let _guard = self.locks.lock(case_id).await;
        let now = self.clock.now();
        let Some(mut item) = self.storage.item(item_id).await? else {
            return Ok(OverdueReport::Skipped);
        };
        if item.status != ItemStatus::Pending || item.overdue_at.is_some() || item.due_at > now {
            return Ok(OverdueReport::Skipped);
        }
        let case = self.load_case(case_id).await?;
        item.overdue_at = Some(now);
        let event = CaseEvent::ItemOverdue {
            item_id: item.id.clone(),
            department: item.department.clone(),
            task: item.task.clone(),
        };
        let entry = TimelineEvent::ItemOverdue {
            item_id: item.id.clone(),
            department: item.department.clone(),
        };
        match self
            .deliver(case, event, entry, Some(item), KeepItem::Yes)
            .await
        {
            Ok(_) => Ok(OverdueReport::Reported),
            Err(ServiceError::Refused(_) | ServiceError::Plugin(_)) => {
                Ok(OverdueReport::CallFailed)
            }
            Err(e) => Err(e),
        }
    }

    /// Records that handling the overdue `item_id` failed in the host
    /// (`code`, `message`): a `call-failed` entry on the case, committed
    /// with the item's `overdue_at`, so that it is not handled again.
    /// Returns `false` if the item needs no record any more (finished or
    /// reported meanwhile).
    pub(crate) async fn record_overdue_failure(
        &self,
        case_id: &str,
        item_id: &str,
        code: &str,
        message: &str,
    ) -> Result<bool, ServiceError> {
        let _guard = self.locks.lock(case_id).await;
        let now = self.clock.now();
        let Some(mut item) = self.storage.item(item_id).await? else {
            return Ok(false);
        };
        if item.status != ItemStatus::Pending || item.overdue_at.is_some() {
            return Ok(false);
        }
        let mut case = self.load_case(case_id).await?;
        item.overdue_at = Some(now);
        let expected_revision = Some(case.revision);
        case.revision += 1;
        case.updated_at = now;
        case.timeline.push(TimelineEntry {
            at: now,
            event: TimelineEvent::CallFailed {
                call: "item-overdue".to_owned(),
                code: code.to_owned(),
                message: message.to_owned(),
            },
        });
        self.storage
            .commit(Commit {
                case,
                expected_revision,
                items: vec![item],
                audit: Vec::new(),
                idempotency: None,
            })
            .await?;
        Ok(true)
    }

    /// The applicant withdraws a case that is not finished: its open items
    /// are cancelled (their departments see them as `cancelled`) and the
    /// case ends as `rejected`, saying it was withdrawn. The plugin is not
    /// called: withdrawal is the applicant's right, not the scenario's
    /// decision.
    pub async fn withdraw(
        &self,
        case_id: &str,
        reason: String,
    ) -> Result<CaseWithItems, ServiceError> {
        let _guard = self.locks.lock(case_id).await;
        let mut case = self.load_case(case_id).await?;
        if case.status.is_final() {
            return Err(ServiceError::Conflict {
                code: "case_closed",
                message: format!(
                    "case {case_id} is already {}; only an open case can be withdrawn",
                    case.status.as_str()
                ),
            });
        }
        let now = self.clock.now();
        let mut cancelled = Vec::new();
        for id in &case.item_ids {
            if let Some(mut item) = self.storage.item(id).await?
                && item.status == ItemStatus::Pending
            {
                item.status = ItemStatus::Cancelled;
                item.finished_at = Some(now);
                item.reason = Some("withdrawn by the applicant".into());
                cancelled.push(item);
            }
        }
        let expected_revision = Some(case.revision);
        case.revision += 1;
        case.updated_at = now;
        case.status = CaseStatus::Rejected;
        case.message = if reason.is_empty() {
            "Withdrawn by the applicant.".to_owned()
        } else {
            format!("Withdrawn by the applicant: {reason}")
        };
        case.timeline.push(TimelineEntry {
            at: now,
            event: TimelineEvent::Withdrawn {
                reason,
                cancelled_items: cancelled.iter().map(|i| i.id.clone()).collect(),
            },
        });
        let audit = vec![AuditRecord::Withdrawn {
            case_id: case.id.clone(),
            applicant: case.applicant.clone(),
            cancelled_items: cancelled.len(),
        }];
        self.storage
            .commit(Commit {
                case: case.clone(),
                expected_revision,
                items: cancelled,
                audit,
                idempotency: None,
            })
            .await?;
        self.metrics.add_open_cases(-1);
        self.case(case_id).await
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

    /// A page of a department's items, optionally only those with one
    /// status, oldest first: at most `limit`, after the item `after`.
    pub async fn department_items(
        &self,
        department: &str,
        status: Option<ItemStatus>,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<WorkItem>, ServiceError> {
        Ok(self
            .storage
            .department_items(department, status, after, limit)
            .await?)
    }

    /// A department completes one of its items with a result.
    pub async fn complete_item(
        &self,
        department: &str,
        item_id: &str,
        result: Value,
    ) -> Result<ItemActed, ServiceError> {
        self.act_on_item(department, item_id, ItemAction::Complete(result))
            .await
    }

    /// A department rejects one of its items with a reason.
    pub async fn reject_item(
        &self,
        department: &str,
        item_id: &str,
        reason: String,
    ) -> Result<ItemActed, ServiceError> {
        self.act_on_item(department, item_id, ItemAction::Reject(reason))
            .await
    }

    async fn act_on_item(
        &self,
        department: &str,
        item_id: &str,
        action: ItemAction,
    ) -> Result<ItemActed, ServiceError> {
        let not_found = || ServiceError::NotFound {
            what: "work item",
            id: format!("{department}/{item_id}"),
        };
        let item = self.storage.item(item_id).await?.ok_or_else(not_found)?;
        if item.department != department {
            return Err(not_found());
        }
        let _guard = self.locks.lock(&item.case_id).await;
        // Read again under the case's lock: another action may have won.
        let mut item = self.storage.item(item_id).await?.ok_or_else(not_found)?;
        if item.status != ItemStatus::Pending {
            return Err(ServiceError::Conflict {
                code: "item_not_pending",
                message: format!(
                    "work item {item_id} is already {}; only a pending item can be completed or rejected",
                    item.status.as_str()
                ),
            });
        }
        let case = self.load_case(&item.case_id).await?;
        let now = self.clock.now();
        item.finished_at = Some(now);
        let (event, entry) = match action {
            ItemAction::Complete(result) => {
                let event = CaseEvent::ItemCompleted {
                    item_id: item.id.clone(),
                    department: item.department.clone(),
                    task: item.task.clone(),
                    result: result.to_string(),
                };
                item.status = ItemStatus::Completed;
                item.result = Some(result);
                let entry = TimelineEvent::ItemCompleted {
                    item_id: item.id.clone(),
                    department: item.department.clone(),
                };
                (event, entry)
            }
            ItemAction::Reject(reason) => {
                let event = CaseEvent::ItemRejected {
                    item_id: item.id.clone(),
                    department: item.department.clone(),
                    task: item.task.clone(),
                    reason: reason.clone(),
                };
                item.status = ItemStatus::Rejected;
                item.reason = Some(reason.clone());
                let entry = TimelineEvent::ItemRejected {
                    item_id: item.id.clone(),
                    department: item.department.clone(),
                    reason,
                };
                (event, entry)
            }
        };
        // A department's action that the plugin could not handle is not
        // kept: the item stays pending and the department can try again.
        let (case, item) = self
            .deliver(case, event, entry, Some(item), KeepItem::No)
            .await?;
        let item = item.ok_or_else(not_found)?;
        Ok(ItemActed { item, case })
    }

    /// Hands an event to the case's plugin version and commits what it
    /// decides, together with `changed_item` (the item the event is about)
    /// and the `happened` timeline entry. On failure, commits only a
    /// `call-failed` entry and the audit records of the reads.
    async fn deliver(
        &self,
        mut case: Case,
        event: CaseEvent,
        happened: TimelineEvent,
        changed_item: Option<WorkItem>,
        on_failure: KeepItem,
    ) -> Result<(Case, Option<WorkItem>), ServiceError> {
        let plugin = self
            .plugins
            .version(&case.scenario, &case.plugin_version)
            .ok_or_else(|| ServiceError::VersionUnavailable {
                scenario: case.scenario.clone(),
                version: case.plugin_version.clone(),
                case_id: case.id.clone(),
            })?;
        let context = CaseContext {
            id: case.id.clone(),
            scenario: case.scenario.clone(),
            applicant: case.applicant.clone(),
            state: case.state.clone(),
        };
        let answer = plugin.on_event(&context, &event).await;
        let now = self.clock.now();
        let was_open = !case.status.is_final();
        let expected_revision = Some(case.revision);
        case.revision += 1;
        case.updated_at = now;
        match answer {
            Ok(success) => {
                case.timeline.push(TimelineEntry {
                    at: now,
                    event: happened,
                });
                let mut audit = Vec::new();
                if let Some(item) = &changed_item {
                    audit.push(AuditRecord::DepartmentAction {
                        department: item.department.clone(),
                        case_id: case.id.clone(),
                        item_id: item.id.clone(),
                        status: item.status,
                    });
                }
                // Under the case's lock: the items the plugin cancels are
                // still this case's and still pending, as it checked.
                let mut cancelled = Vec::new();
                for id in &success.effects.cancelled {
                    if let Some(item) = self.storage.item(id).await?
                        && item.status == ItemStatus::Pending
                        && changed_item.as_ref().is_none_or(|c| c.id != item.id)
                    {
                        cancelled.push(item);
                    }
                }
                let (mut items, more_audit) =
                    self.apply_success(&plugin, &mut case, success, cancelled, now);
                audit.extend(more_audit);
                if let Some(item) = &changed_item {
                    items.insert(0, item.clone());
                }
                self.storage
                    .commit(Commit {
                        case: case.clone(),
                        expected_revision,
                        items,
                        audit,
                        idempotency: None,
                    })
                    .await?;
                match (was_open, case.status.is_final()) {
                    (true, true) => self.metrics.add_open_cases(-1),
                    (false, false) => self.metrics.add_open_cases(1),
                    _ => {}
                }
                Ok((case, changed_item))
            }
            Err(CallFailure { error, effects }) => {
                case.timeline.push(TimelineEntry {
                    at: now,
                    event: TimelineEvent::CallFailed {
                        call: event.name().to_owned(),
                        code: error.code().to_owned(),
                        message: error.to_string(),
                    },
                });
                let audit = read_audit(&plugin, &case.id, &case.applicant, &effects);
                let items = match (on_failure, changed_item) {
                    (KeepItem::Yes, Some(item)) => vec![item],
                    _ => Vec::new(),
                };
                self.storage
                    .commit(Commit {
                        case,
                        expected_revision,
                        items,
                        audit,
                        idempotency: None,
                    })
                    .await?;
                Err(ServiceError::from_call(error))
            }
        }
    }

    /// Applies a successful call to `case` (timeline, status, state) and
    /// returns the items to write and the audit records to append.
    fn apply_success(
        &self,
        plugin: &LoadedPlugin,
        case: &mut Case,
        success: CallSuccess,
        cancelled: Vec<WorkItem>,
        now: DateTime<Utc>,
    ) -> (Vec<WorkItem>, Vec<AuditRecord>) {
        let CallSuccess { outcome, effects } = success;
        let mut audit = read_audit(plugin, &case.id, &case.applicant, &effects);
        let Effects {
            reads,
            items: dispatched,
            notifications,
            cancelled: _,
            denied: _,
        } = effects;
        for read in reads {
            case.timeline.push(TimelineEntry {
                at: now,
                event: TimelineEvent::DataRead {
                    dataset: read.dataset,
                    purpose: read.purpose,
                    allowed: read.allowed,
                    found: read.found,
                },
            });
        }
        let mut items = Vec::with_capacity(dispatched.len());
        for d in dispatched {
            audit.push(AuditRecord::Dispatch {
                plugin: plugin.manifest().id.clone(),
                version: plugin.version().to_owned(),
                case_id: case.id.clone(),
                item_id: d.id.clone(),
                department: d.department.clone(),
                task: d.task.clone(),
            });
            case.timeline.push(TimelineEntry {
                at: now,
                event: TimelineEvent::ItemDispatched {
                    item_id: d.id.clone(),
                    department: d.department.clone(),
                    task: d.task.clone(),
                },
            });
            case.item_ids.push(d.id.clone());
            items.push(WorkItem {
                id: d.id,
                case_id: case.id.clone(),
                scenario: case.scenario.clone(),
                department: d.department,
                task: d.task,
                payload: d.payload,
                status: ItemStatus::Pending,
                due: d.due,
                due_at: self.calendar.due_at(now, d.due),
                created_at: now,
                finished_at: None,
                result: None,
                reason: None,
                overdue_at: None,
            });
        }
        for mut item in cancelled {
            item.status = ItemStatus::Cancelled;
            item.finished_at = Some(now);
            item.reason = Some(format!("cancelled by the {} scenario", case.scenario));
            case.timeline.push(TimelineEntry {
                at: now,
                event: TimelineEvent::ItemCancelled {
                    item_id: item.id.clone(),
                    department: item.department.clone(),
                },
            });
            audit.push(AuditRecord::Cancelled {
                plugin: plugin.manifest().id.clone(),
                version: plugin.version().to_owned(),
                case_id: case.id.clone(),
                item_id: item.id.clone(),
                department: item.department.clone(),
            });
            items.push(item);
        }
        for message in notifications {
            case.timeline.push(TimelineEntry {
                at: now,
                event: TimelineEvent::Notification { message },
            });
        }
        audit.push(AuditRecord::Decision {
            plugin: plugin.manifest().id.clone(),
            version: plugin.version().to_owned(),
            case_id: case.id.clone(),
            status: outcome.status,
        });
        case.timeline.push(TimelineEntry {
            at: now,
            event: TimelineEvent::StatusChanged {
                status: outcome.status,
                message: outcome.message.clone(),
            },
        });
        case.status = outcome.status;
        case.state = outcome.state;
        case.message = outcome.message;
        case.updated_at = now;
        (items, audit)
    }

    async fn record_start_failure(
        &self,
        plugin: &LoadedPlugin,
        context: &CaseContext,
        failure: CallFailure,
        now: DateTime<Utc>,
    ) -> ServiceError {
        let CallFailure { error, effects } = failure;
        let record = FailureRecord {
            at: now,
            scenario: context.scenario.clone(),
            plugin_version: plugin.version().to_owned(),
            applicant: context.applicant.clone(),
            code: error.code().to_owned(),
            message: error.to_string(),
        };
        let audit = read_audit(plugin, &context.id, &context.applicant, &effects);
        if let Err(e) = self.storage.record_failure(record, audit).await {
            tracing::error!(error = %e, "cannot record a failed start call");
        }
        ServiceError::from_call(error)
    }
}

/// Whether the item an event is about is written even when the plugin
/// fails to handle the event.
#[derive(Clone, Copy)]
enum KeepItem {
    Yes,
    No,
}

enum ItemAction {
    Complete(Value),
    Reject(String),
}

/// The audit records of a call's data reads and denied attempts.
fn read_audit(
    plugin: &LoadedPlugin,
    case_id: &str,
    applicant: &str,
    effects: &Effects,
) -> Vec<AuditRecord> {
    let reads = effects.reads.iter().map(|read| AuditRecord::DataRead {
        plugin: plugin.manifest().id.clone(),
        version: plugin.version().to_owned(),
        case_id: case_id.to_owned(),
        applicant: applicant.to_owned(),
        dataset: read.dataset.clone(),
        key: read.key.clone(),
        purpose: read.purpose.clone(),
        allowed: read.allowed,
    });
    let denied = effects.denied.iter().map(|denied| AuditRecord::Denied {
        plugin: plugin.manifest().id.clone(),
        version: plugin.version().to_owned(),
        case_id: case_id.to_owned(),
        what: denied.kind,
        target: denied.target.clone(),
        attempts: denied.attempts,
    });
    reads.chain(denied).collect()
}

/// A digest of an application, to tell a retry from a different
/// application under the same idempotency key. JSON objects serialise with
/// sorted keys, so the digest does not depend on field order.
fn fingerprint(application: &Value) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(application.to_string().as_bytes()))
}

/// Checks an application against the scenario's form: every required field
/// present, every field of its type, no field the form does not have.
pub fn validate_application(
    fields: &[FieldSpec],
    form: &Map<String, Value>,
    scenario: &str,
) -> Result<(), ServiceError> {
    for name in form.keys() {
        if !fields.iter().any(|f| &f.name == name) {
            return Err(ServiceError::InvalidField {
                field: name.clone(),
                message: format!("is not a field of the `{scenario}` application form"),
            });
        }
    }
    for field in fields {
        let invalid = |message: String| ServiceError::InvalidField {
            field: field.name.clone(),
            message,
        };
        let value = match form.get(&field.name) {
            None | Some(Value::Null) => {
                if field.required {
                    return Err(invalid("is required".into()));
                }
                continue;
            }
            Some(value) => value,
        };
        match &field.kind {
            FieldKind::Text => match value {
                Value::String(s) if field.required && s.trim().is_empty() => {
                    return Err(invalid("must not be empty".into()));
                }
                Value::String(_) => {}
                _ => return Err(invalid("must be a string".into())),
            },
            FieldKind::Number => {
                if !value.is_number() {
                    return Err(invalid("must be a number".into()));
                }
            }
            FieldKind::Boolean => {
                if !value.is_boolean() {
                    return Err(invalid("must be true or false".into()));
                }
            }
            FieldKind::Date => {
                let ok = value
                    .as_str()
                    .is_some_and(|s| NaiveDate::parse_from_str(s, "%Y-%m-%d").is_ok());
                if !ok {
                    return Err(invalid("must be a date as YYYY-MM-DD".into()));
                }
            }
            FieldKind::Choice { choices } => {
                let ok = value
                    .as_str()
                    .is_some_and(|s| choices.iter().any(|c| c == s));
                if !ok {
                    return Err(invalid(format!("must be one of: {}", choices.join(", "))));
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use super::*;
    use proptest::strategy::Strategy;
    use serde_json::json;

    fn fields() -> Vec<FieldSpec> {
        vec![
            FieldSpec {
                name: "name".into(),
                kind: FieldKind::Text,
                required: true,
                description: String::new(),
            },
            FieldSpec {
                name: "side".into(),
                kind: FieldKind::Choice {
                    choices: vec!["mother".into(), "father".into()],
                },
                required: true,
                description: String::new(),
            },
            FieldSpec {
                name: "born".into(),
                kind: FieldKind::Date,
                required: false,
                description: String::new(),
            },
        ]
    }

    fn check(value: Value) -> Result<(), ServiceError> {
        validate_application(&fields(), value.as_object().unwrap(), "test")
    }

    #[test]
    fn a_complete_form_passes() {
        check(json!({"name": "x", "side": "mother"})).unwrap();
        check(json!({"name": "x", "side": "father", "born": "2026-11-20"})).unwrap();
    }

    #[test]
    fn each_fault_names_its_field() {
        let cases = [
            (json!({"side": "mother"}), "name", "is required"),
            (
                json!({"name": 3, "side": "mother"}),
                "name",
                "must be a string",
            ),
            (
                json!({"name": " ", "side": "mother"}),
                "name",
                "must not be empty",
            ),
            (
                json!({"name": "x", "side": "aunt"}),
                "side",
                "must be one of",
            ),
            (
                json!({"name": "x", "side": "mother", "born": "20/11"}),
                "born",
                "YYYY-MM-DD",
            ),
            (
                json!({"name": "x", "side": "mother", "extra": 1}),
                "extra",
                "not a field",
            ),
        ];
        for (form, field, text) in cases {
            match check(form) {
                Err(ServiceError::InvalidField { field: f, message }) => {
                    assert_eq!(f, field);
                    assert!(message.contains(text), "{message}");
                }
                other => panic!("{field}: {other:?}"),
            }
        }
    }

    proptest::proptest! {
        /// Any form is accepted or refused naming a field; an accepted form
        /// has every required field with a value of its kind.
        #[test]
        fn any_form_is_judged_without_panicking(
            name in proptest::option::of(proptest::prop_oneof![
                ".{0,6}".prop_map(Value::from),
                proptest::num::i64::ANY.prop_map(Value::from),
                proptest::bool::ANY.prop_map(Value::from),
            ]),
            side in proptest::option::of("mother|father|aunt|"),
            born in proptest::option::of("[0-9]{4}-[0-9]{2}-[0-9]{2}|.{0,10}"),
            extra in proptest::option::of("[a-z]{1,5}"),
        ) {
            let mut form = Map::new();
            if let Some(v) = name { form.insert("name".into(), v); }
            if let Some(v) = side { form.insert("side".into(), Value::from(v)); }
            if let Some(v) = born { form.insert("born".into(), Value::from(v)); }
            if let Some(k) = extra { form.insert(format!("x-{k}"), Value::from(1)); }
            match validate_application(&fields(), &form, "test") {
                Ok(()) => {
                    proptest::prop_assert!(form["name"].as_str().is_some_and(|s| !s.trim().is_empty()));
                    proptest::prop_assert!(matches!(form["side"].as_str(), Some("mother" | "father")));
                }
                Err(ServiceError::InvalidField { field, message }) => {
                    proptest::prop_assert!(!field.is_empty() && !message.is_empty());
                }
                Err(other) => proptest::prop_assert!(false, "unexpected {other}"),
            }
        }
    }

    #[test]
    fn fingerprints_ignore_key_order() {
        let a: Value = serde_json::from_str(r#"{"a":1,"b":2}"#).unwrap();
        let b: Value = serde_json::from_str(r#"{"b":2,"a":1}"#).unwrap();
        assert_eq!(fingerprint(&a), fingerprint(&b));
        assert_ne!(fingerprint(&a), fingerprint(&json!({"a": 1})));
    }
}
