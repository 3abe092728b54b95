//! What happens to a case after it is opened: the applicant's supplement
//! and withdrawal, a department's completion or rejection of its item, and
//! the deadline loop's overdue reports — each under the case's lock,
//! delivered to the case's pinned plugin version by [`Service::deliver`]
//! and committed through `commit.rs`.

use std::sync::Arc;

use serde_json::Value;

use crate::model::{Case, CaseStatus, ItemStatus, TimelineEntry, TimelineEvent, WorkItem};
use crate::ops::OpsNotice;
use crate::runtime::{CaseContext, CaseEvent, office_name};
use crate::storage::{AuditRecord, Commit};

use super::commit::{Stamp, call_failed, failure_commit};
use super::{CaseWithItems, ItemActed, Officer, OverdueReport, Service, ServiceError};

impl Service {
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
        if item.status != ItemStatus::Pending {
            return Ok(OverdueReport::Skipped);
        }
        // A missed report (报到) first: it moves the item, or marks it once.
        if item.report_deadline().is_some_and(|at| at <= now) {
            let case = self.load_case(case_id).await?;
            return self.report_missed(case, item, now).await;
        }
        if item.overdue_at.is_some() || item.due_at > now {
            return Ok(OverdueReport::Skipped);
        }
        let case = self.load_case(case_id).await?;
        if let Some(report) = self.escalate(case.clone(), &mut item, now).await? {
            return Ok(report);
        }
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
        let told = OpsNotice::overdue(&item);
        let report = match self
            .deliver(case, event, entry, Some(item), KeepItem::Yes)
            .await
        {
            Ok(_) => OverdueReport::Reported,
            Err(ServiceError::Refused(_) | ServiceError::Plugin(_)) => OverdueReport::CallFailed,
            Err(e) => return Err(e),
        };
        // Committed either way: the item is marked overdue.
        told.publish(&self.ops);
        Ok(report)
    }

    /// Moves `item`, whose time ran out, to its department's office one
    /// level up, if it escalates and such an office exists (else `None`:
    /// it is reported overdue), with its next time limit from now.
    async fn escalate(
        &self,
        case: Case,
        item: &mut WorkItem,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<Option<OverdueReport>, ServiceError> {
        let Some(next_due) = item.escalation else {
            return Ok(None);
        };
        let Some((from, to)) = self.office_above(item) else {
            return Ok(None);
        };
        item.due = next_due;
        item.due_at = self.calendar.due_at(now, next_due);
        self.move_up(case, item, from, to, now).await.map(Some)
    }

    /// The places of `item`'s office and of its department's office one
    /// level up, if both exist.
    pub(super) fn office_above(&self, item: &WorkItem) -> Option<(String, String)> {
        let from = item.office.clone()?;
        let tree = self.places.tree();
        let to = tree.office_above(&item.department, tree.get(&from)?)?;
        Some((from, to.id.clone()))
    }

    /// Moves `item` from the office at `from` to the one at `to` (its
    /// deadline already set by the caller; an unreported item gets a new
    /// report deadline at the new office). The move, the timeline entry
    /// and the audit record are committed whether or not the plugin
    /// handles `item-escalated` (a 0.1.0 plugin is not told): the item is
    /// due again at its new deadline and so escalates once per level, also
    /// across a restart, and always has one owner office.
    pub(super) async fn move_up(
        &self,
        case: Case,
        item: &mut WorkItem,
        from: String,
        to: String,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<OverdueReport, ServiceError> {
        item.escalated_from.push(from.clone());
        item.office = Some(to.clone());
        if let (Some(report_due), None) = (item.report_due, item.reported_at) {
            item.report_due_at = Some(self.calendar.due_at(now, report_due));
        }
        let event = CaseEvent::ItemEscalated {
            item_id: item.id.clone(),
            department: item.department.clone(),
            task: item.task.clone(),
            from_office: office_name(&item.department, Some(&from)),
            to_office: office_name(&item.department, Some(&to)),
            due: item.due,
        };
        let entry = TimelineEvent::ItemEscalated {
            item_id: item.id.clone(),
            department: item.department.clone(),
            from_office: from.clone(),
            to_office: to.clone(),
            due_at: item.due_at,
        };
        let audit = AuditRecord::Escalated {
            case_id: case.id.clone(),
            item_id: item.id.clone(),
            department: item.department.clone(),
            from_office: from,
            to_office: to,
            due_at: item.due_at,
        };
        tracing::info!(item_id = %item.id, case_id = %case.id, "item escalated");
        let told = OpsNotice::escalated(item);
        let report = self
            .deliver_host_step(case, event, entry, item.clone(), audit)
            .await?;
        // Committed either way: the item moved.
        self.metrics.record_escalated();
        told.publish(&self.ops);
        Ok(report)
    }

    /// Delivers `event`, about what the host itself did to `item` (a move,
    /// a report): the item, the `entry` and the `audit` record are committed
    /// whatever the plugin makes of it. `CallFailed` when the plugin's call
    /// failed or refused (on the timeline), else `Reported`.
    pub(super) async fn deliver_host_step(
        &self,
        case: Case,
        event: CaseEvent,
        entry: TimelineEvent,
        item: WorkItem,
        audit: AuditRecord,
    ) -> Result<OverdueReport, ServiceError> {
        let delivered = self
            .deliver_with(
                case,
                event,
                entry,
                Some(item),
                KeepItem::AndHappened,
                vec![audit],
            )
            .await;
        match delivered {
            Ok(_) => Ok(OverdueReport::Reported),
            Err(ServiceError::Refused(_) | ServiceError::Plugin(_)) => {
                Ok(OverdueReport::CallFailed)
            }
            Err(e) => Err(e),
        }
    }

    /// Records that handling the overdue `item_id` failed in the host
    /// (`code`, `message`): a `call-failed` entry on the case, committed
    /// with the item's `overdue_at` (or, for a missed report, the office
    /// added to `report_missed_by`), so that it is not handled again.
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
        if item.status != ItemStatus::Pending {
            return Ok(false);
        }
        // What failed was a missed report (报到) when its deadline is due:
        // it is marked as fired at this office, and the completion
        // deadline stays to be reported in its time.
        if item.report_deadline().is_some_and(|at| at <= now) {
            let holder = item.report_holder().to_owned();
            item.report_missed_by.push(holder);
        } else if item.overdue_at.is_some() {
            return Ok(false);
        } else {
            item.overdue_at = Some(now);
        }
        let mut case = self.load_case(case_id).await?;
        let Stamp {
            expected_revision, ..
        } = Stamp::change(&mut case, now);
        case.timeline
            .push(call_failed(now, "item-overdue", code, message.to_owned()));
        let told = OpsNotice::overdue(&item);
        self.storage
            .commit(Commit {
                case,
                expected_revision,
                items: vec![item],
                audit: Vec::new(),
                idempotency: None,
            })
            .await?;
        told.publish(&self.ops);
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
                && item.status.is_open()
            {
                item.status = ItemStatus::Cancelled;
                item.finished_at = Some(now);
                item.reason = Some("withdrawn by the applicant".into());
                cancelled.push(item);
            }
        }
        let Stamp {
            expected_revision, ..
        } = Stamp::change(&mut case, now);
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
    /// A department completes one of its items with a result.
    pub async fn complete_item(
        &self,
        officer: &Officer,
        item_id: &str,
        result: Value,
    ) -> Result<ItemActed, ServiceError> {
        self.act_on_item(officer, item_id, ItemAction::Complete(result))
            .await
    }

    /// A department rejects one of its items with a reason.
    pub async fn reject_item(
        &self,
        officer: &Officer,
        item_id: &str,
        reason: String,
    ) -> Result<ItemActed, ServiceError> {
        self.act_on_item(officer, item_id, ItemAction::Reject(reason))
            .await
    }

    /// Completes or rejects an item for `officer`: 404 for an item outside
    /// their area, 403 `not_owner` for another office's (see
    /// [`Officer`]); the officer is recorded as `handled_by`.
    async fn act_on_item(
        &self,
        officer: &Officer,
        item_id: &str,
        action: ItemAction,
    ) -> Result<ItemActed, ServiceError> {
        let not_found = || item_not_found(officer, item_id);
        let (_guard, mut item) = self.own_item(officer, item_id).await?;
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
        item.handled_by = Some(officer.id.clone());
        // An item never reported is taken by the action itself (报到).
        let took_report = super::reports::take(&mut item, &officer.id, now);
        let (event, entry) = match action {
            ItemAction::Complete(result) => {
                let event = CaseEvent::ItemCompleted {
                    item_id: item.id.clone(),
                    department: item.department.clone(),
                    task: item.task.clone(),
                    result: result.to_string(),
                    office: office_name(&item.department, item.office.as_deref()),
                    handled_by: officer.id.clone(),
                };
                item.status = ItemStatus::Completed;
                item.result = Some(result);
                let entry = TimelineEvent::ItemCompleted {
                    item_id: item.id.clone(),
                    department: item.department.clone(),
                    office: item.office.clone(),
                    handled_by: Some(officer.id.clone()),
                };
                (event, entry)
            }
            ItemAction::Reject(reason) => {
                let event = CaseEvent::ItemRejected {
                    item_id: item.id.clone(),
                    department: item.department.clone(),
                    task: item.task.clone(),
                    reason: reason.clone(),
                    office: office_name(&item.department, item.office.as_deref()),
                    handled_by: officer.id.clone(),
                };
                item.status = ItemStatus::Rejected;
                item.reason = Some(reason.clone());
                let entry = TimelineEvent::ItemRejected {
                    item_id: item.id.clone(),
                    department: item.department.clone(),
                    reason,
                    office: item.office.clone(),
                    handled_by: Some(officer.id.clone()),
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
        if let Some(on_time) = took_report {
            self.metrics.record_reported(on_time);
        }
        Ok(ItemActed { item, case })
    }

    /// `officer`'s item `item_id`, read under its case's lock (held by the
    /// guard), that they may act on: another department's item is 404, an
    /// item outside their area 404, another office's 403 `not_owner`.
    pub(super) async fn own_item(
        &self,
        officer: &Officer,
        item_id: &str,
    ) -> Result<(crate::locks::KeyedGuard<'_>, WorkItem), ServiceError> {
        let not_found = || item_not_found(officer, item_id);
        let item = self.storage.item(item_id).await?.ok_or_else(not_found)?;
        if item.department != officer.department {
            return Err(not_found());
        }
        let guard = self.locks.lock(&item.case_id).await;
        // Read again under the case's lock: another action (or an
        // escalation that moved it) may have won.
        let item = self.storage.item(item_id).await?.ok_or_else(not_found)?;
        officer.may_act(&item, &self.places.tree())?;
        Ok((guard, item))
    }

    /// Hands an event to the case's plugin version and commits what it
    /// decides, together with `changed_item` (the item the event is about)
    /// and the `happened` timeline entry. On failure, commits only a
    /// `call-failed` entry and the audit records of the reads.
    async fn deliver(
        &self,
        case: Case,
        event: CaseEvent,
        happened: TimelineEvent,
        changed_item: Option<WorkItem>,
        on_failure: KeepItem,
    ) -> Result<(Case, Option<WorkItem>), ServiceError> {
        self.deliver_with(case, event, happened, changed_item, on_failure, Vec::new())
            .await
    }

    /// [`Service::deliver`], with `host_audit`: audit records of what the
    /// host did itself (an escalation), committed however the call ends.
    /// A plugin whose world lacks the event (a 0.1.0 plugin and
    /// `item-escalated`) is not called: the entry, the item and the records
    /// are committed alone.
    pub(super) async fn deliver_with(
        &self,
        mut case: Case,
        event: CaseEvent,
        happened: TimelineEvent,
        changed_item: Option<WorkItem>,
        on_failure: KeepItem,
        host_audit: Vec<AuditRecord>,
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
            now: self.clock.now(),
            utc_offset_minutes: self.calendar.utc_offset_minutes(),
            place: case.place.clone(),
            subject: case.subject.clone(),
            places: self.places.tree(),
        };
        if !plugin.receives(&event) {
            let stamp = Stamp::change(&mut case, self.clock.now());
            case.timeline.push(TimelineEntry {
                at: stamp.now,
                event: happened,
            });
            let items = changed_item.iter().cloned().collect();
            let commit = stamp.commit(case, items, host_audit);
            let case = commit.case.clone();
            self.storage.commit(commit).await?;
            return Ok((case, changed_item));
        }
        let answer = plugin.on_event(&context, &event).await;
        let was_open = !case.status.is_final();
        let stamp = Stamp::change(&mut case, self.clock.now());
        match answer {
            Ok(success) => {
                case.timeline.push(TimelineEntry {
                    at: stamp.now,
                    event: happened,
                });
                // Under the case's lock: the items the plugin cancels are
                // still this case's and still pending, as it checked.
                let mut cancelled = Vec::new();
                for id in &success.effects.cancelled {
                    if let Some(item) = self.storage.item(id).await?
                        && item.status.is_open()
                        && changed_item.as_ref().is_none_or(|c| c.id != item.id)
                    {
                        cancelled.push(item);
                    }
                }
                let mut commit = self.success_commit(
                    &plugin,
                    case,
                    success,
                    changed_item.clone(),
                    cancelled,
                    stamp,
                );
                commit.audit.extend(host_audit);
                let case = commit.case.clone();
                self.storage.commit(commit).await?;
                match (was_open, case.status.is_final()) {
                    (true, true) => self.metrics.add_open_cases(-1),
                    (false, false) => self.metrics.add_open_cases(1),
                    _ => {}
                }
                Ok((case, changed_item))
            }
            Err(failure) => {
                let items = match (on_failure, changed_item) {
                    (KeepItem::Yes | KeepItem::AndHappened, Some(item)) => vec![item],
                    _ => Vec::new(),
                };
                if let KeepItem::AndHappened = on_failure {
                    case.timeline.push(TimelineEntry {
                        at: stamp.now,
                        event: happened,
                    });
                }
                let mut commit =
                    failure_commit(&plugin, case, event.name(), &failure, items, stamp);
                commit.audit.extend(host_audit);
                self.storage.commit(commit).await?;
                Err(ServiceError::from_call(failure.error))
            }
        }
    }
}

/// Whether the item an event is about is written even when the plugin
/// fails to handle the event.
#[derive(Clone, Copy)]
pub(super) enum KeepItem {
    Yes,
    /// The item and the timeline entry of what happened: the host did it
    /// whatever the plugin makes of it.
    AndHappened,
    No,
}

/// The 404 of an item an officer cannot see (or that does not exist).
pub(super) fn item_not_found(officer: &Officer, item_id: &str) -> ServiceError {
    ServiceError::NotFound {
        what: "work item",
        id: format!("{}/{item_id}", officer.department),
    }
}

enum ItemAction {
    Complete(Value),
    Reject(String),
}
