//! `onething:scenario/dispatch`: a plugin hands work to departments and
//! tells the applicant.
//!
//! Nothing is written here: items and notifications are collected in the
//! call's effects and committed with its outcome, so a call that fails
//! dispatches nothing.

use super::bindings::onething::scenario::dispatch::Host;
use super::bindings::wit::{Due as WitDue, Error as WitError, WorkItem as WitWorkItem};
use super::state::{Dispatched, HostState, Phase};
use crate::limits;
use crate::model::{Due, ItemStatus};

/// The longest notification a plugin may send, in bytes.
const MAX_NOTIFICATION_BYTES: usize = 4 * 1024;
/// How many notifications one call may send.
const MAX_NOTIFICATIONS_PER_CALL: usize = 16;

impl Host for HostState {
    async fn submit(&mut self, item: WitWorkItem) -> Result<String, WitError> {
        if self.identity.phase == Phase::Describe {
            return Err(WitError::Denied("describe() may not dispatch".into()));
        }
        if !self
            .identity
            .manifest
            .grants
            .allows_dispatch(&item.department)
        {
            tracing::warn!(department = %item.department, "dispatch to an ungranted department denied");
            self.identity
                .metrics
                .record_failure(crate::metrics::FailureKind::Denied);
            return Err(WitError::Denied(format!(
                "dispatch to department `{}` is not granted to plugin `{}`; its manifest must list it under grants.dispatch",
                item.department, self.identity.manifest.id
            )));
        }
        if item.task.trim().is_empty() {
            return Err(WitError::Invalid("a work item needs a task".into()));
        }
        if self.effects.items.len() >= limits::MAX_ITEMS_PER_CALL {
            return Err(WitError::Invalid(format!(
                "one call may dispatch at most {} items",
                limits::MAX_ITEMS_PER_CALL
            )));
        }
        if item.payload.len() > self.caps.max_json_bytes {
            return Err(WitError::Invalid(format!(
                "the payload is {} bytes; at most {} are allowed",
                item.payload.len(),
                self.caps.max_json_bytes
            )));
        }
        let payload: serde_json::Value = serde_json::from_str(&item.payload)
            .map_err(|e| WitError::Invalid(format!("the payload is not JSON: {e}")))?;
        let due = match item.due {
            WitDue::WorkingDays(n) => Due::WorkingDays(n),
            WitDue::Hours(n) => Due::Hours(n),
            WitDue::Minutes(n) => Due::Minutes(n),
        };
        let id = uuid::Uuid::now_v7().to_string();
        self.effects.items.push(Dispatched {
            id: id.clone(),
            department: item.department,
            task: item.task,
            payload,
            due,
        });
        Ok(id)
    }

    async fn cancel(&mut self, item_id: String) -> Result<(), WitError> {
        if self.identity.phase == Phase::Describe {
            return Err(WitError::Denied("describe() may not cancel".into()));
        }
        let item = self
            .storage
            .item(&item_id)
            .await
            .map_err(|_| WitError::Unavailable("work items cannot be read now".into()))?
            .filter(|item| item.case_id == self.identity.case_id)
            .ok_or_else(|| {
                WitError::NotFound(format!("item {item_id} is not part of this case"))
            })?;
        if item.status != ItemStatus::Pending {
            return Err(WitError::Invalid(format!(
                "item {item_id} is {}; only a pending item can be cancelled",
                item.status.as_str()
            )));
        }
        if !self.effects.cancelled.contains(&item_id) {
            self.effects.cancelled.push(item_id);
        }
        Ok(())
    }

    async fn notify(&mut self, message: String) -> Result<(), WitError> {
        if self.identity.phase == Phase::Describe {
            return Err(WitError::Denied("describe() may not notify".into()));
        }
        if message.len() > MAX_NOTIFICATION_BYTES {
            return Err(WitError::Invalid(format!(
                "a notification may be at most {MAX_NOTIFICATION_BYTES} bytes"
            )));
        }
        if self.effects.notifications.len() >= MAX_NOTIFICATIONS_PER_CALL {
            return Err(WitError::Invalid(format!(
                "one call may send at most {MAX_NOTIFICATIONS_PER_CALL} notifications"
            )));
        }
        self.effects.notifications.push(message);
        Ok(())
    }
}
