//! `onething:scenario/dispatch`: a plugin hands work to departments and
//! tells the applicant.
//!
//! Nothing is written here: items and notifications are collected in the
//! call's effects and committed with its outcome, so a call that fails
//! dispatches nothing.
//!
//! Bounds: department, task and item ids (`limits.max_name_bytes`), the
//! payload (`limits.max_plugin_json_bytes`), the time limit
//! (`limits.max_due_working_days`, `max_due_hours`, `max_due_minutes`),
//! notifications (`max_notification_bytes`, `max_notifications_per_call`),
//! the number of items and cancellations (`max_items_per_call`,
//! `max_cancels_per_call`) and the bytes kept for all of them
//! (`max_call_effect_bytes`). A value past its bound is answered `invalid`,
//! naming the bound, and fails the whole call. Denied dispatches are summed
//! per department (one audit record per department and call).

use super::bindings::onething::scenario::dispatch::Host;
use super::bindings::wit::{
    Due as WitDue, Error as WitError, Priority as WitPriority, Target as WitTarget,
    WorkItem as WitWorkItem,
};
use super::state::{DeniedKind, Dispatched, HostState, Phase, stored_json_len, stored_len};
use crate::model::{Due, Priority};
use crate::places::{Routed, Target};

impl HostState {
    /// The item's time limit, within its documented range.
    fn due(&mut self, due: WitDue) -> Result<Due, WitError> {
        let limits = self.limits.clone();
        let (n, max, key, unit, due) = match due {
            WitDue::WorkingDays(n) => (
                n,
                limits.max_due_working_days,
                "max_due_working_days",
                "working days",
                Due::WorkingDays(n),
            ),
            WitDue::Hours(n) => (
                n,
                limits.max_due_hours,
                "max_due_hours",
                "hours",
                Due::Hours(n),
            ),
            WitDue::Minutes(n) => (
                n,
                limits.max_due_minutes,
                "max_due_minutes",
                "minutes",
                Due::Minutes(n),
            ),
        };
        let what = format!("the item's time limit in {unit}");
        self.within(&what, n as usize, max as usize, key)?;
        Ok(due)
    }
}

impl Host for HostState {
    async fn submit(&mut self, item: WitWorkItem) -> Result<String, WitError> {
        if self.identity.phase == Phase::Describe {
            return Err(WitError::Denied("describe() may not dispatch".into()));
        }
        let names = self.limits.max_name_bytes;
        self.within(
            "the department's length in bytes",
            item.department.len(),
            names,
            "max_name_bytes",
        )?;
        self.within(
            "the task's length in bytes",
            item.task.len(),
            names,
            "max_name_bytes",
        )?;
        if !self
            .identity
            .manifest
            .grants
            .allows_dispatch(&item.department)
        {
            if let Some(error) = self.deny(DeniedKind::Dispatch, &item.department) {
                return Err(error);
            }
            return Err(WitError::Denied(format!(
                "dispatch to department `{}` is not granted to plugin `{}`; its manifest must list it under grants.dispatch",
                item.department, self.identity.manifest.id
            )));
        }
        if item.task.trim().is_empty() {
            return Err(WitError::Invalid("a work item needs a task".into()));
        }
        let target = match item.target {
            None => None,
            Some(WitTarget::Level(level)) => {
                if !crate::places::is_slug(&level) {
                    return Err(WitError::Invalid(format!(
                        "the target level `{}` is not a level name (lowercase letters, digits and `-`)",
                        super::log::truncate(&level, 200)
                    )));
                }
                Some(Target::Level(level))
            }
            Some(WitTarget::Place(place)) => {
                if self.identity.places.get(&place).is_none() {
                    return Err(WitError::NotFound(format!(
                        "the target place `{}` is not in the place tree",
                        super::log::truncate(&place, 200)
                    )));
                }
                Some(Target::Place(place))
            }
        };
        let max_items = self.limits.max_items_per_call;
        if self.effects.items.len() >= max_items {
            let count = self.effects.items.len() + 1;
            return Err(self.cross(
                "the number of work items",
                count,
                max_items,
                "max_items_per_call",
            ));
        }
        let max_json = self.limits.max_plugin_json_bytes;
        self.within(
            "the payload's length in bytes",
            item.payload.len(),
            max_json,
            "max_plugin_json_bytes",
        )?;
        let due = self.due(item.due)?;
        let escalation = match item.escalation {
            Some(escalation) => Some(self.due(escalation.next_due)?),
            None => None,
        };
        // The report step (报到): the office takes the item by then.
        let report_due = match item.report_due {
            Some(report_due) => Some(self.due(report_due)?),
            None => None,
        };
        let payload: serde_json::Value = serde_json::from_str(&item.payload)
            .map_err(|e| WitError::Invalid(format!("the payload is not JSON: {e}")))?;
        // Department and task are kept three times (item, timeline, audit),
        // the payload once, as compact JSON.
        let names = stored_len(&item.department) + stored_len(&item.task);
        self.spend(
            names
                .saturating_mul(3)
                .saturating_add(stored_json_len(&payload)),
        )?;
        let id = uuid::Uuid::now_v7().to_string();
        self.effects.items.push(Dispatched {
            id: id.clone(),
            department: item.department,
            task: item.task,
            payload,
            due,
            priority: match item.priority {
                WitPriority::Normal => Priority::Normal,
                WitPriority::Urgent => Priority::Urgent,
            },
            escalation,
            report_due,
            target,
            routed: Routed::default(),
        });
        Ok(id)
    }

    async fn cancel(&mut self, item_id: String) -> Result<(), WitError> {
        if self.identity.phase == Phase::Describe {
            return Err(WitError::Denied("describe() may not cancel".into()));
        }
        let names = self.limits.max_name_bytes;
        self.within(
            "the item id's length in bytes",
            item_id.len(),
            names,
            "max_name_bytes",
        )?;
        let max_cancels = self.limits.max_cancels_per_call;
        if self.effects.cancelled.len() >= max_cancels && !self.effects.cancelled.contains(&item_id)
        {
            let count = self.effects.cancelled.len() + 1;
            return Err(self.cross(
                "the number of cancelled items",
                count,
                max_cancels,
                "max_cancels_per_call",
            ));
        }
        let item = self
            .items
            .item(&item_id)
            .await
            .map_err(|_| WitError::Unavailable("work items cannot be read now".into()))?
            .filter(|item| item.case_id == self.identity.case_id)
            .ok_or_else(|| {
                WitError::NotFound(format!("item {item_id} is not part of this case"))
            })?;
        if !item.status.is_open() {
            return Err(WitError::Invalid(format!(
                "item {item_id} is {}; only a pending or held item can be cancelled",
                item.status.as_str()
            )));
        }
        if !self.effects.cancelled.contains(&item_id) {
            // Kept on the timeline and the audit log.
            self.spend(stored_len(&item_id).saturating_mul(2))?;
            self.effects.cancelled.push(item_id);
        }
        Ok(())
    }

    async fn notify(&mut self, message: String) -> Result<(), WitError> {
        if self.identity.phase == Phase::Describe {
            return Err(WitError::Denied("describe() may not notify".into()));
        }
        let max = self.limits.max_notification_bytes;
        self.within(
            "the notification's length in bytes",
            message.len(),
            max,
            "max_notification_bytes",
        )?;
        let max_count = self.limits.max_notifications_per_call;
        if self.effects.notifications.len() >= max_count {
            let count = self.effects.notifications.len() + 1;
            return Err(self.cross(
                "the number of notifications",
                count,
                max_count,
                "max_notifications_per_call",
            ));
        }
        self.spend(stored_len(&message))?;
        self.effects.notifications.push(message);
        Ok(())
    }
}
