//! Host-side bindings of the `onething:scenario` world, generated from
//! `wit/` by wasmtime's `bindgen!`. Nothing outside `runtime` uses them: the
//! runtime converts to and from the host's own types at the boundary.

#![allow(missing_docs)]

wasmtime::component::bindgen!({
    path: "../wit",
    world: "plugin",
    imports: { default: async },
    exports: { default: async },
});

pub use onething::scenario::types as wit;

use super::state::HostState;
use super::{CaseContext, CaseEvent, ScenarioError};
use crate::model::{CaseStatus, FieldKind, FieldSpec, ScenarioInfo};

pub(super) fn to_wit_case(case: &CaseContext) -> wit::CaseInfo {
    wit::CaseInfo {
        id: case.id.clone(),
        scenario: case.scenario.clone(),
        applicant: case.applicant.clone(),
        state: case.state.clone(),
    }
}

pub(super) fn to_wit_event(event: &CaseEvent) -> wit::CaseEvent {
    match event.clone() {
        CaseEvent::ItemCompleted {
            item_id,
            department,
            task,
            result,
        } => wit::CaseEvent::ItemCompleted(wit::ItemCompletion {
            item_id,
            department,
            task,
            result,
        }),
        CaseEvent::ItemRejected {
            item_id,
            department,
            task,
            reason,
        } => wit::CaseEvent::ItemRejected(wit::ItemRejection {
            item_id,
            department,
            task,
            reason,
        }),
        CaseEvent::ItemOverdue {
            item_id,
            department,
            task,
        } => wit::CaseEvent::ItemOverdue(wit::ItemOverdue {
            item_id,
            department,
            task,
        }),
        CaseEvent::Supplement(material) => wit::CaseEvent::Supplement(material),
    }
}

pub(super) fn from_wit_status(status: wit::CaseStatus) -> CaseStatus {
    match status {
        wit::CaseStatus::Submitted => CaseStatus::Submitted,
        wit::CaseStatus::InProgress => CaseStatus::InProgress,
        wit::CaseStatus::AwaitingCitizen => CaseStatus::AwaitingCitizen,
        wit::CaseStatus::Completed => CaseStatus::Completed,
        wit::CaseStatus::Rejected => CaseStatus::Rejected,
    }
}

/// The scenario's error, its message cut to `max` bytes: it is kept on the
/// case's record and shown to the applicant, so it is bounded like an
/// outcome's message (a refusal stays a refusal, not a plugin fault).
pub(super) fn from_wit_error(error: wit::Error, max: usize) -> ScenarioError {
    let cut = |m: String| {
        if m.len() <= max {
            return m;
        }
        let mut cut = super::log::truncate(&m, max.saturating_sub(3)).to_owned();
        cut.push('…');
        cut
    };
    match error {
        wit::Error::Denied(m) => ScenarioError::Denied(cut(m)),
        wit::Error::NotFound(m) => ScenarioError::NotFound(cut(m)),
        wit::Error::Invalid(m) => ScenarioError::Invalid(cut(m)),
        wit::Error::Unavailable(m) => ScenarioError::Unavailable(cut(m)),
    }
}

pub(super) fn from_wit_info(info: wit::Info) -> ScenarioInfo {
    ScenarioInfo {
        id: info.id,
        title: info.title,
        description: info.description,
        departments: info.departments,
        fields: info
            .fields
            .into_iter()
            .map(|f| FieldSpec {
                name: f.name,
                kind: match f.kind {
                    wit::FieldKind::Text => FieldKind::Text,
                    wit::FieldKind::Number => FieldKind::Number,
                    wit::FieldKind::Boolean => FieldKind::Boolean,
                    wit::FieldKind::Date => FieldKind::Date,
                    wit::FieldKind::Choice(choices) => FieldKind::Choice { choices },
                },
                required: f.required,
                description: f.description,
            })
            .collect(),
    }
}

impl wit::Host for HostState {}
