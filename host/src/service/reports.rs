//! The report step (报到), every scenario's: an office takes an item with a
//! report deadline (`POST /v1/departments/{d}/items/{id}/report`), or takes
//! it by completing or rejecting it; a report deadline that passes
//! unreported moves the item one level up (the escalation of
//! `events.rs`, whether or not the item asked for completion escalation)
//! with a new report deadline there, or, at the department's top office,
//! is recorded once (`report-missed`) and nothing moves.
//!
//! Invariants: each change is one commit (item, timeline, audit); the
//! report index (`d/` in sled) is kept in that commit from the item's
//! [`WorkItem::report_deadline`], so each miss fires once, also across a
//! restart; a report stands whatever the plugin makes of `item-reported`
//! (the host's step, like an escalation).

use chrono::{DateTime, Utc};

use crate::model::{Case, ItemStatus, ReportState, TimelineEntry, TimelineEvent, WorkItem};
use crate::runtime::{CaseEvent, office_name};
use crate::storage::{AuditRecord, OfficeStatus};

use super::commit::Stamp;
use super::events::item_not_found;
use super::{ItemActed, Officer, OverdueReport, Service, ServiceError};

/// Takes `item`'s report for `by` at `now` if it has a report step and was
/// not taken yet; returns whether that was on time (`None`: nothing taken).
pub(super) fn take(item: &mut WorkItem, by: &str, now: DateTime<Utc>) -> Option<bool> {
    item.report_due_at?;
    if item.reported_at.is_some() {
        return None;
    }
    item.reported_at = Some(now);
    item.reported_by = Some(by.to_owned());
    Some(item.report_state() == Some(ReportState::Reported))
}

impl Service {
    /// The office that owns `item_id` takes it (报到) for `officer`: 404
    /// outside their area, 403 `not_owner` for another office's (the rules
    /// of complete and reject); 409 `no_report_step`, `already_reported`,
    /// `item_closed`. Then the plugin gets `item-reported` (a 0.1.0 plugin
    /// is not called); a failure of that call is on the timeline and the
    /// report stands.
    pub async fn report_item(
        &self,
        officer: &Officer,
        item_id: &str,
    ) -> Result<ItemActed, ServiceError> {
        let not_found = || item_not_found(officer, item_id);
        let (_guard, mut item) = self.own_item(officer, item_id).await?;
        if item.report_due.is_none() {
            return Err(ServiceError::Conflict {
                code: "no_report_step",
                message: format!(
                    "work item {item_id} has no report step: its scenario did not give it a report deadline; complete or reject it"
                ),
            });
        }
        if let (Some(at), Some(by)) = (item.reported_at, &item.reported_by) {
            return Err(ServiceError::Conflict {
                code: "already_reported",
                message: format!(
                    "work item {item_id} was already reported by {by} at {}",
                    at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
                ),
            });
        }
        if item.status != ItemStatus::Pending {
            return Err(ServiceError::Conflict {
                code: "item_closed",
                message: format!(
                    "work item {item_id} is {}; only a pending item can be reported",
                    item.status.as_str()
                ),
            });
        }
        let now = self.clock.now();
        let on_time = take(&mut item, &officer.id, now).unwrap_or(true);
        let case = self.load_case(&item.case_id).await?;
        let office = office_name(&item.department, item.office.as_deref());
        let event = CaseEvent::ItemReported {
            item_id: item.id.clone(),
            department: item.department.clone(),
            task: item.task.clone(),
            handled_by: officer.id.clone(),
            office,
        };
        let entry = TimelineEvent::ItemReported {
            item_id: item.id.clone(),
            department: item.department.clone(),
            office: item.office.clone(),
            handled_by: officer.id.clone(),
        };
        let audit = AuditRecord::Reported {
            case_id: case.id.clone(),
            item_id: item.id.clone(),
            department: item.department.clone(),
            office: item.office.clone(),
            handled_by: officer.id.clone(),
            on_time,
        };
        // Committed either way: the office took it.
        self.deliver_host_step(case, event, entry, item, audit)
            .await?;
        self.metrics.record_reported(on_time);
        tracing::info!(item_id, on_time, "item reported");
        let item = self.storage.item(item_id).await?.ok_or_else(not_found)?;
        let case = self.load_case(&item.case_id).await?;
        Ok(ItemActed { item, case })
    }

    /// A page of `officer`'s pending items not yet reported (`?report=
    /// awaiting`), oldest first: it reads pages of their pending queue
    /// until `limit` such items are found or the queue ends.
    pub async fn awaiting_report(
        &self,
        officer: &Officer,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<WorkItem>, ServiceError> {
        let pending = Some(OfficeStatus::Is(ItemStatus::Pending));
        let mut found = Vec::new();
        let mut after = after.map(str::to_owned);
        loop {
            let page = self
                .department_items(officer, pending, after.as_deref(), limit)
                .await?;
            let full = page.len() >= limit;
            after = page.last().map(|i| i.id.clone());
            found.extend(
                page.into_iter()
                    .filter(|i| i.report_due_at.is_some() && i.reported_at.is_none()),
            );
            if found.len() >= limit || !full {
                found.truncate(limit);
                return Ok(found);
            }
        }
    }

    /// `item`'s report deadline passed at its office: it moves one level up
    /// with a new report deadline (the completion deadline stays), or, at
    /// the department's top office (or with no office), the miss is
    /// recorded once and nothing moves. Either way the office is added to
    /// `report_missed_by`.
    pub(super) async fn report_missed(
        &self,
        mut case: Case,
        mut item: WorkItem,
        now: DateTime<Utc>,
    ) -> Result<OverdueReport, ServiceError> {
        let holder = item.report_holder().to_owned();
        item.report_missed_by.push(holder.clone());
        tracing::info!(item_id = %item.id, case_id = %case.id, office = %holder, "report missed");
        if let Some((from, to)) = self.office_above(&item) {
            // A failure of the plugin's call is on the timeline; the item
            // moved either way.
            self.move_up(case, &mut item, from, to, now).await?;
            self.metrics.record_report_missed();
            return Ok(OverdueReport::ReportMissed);
        }
        let stamp = Stamp::change(&mut case, now);
        case.timeline.push(TimelineEntry {
            at: now,
            event: TimelineEvent::ReportMissed {
                item_id: item.id.clone(),
                department: item.department.clone(),
                office: holder.clone(),
            },
        });
        let audit = AuditRecord::ReportMissed {
            case_id: case.id.clone(),
            item_id: item.id.clone(),
            department: item.department.clone(),
            office: holder,
        };
        self.storage
            .commit(stamp.commit(case, vec![item], vec![audit]))
            .await?;
        self.metrics.record_report_missed();
        Ok(OverdueReport::ReportMissed)
    }
}
