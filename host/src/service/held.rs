//! Items held off a task list (事项清单, 清单外事项下派过滤): a task the
//! office it would go to does not take is not sent; it waits in the
//! operators' review queue until an operator approves it (it is sent, with
//! a note for the officer, its time counted from then) or refuses it (it
//! is `refused`, never sent, and the plugin gets `item-rejected` with the
//! reason, as if the office had).
//! Each decision is on the case's timeline and the audit log with the
//! operator's name.

use crate::model::{ItemStatus, TimelineEntry, TimelineEvent, WorkItem};
use crate::runtime::{CaseEvent, office_name};
use crate::storage::{AuditRecord, Commit};

use super::commit::Stamp;
use super::events::KeepItem;
use super::{ItemActed, Service, ServiceError};

impl Service {
    /// A page of the held items, oldest first: at most `limit`, after the
    /// item `after`.
    pub async fn held_items(
        &self,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<WorkItem>, ServiceError> {
        Ok(self.storage.held_items(after, limit).await?)
    }

    /// The held item `item_id`, read under its case's lock by the caller.
    async fn held(&self, item_id: &str) -> Result<WorkItem, ServiceError> {
        let item = self
            .storage
            .item(item_id)
            .await?
            .ok_or_else(|| ServiceError::NotFound {
                what: "held item",
                id: item_id.to_owned(),
            })?;
        if item.status != ItemStatus::Held {
            return Err(ServiceError::Conflict {
                code: "item_not_held",
                message: format!(
                    "work item {item_id} is {}; only a held item is approved or refused",
                    item.status.as_str()
                ),
            });
        }
        Ok(item)
    }

    /// `operator` approves the held `item_id`: it goes to its office's
    /// queue with `note` for the officer, due from now.
    pub async fn approve_held(
        &self,
        operator: &str,
        item_id: &str,
        note: String,
    ) -> Result<ItemActed, ServiceError> {
        let case_id = self.held(item_id).await?.case_id;
        let _guard = self.locks.lock(&case_id).await;
        let mut item = self.held(item_id).await?;
        let mut case = self.load_case(&case_id).await?;
        let now = self.clock.now();
        item.status = ItemStatus::Pending;
        item.due_at = self.calendar.due_at(now, item.due);
        item.note = Some(note.clone());
        let stamp = Stamp::change(&mut case, now);
        case.timeline.push(TimelineEntry {
            at: now,
            event: TimelineEvent::ItemApproved {
                item_id: item.id.clone(),
                department: item.department.clone(),
                by: operator.to_owned(),
                note: note.clone(),
            },
        });
        let audit = vec![AuditRecord::Admin {
            actor: operator.to_owned(),
            action: "item.approve".into(),
            subject: item.id.clone(),
            detail: note,
        }];
        let commit: Commit = stamp.commit(case, vec![item.clone()], audit);
        let case = commit.case.clone();
        self.storage.commit(commit).await?;
        tracing::info!(item_id, operator, "held item approved");
        Ok(ItemActed { item, case })
    }

    /// `operator` refuses the held `item_id` with `reason`: it is
    /// refused, and the case's plugin is told as if its office had
    /// rejected it (`handled_by` is the operator).
    pub async fn refuse_held(
        &self,
        operator: &str,
        item_id: &str,
        reason: String,
    ) -> Result<ItemActed, ServiceError> {
        let case_id = self.held(item_id).await?.case_id;
        let _guard = self.locks.lock(&case_id).await;
        let mut item = self.held(item_id).await?;
        let case = self.load_case(&case_id).await?;
        item.status = ItemStatus::Refused;
        item.finished_at = Some(self.clock.now());
        item.reason = Some(reason.clone());
        item.handled_by = Some(operator.to_owned());
        let event = CaseEvent::ItemRejected {
            item_id: item.id.clone(),
            department: item.department.clone(),
            task: item.task.clone(),
            reason: reason.clone(),
            office: office_name(&item.department, item.office.as_deref()),
            handled_by: operator.to_owned(),
        };
        let entry = TimelineEvent::ItemRejected {
            item_id: item.id.clone(),
            department: item.department.clone(),
            reason: reason.clone(),
            office: item.office.clone(),
            handled_by: Some(operator.to_owned()),
        };
        let audit = vec![AuditRecord::Admin {
            actor: operator.to_owned(),
            action: "item.refuse".into(),
            subject: item.id.clone(),
            detail: reason,
        }];
        // A refusal the plugin could not handle is not kept: the item stays
        // held and the operator can try again.
        let (case, item) = self
            .deliver_with(case, event, entry, Some(item), KeepItem::No, audit)
            .await?;
        let item = item.ok_or_else(|| ServiceError::NotFound {
            what: "held item",
            id: item_id.to_owned(),
        })?;
        tracing::info!(item_id, operator, "held item refused");
        Ok(ItemActed { item, case })
    }
}
