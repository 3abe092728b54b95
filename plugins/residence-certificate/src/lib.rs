//! 居住证明 — the scenario written step by step in docs/plugin-authoring.md
//! (keep the two the same).

use onething_sdk::{
    Case, Due, Error, Event, Field, Info, Outcome, Scenario, WorkItem, data, dispatch,
    export_scenario,
};
use serde::Deserialize;
use serde_json::json;

#[derive(Deserialize)]
struct Form {
    applicant_id: String,
    purpose: String,
}

#[derive(Deserialize)]
struct Resident {
    name: String,
    address: String,
}

struct Residence;

impl Scenario for Residence {
    type Application = Form;
    type State = ();

    fn describe() -> Info {
        Info::from_manifest()
            .department("community")
            .field(
                Field::subject("applicant_id")
                    .required()
                    .describe(
                        "The resident's ID number (the case's subject): yours, or that of a resident who gave you a mandate.",
                    ),
            )
            .field(
                Field::text("purpose")
                    .required()
                    .describe("What the certificate is for."),
            )
    }

    fn start(_case: &Case, form: Form) -> Result<Outcome<()>, Error> {
        let Some(resident) = data::query::<Resident>(
            "public-security/residents",
            &form.applicant_id,
            "confirm the applicant's registered address for a residence certificate",
        )?
        else {
            return Ok(Outcome::rejected(
                (),
                "not-resident: no registered residence on record",
            ));
        };
        dispatch::submit(WorkItem::new(
            "community",
            "issue-residence-certificate",
            Due::WorkingDays(3),
            json!({"name": resident.name, "address": resident.address, "purpose": form.purpose}),
        ))?;
        Ok(Outcome::in_progress(
            (),
            "Your community will issue it within 3 working days.",
        ))
    }

    fn on_event(_case: &Case, state: (), event: Event) -> Result<Outcome<()>, Error> {
        Ok(match event {
            Event::ItemCompleted { .. } => Outcome::completed(state, "Your certificate is ready."),
            Event::ItemRejected { reason, .. } => Outcome::rejected(state, reason),
            _ => Outcome::in_progress(state, "The community is on it."),
        })
    }
}

export_scenario!(Residence);
