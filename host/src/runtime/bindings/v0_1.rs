//! The `onething:scenario@0.1.0` world, kept so that components built for
//! it run unchanged: its bindings (generated from the frozen
//! `wit/v0.1.0/scenario.wit`) and the adapter to the host's 0.2.0 world, one
//! direction each (docs/design/wit-0.2.md, "Plugins of 0.1.0 keep running").
//!
//! - Host → plugin: `case-info` without subject, place, mode and clock (the
//!   call's WASI wall clock still reads the case clock);
//!   `item-completion`/`item-rejection` without handled-by and office; an
//!   event the 0.1.0 world lacks (`item-escalated`, `item-reported`,
//!   `case-rated`) is not sent at all ([`event`] answers `None`).
//! - Plugin → host: a `work-item` gets `target: none`, `escalation: none`,
//!   `priority: normal`, `report-due: none`; an `outcome` gets `place:
//!   none`; the 0.1.0 field kinds are a subset of 0.2.0's.
//!
//! The host functions are not written twice: each 0.1.0 import converts its
//! arguments and calls the 0.2.0 implementation (`data.rs`, `dispatch.rs`,
//! `log.rs`).

#![allow(missing_docs)]

wasmtime::component::bindgen!({
    path: "../wit/v0.1.0",
    world: "plugin",
    imports: { default: async },
    exports: { default: async },
});

use onething::scenario::types as old;

use super::v0_2::onething::scenario as new_if;
use super::v0_2::wit as new;
use crate::runtime::state::HostState;

/// The case as a 0.1.0 plugin sees it.
pub(in crate::runtime) fn case(case: &new::CaseInfo) -> old::CaseInfo {
    old::CaseInfo {
        id: case.id.clone(),
        scenario: case.scenario.clone(),
        applicant: case.applicant.clone(),
        state: case.state.clone(),
    }
}

/// The event as a 0.1.0 plugin sees it, or `None` for an event its world
/// lacks: it is kept on the case's timeline only, and the call is not made.
pub(in crate::runtime) fn event(event: &new::CaseEvent) -> Option<old::CaseEvent> {
    Some(match event.clone() {
        new::CaseEvent::ItemCompleted(c) => old::CaseEvent::ItemCompleted(old::ItemCompletion {
            item_id: c.item_id,
            department: c.department,
            task: c.task,
            result: c.result,
        }),
        new::CaseEvent::ItemRejected(r) => old::CaseEvent::ItemRejected(old::ItemRejection {
            item_id: r.item_id,
            department: r.department,
            task: r.task,
            reason: r.reason,
        }),
        new::CaseEvent::ItemOverdue(o) => old::CaseEvent::ItemOverdue(old::ItemOverdue {
            item_id: o.item_id,
            department: o.department,
            task: o.task,
        }),
        new::CaseEvent::Supplement(material) => old::CaseEvent::Supplement(material),
        new::CaseEvent::ItemEscalated(_)
        | new::CaseEvent::ItemReported(_)
        | new::CaseEvent::CaseRated(_) => return None,
    })
}

fn due(due: old::Due) -> new::Due {
    match due {
        old::Due::WorkingDays(n) => new::Due::WorkingDays(n),
        old::Due::Hours(n) => new::Due::Hours(n),
        old::Due::Minutes(n) => new::Due::Minutes(n),
    }
}

fn status(status: old::CaseStatus) -> new::CaseStatus {
    match status {
        old::CaseStatus::Submitted => new::CaseStatus::Submitted,
        old::CaseStatus::InProgress => new::CaseStatus::InProgress,
        old::CaseStatus::AwaitingCitizen => new::CaseStatus::AwaitingCitizen,
        old::CaseStatus::Completed => new::CaseStatus::Completed,
        old::CaseStatus::Rejected => new::CaseStatus::Rejected,
    }
}

/// A 0.1.0 work item with the 0.2.0 defaults.
pub(in crate::runtime) fn work_item(item: old::WorkItem) -> new::WorkItem {
    new::WorkItem {
        department: item.department,
        task: item.task,
        payload: item.payload,
        due: due(item.due),
        target: None,
        escalation: None,
        priority: new::Priority::Normal,
        report_due: None,
    }
}

/// A 0.1.0 outcome, with `place: none`.
pub(in crate::runtime) fn outcome(outcome: old::Outcome) -> new::Outcome {
    new::Outcome {
        status: status(outcome.status),
        state: outcome.state,
        message: outcome.message,
        place: None,
    }
}

/// A 0.1.0 error, as the host reads errors.
pub(in crate::runtime) fn error(error: old::Error) -> new::Error {
    match error {
        old::Error::Denied(m) => new::Error::Denied(m),
        old::Error::NotFound(m) => new::Error::NotFound(m),
        old::Error::Invalid(m) => new::Error::Invalid(m),
        old::Error::Unavailable(m) => new::Error::Unavailable(m),
    }
}

/// A host error, as a 0.1.0 plugin reads it.
fn error_back(error: new::Error) -> old::Error {
    match error {
        new::Error::Denied(m) => old::Error::Denied(m),
        new::Error::NotFound(m) => old::Error::NotFound(m),
        new::Error::Invalid(m) => old::Error::Invalid(m),
        new::Error::Unavailable(m) => old::Error::Unavailable(m),
    }
}

/// What a 0.1.0 `describe()` declares, in 0.2.0 terms.
pub(in crate::runtime) fn info(info: old::Info) -> new::Info {
    new::Info {
        id: info.id,
        title: info.title,
        description: info.description,
        departments: info.departments,
        fields: info
            .fields
            .into_iter()
            .map(|f| new::Field {
                name: f.name,
                kind: match f.kind {
                    old::FieldKind::Text => new::FieldKind::Text,
                    old::FieldKind::Number => new::FieldKind::Number,
                    old::FieldKind::Boolean => new::FieldKind::Boolean,
                    old::FieldKind::Date => new::FieldKind::Date,
                    old::FieldKind::Choice(choices) => new::FieldKind::Choice(choices),
                },
                required: f.required,
                description: f.description,
            })
            .collect(),
    }
}

impl old::Host for HostState {}

impl onething::scenario::data::Host for HostState {
    async fn query(
        &mut self,
        dataset: String,
        key: String,
        purpose: String,
    ) -> Result<Option<String>, old::Error> {
        new_if::data::Host::query(self, dataset, key, purpose)
            .await
            .map_err(error_back)
    }
}

impl onething::scenario::dispatch::Host for HostState {
    async fn submit(&mut self, item: old::WorkItem) -> Result<String, old::Error> {
        new_if::dispatch::Host::submit(self, work_item(item))
            .await
            .map_err(error_back)
    }

    async fn cancel(&mut self, item_id: String) -> Result<(), old::Error> {
        new_if::dispatch::Host::cancel(self, item_id)
            .await
            .map_err(error_back)
    }

    async fn notify(&mut self, message: String) -> Result<(), old::Error> {
        new_if::dispatch::Host::notify(self, message)
            .await
            .map_err(error_back)
    }
}

impl onething::scenario::log::Host for HostState {
    async fn log(&mut self, level: onething::scenario::log::Level, message: String) {
        use new_if::log::Level as New;
        use onething::scenario::log::Level as Old;
        let level = match level {
            Old::Trace => New::Trace,
            Old::Debug => New::Debug,
            Old::Info => New::Info,
            Old::Warn => New::Warn,
            Old::Error => New::Error,
        };
        new_if::log::Host::log(self, level, message).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn escalation() -> new::CaseEvent {
        new::CaseEvent::ItemEscalated(new::ItemEscalation {
            item_id: "i".into(),
            department: "d".into(),
            task: "t".into(),
            from_office: "d@a".into(),
            to_office: "d@b".into(),
            due: new::Due::Hours(2),
        })
    }

    #[test]
    fn events_the_old_world_lacks_are_not_sent() {
        assert!(event(&escalation()).is_none());
        let report = new::CaseEvent::ItemReported(new::ItemReport {
            item_id: "i".into(),
            department: "d".into(),
            task: "t".into(),
            handled_by: "d".into(),
            office: "d".into(),
        });
        assert!(event(&report).is_none());
        let rating = new::CaseEvent::CaseRated(new::CaseRating {
            score: 5,
            indicators: vec![],
            comment: String::new(),
        });
        assert!(event(&rating).is_none());
        let supplement = new::CaseEvent::Supplement("{}".into());
        assert!(matches!(
            event(&supplement),
            Some(old::CaseEvent::Supplement(_))
        ));
    }

    #[test]
    fn old_work_items_get_the_defaults() {
        let item = work_item(old::WorkItem {
            department: "d".into(),
            task: "t".into(),
            payload: "{}".into(),
            due: old::Due::WorkingDays(5),
        });
        assert!(item.target.is_none() && item.escalation.is_none() && item.report_due.is_none());
        assert!(matches!(item.priority, new::Priority::Normal));
        assert!(matches!(item.due, new::Due::WorkingDays(5)));
        let outcome = outcome(old::Outcome {
            status: old::CaseStatus::Completed,
            state: "{}".into(),
            message: "m".into(),
        });
        assert!(outcome.place.is_none());
    }
}
