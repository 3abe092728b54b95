//! The one place that turns a plugin call's answer into what storage
//! writes: a successful call's outcome and effects become a [`Commit`]
//! (the case's timeline, status and state, its new and cancelled items,
//! and the audit records of every decision, dispatch, cancellation and
//! read); a failed call becomes a `call-failed` entry plus the audit
//! records of the reads it made, or, when no case exists yet, a
//! [`FailureRecord`].

use chrono::{DateTime, Utc};

use crate::model::{Case, ItemStatus, TimelineEntry, TimelineEvent, WorkItem};
use crate::runtime::{CallFailure, CallSuccess, CaseContext, Effects, LoadedPlugin};
use crate::storage::{AuditRecord, Commit, FailureRecord};

use super::Service;

/// The revision a commit starts from, and the time it is made: a commit
/// to an existing case moves it from `expected` to `expected + 1`.
pub(super) struct Stamp {
    /// The case's revision before the change (`None` for a new case).
    pub expected_revision: Option<u64>,
    /// Now.
    pub now: DateTime<Utc>,
}

impl Stamp {
    /// Stamps a change to the existing `case`: bumps its revision and
    /// `updated_at`, and remembers the revision it started from.
    pub fn change(case: &mut Case, now: DateTime<Utc>) -> Stamp {
        let expected_revision = Some(case.revision);
        case.revision += 1;
        case.updated_at = now;
        Stamp {
            expected_revision,
            now,
        }
    }

    /// The commit of `case` with `items` and `audit`, from this stamp's
    /// revision (no idempotency record: a new application adds its own).
    pub(super) fn commit(
        &self,
        case: Case,
        items: Vec<WorkItem>,
        audit: Vec<AuditRecord>,
    ) -> Commit {
        Commit {
            case,
            expected_revision: self.expected_revision,
            items,
            audit,
            idempotency: None,
        }
    }
}

/// A `call-failed` timeline entry.
pub(super) fn call_failed(
    now: DateTime<Utc>,
    call: &str,
    code: &str,
    message: String,
) -> TimelineEntry {
    TimelineEntry {
        at: now,
        event: TimelineEvent::CallFailed {
            call: call.to_owned(),
            code: code.to_owned(),
            message,
        },
    }
}

impl Service {
    /// The commit of a successful call on `case`: `changed_item` (the item
    /// the event was about, if any) first, with its department's action on
    /// the audit log, then what [`Service::apply_success`] makes of the
    /// outcome and effects, `cancelled` among them.
    pub(super) fn success_commit(
        &self,
        plugin: &LoadedPlugin,
        mut case: Case,
        success: CallSuccess,
        changed_item: Option<WorkItem>,
        cancelled: Vec<WorkItem>,
        stamp: Stamp,
    ) -> Commit {
        let mut audit = Vec::new();
        if let Some(item) = &changed_item {
            audit.push(AuditRecord::DepartmentAction {
                department: item.department.clone(),
                case_id: case.id.clone(),
                item_id: item.id.clone(),
                status: item.status,
                office: item.office.clone(),
                handled_by: item.handled_by.clone(),
            });
        }
        let (mut items, more_audit) =
            self.apply_success(plugin, &mut case, success, cancelled, stamp.now);
        audit.extend(more_audit);
        if let Some(item) = changed_item {
            items.insert(0, item);
        }
        stamp.commit(case, items, audit)
    }

    /// Applies a successful call to `case` (timeline, status, state) and
    /// returns the items to write and the audit records to append.
    pub(super) fn apply_success(
        &self,
        plugin: &LoadedPlugin,
        case: &mut Case,
        success: CallSuccess,
        cancelled: Vec<WorkItem>,
        now: DateTime<Utc>,
    ) -> (Vec<WorkItem>, Vec<AuditRecord>) {
        let CallSuccess { outcome, effects } = success;
        let mut audit = read_audit(plugin, &case.id, &case.applicant, &effects);
        if let Some(place) = &outcome.place
            && case.place.as_ref() != Some(place)
        {
            // Before the items: they were routed from it.
            case.place = Some(place.clone());
            case.timeline.push(TimelineEntry {
                at: now,
                event: TimelineEvent::PlaceSet {
                    place: place.clone(),
                    source: "plugin".to_owned(),
                },
            });
        }
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
        let tree = self.places.tree();
        for d in dispatched {
            // Off the task list of the office it would go to: held for an
            // operator, sent to nobody (事项清单).
            let held_at = d
                .routed
                .office
                .clone()
                .filter(|office| !tree.takes(office, &d.department, &d.task));
            audit.push(AuditRecord::Dispatch {
                held: held_at.is_some(),
                plugin: plugin.manifest().id.clone(),
                version: plugin.version().to_owned(),
                case_id: case.id.clone(),
                item_id: d.id.clone(),
                department: d.department.clone(),
                task: d.task.clone(),
                office: d.routed.office.clone(),
            });
            case.timeline.push(TimelineEntry {
                at: now,
                event: TimelineEvent::ItemDispatched {
                    item_id: d.id.clone(),
                    department: d.department.clone(),
                    task: d.task.clone(),
                    office: d.routed.office.clone(),
                },
            });
            if let Some(office) = &held_at {
                self.metrics.record_held(1);
                case.timeline.push(TimelineEntry {
                    at: now,
                    event: TimelineEvent::ItemHeld {
                        item_id: d.id.clone(),
                        department: d.department.clone(),
                        task: d.task.clone(),
                        office: office.clone(),
                    },
                });
            }
            case.item_ids.push(d.id.clone());
            items.push(WorkItem {
                id: d.id,
                case_id: case.id.clone(),
                scenario: case.scenario.clone(),
                department: d.department,
                task: d.task,
                payload: d.payload,
                status: if held_at.is_some() {
                    ItemStatus::Held
                } else {
                    ItemStatus::Pending
                },
                due: d.due,
                due_at: self.calendar.due_at(now, d.due),
                created_at: now,
                finished_at: None,
                result: None,
                reason: None,
                overdue_at: None,
                priority: d.priority,
                place: d.routed.place,
                office: d.routed.office,
                handled_by: None,
                escalation: d.escalation,
                escalated_from: Vec::new(),
                note: None,
                report_due: d.report_due,
                report_due_at: d.report_due.map(|due| self.calendar.due_at(now, due)),
                reported_at: None,
                reported_by: None,
                report_missed_by: Vec::new(),
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
}

/// The commit of a failed `call` on `case`: a `call-failed` entry, the
/// audit records of the reads the call made, and `items` (the item the
/// event was about, where it is kept anyway) — no state, no new item.
pub(super) fn failure_commit(
    plugin: &LoadedPlugin,
    mut case: Case,
    call: &str,
    failure: &CallFailure,
    items: Vec<WorkItem>,
    stamp: Stamp,
) -> Commit {
    let CallFailure { error, effects } = failure;
    case.timeline.push(call_failed(
        stamp.now,
        call,
        error.code(),
        error.to_string(),
    ));
    let audit = read_audit(plugin, &case.id, &case.applicant, effects);
    stamp.commit(case, items, audit)
}

/// What a failed `start` call leaves when no case exists: a failure record
/// and the audit records of the reads it made.
pub(super) fn start_failure(
    plugin: &LoadedPlugin,
    context: &CaseContext,
    failure: &CallFailure,
    now: DateTime<Utc>,
) -> (FailureRecord, Vec<AuditRecord>) {
    let CallFailure { error, effects } = failure;
    let record = FailureRecord {
        at: now,
        scenario: context.scenario.clone(),
        plugin_version: plugin.version().to_owned(),
        applicant: context.applicant.clone(),
        code: error.code().to_owned(),
        message: error.to_string(),
    };
    let audit = read_audit(plugin, &context.id, &context.applicant, effects);
    (record, audit)
}

/// The audit records of a call's data reads and denied attempts.
fn read_audit(
    plugin: &LoadedPlugin,
    case_id: &str,
    applicant: &str,
    effects: &Effects,
) -> Vec<AuditRecord> {
    let reads = effects.reads.iter().map(|read| AuditRecord::DataRead {
        about: None,
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
