//! Host-side bindings of the `onething:scenario@0.2.0` world (the host's
//! own), generated from `wit/scenario.wit` by wasmtime's `bindgen!`, and the
//! conversions between its types and the host's. The host functions
//! (`data.rs`, `dispatch.rs`, `log.rs`) implement this world; a 0.1.0
//! plugin reaches them through the adapter in `v0_1.rs`.

#![allow(missing_docs)]

wasmtime::component::bindgen!({
    path: "../wit/scenario.wit",
    world: "plugin",
    imports: { default: async },
    exports: { default: async },
});

pub use onething::scenario::types as wit;

use crate::model::{CaseStatus, Due, FieldKind, FieldSpec, ScenarioInfo};
use crate::runtime::state::HostState;
use crate::runtime::{CaseContext, CaseEvent, ScenarioError};

pub(in crate::runtime) fn to_wit_case(case: &CaseContext) -> wit::CaseInfo {
    wit::CaseInfo {
        id: case.id.clone(),
        scenario: case.scenario.clone(),
        applicant: case.applicant.clone(),
        subject: case.subject.clone(),
        // Until the closed loop (15): normal mode.
        place: case.place.clone(),
        mode: wit::CaseMode::Normal,
        clock: wit::CaseClock {
            unix_ms: case.now.timestamp_millis(),
            utc_offset_minutes: case.utc_offset_minutes,
        },
        state: case.state.clone(),
    }
}

pub(in crate::runtime) fn to_wit_event(event: &CaseEvent) -> wit::CaseEvent {
    match event.clone() {
        CaseEvent::ItemCompleted {
            item_id,
            department,
            task,
            result,
            office,
            handled_by,
        } => wit::CaseEvent::ItemCompleted(wit::ItemCompletion {
            item_id,
            handled_by,
            office,
            department,
            task,
            result,
        }),
        CaseEvent::ItemRejected {
            item_id,
            department,
            task,
            reason,
            office,
            handled_by,
        } => wit::CaseEvent::ItemRejected(wit::ItemRejection {
            item_id,
            handled_by,
            office,
            department,
            task,
            reason,
        }),
        CaseEvent::ItemEscalated {
            item_id,
            department,
            task,
            from_office,
            to_office,
            due,
        } => wit::CaseEvent::ItemEscalated(wit::ItemEscalation {
            item_id,
            department,
            task,
            from_office,
            to_office,
            due: match due {
                Due::WorkingDays(n) => wit::Due::WorkingDays(n),
                Due::Hours(n) => wit::Due::Hours(n),
                Due::Minutes(n) => wit::Due::Minutes(n),
            },
        }),
        CaseEvent::ItemReported {
            item_id,
            department,
            task,
            handled_by,
            office,
        } => wit::CaseEvent::ItemReported(wit::ItemReport {
            item_id,
            department,
            task,
            handled_by,
            office,
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

pub(in crate::runtime) fn from_wit_status(status: wit::CaseStatus) -> CaseStatus {
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
pub(in crate::runtime) fn from_wit_error(error: wit::Error, max: usize) -> ScenarioError {
    let cut = |m: String| {
        if m.len() <= max {
            return m;
        }
        let mut cut = crate::runtime::log::truncate(&m, max.saturating_sub(3)).to_owned();
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

/// What `describe()` declared, in the host's terms.
pub(in crate::runtime) fn from_wit_info(info: wit::Info) -> Result<ScenarioInfo, String> {
    let fields = info
        .fields
        .into_iter()
        .map(|f| {
            let kind = match f.kind {
                wit::FieldKind::Text => FieldKind::Text,
                wit::FieldKind::Number => FieldKind::Number,
                wit::FieldKind::Boolean => FieldKind::Boolean,
                wit::FieldKind::Date => FieldKind::Date,
                wit::FieldKind::Choice(choices) => FieldKind::Choice { choices },
                wit::FieldKind::Place => FieldKind::Place,
                wit::FieldKind::Subject => FieldKind::Subject,
            };
            Ok(FieldSpec {
                name: f.name,
                kind,
                required: f.required,
                description: f.description,
            })
        })
        .collect::<Result<_, String>>()?;
    Ok(ScenarioInfo {
        id: info.id,
        title: info.title,
        description: info.description,
        departments: info.departments,
        fields,
    })
}

impl wit::Host for HostState {}
