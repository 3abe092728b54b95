//! 医保关系转移接续 — moving basic medical insurance between regions
//! (医保办发〔2021〕43号).
//!
//! The sending office must finish first (10 working days, it issues the
//! transfer information form with an electronic seal); only then is the
//! receiving office's item dispatched (5 working days). The case shows each
//! side's item and status.
//!
//! The two offices are two districts of the host's place tree, when it
//! knows them: the sending office is the district the insurance is held in
//! (the enrolment record's `place`: the applicant should not have to know
//! it), the receiving office the district the applicant names (`to_district`,
//! a place field, which also places the case). See README.md.

use onething_sdk::{
    Case, Due, Error, Event, Field, Info, Outcome, Scenario, WorkItem, data, dispatch,
    export_scenario, info,
};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

const DEPARTMENT: &str = "medical-insurance";
const SENDING: &str = "transfer-out";
const RECEIVING: &str = "transfer-in";

/// An enrolment, as medical insurance keeps it.
#[derive(Debug, Deserialize)]
struct Enrolment {
    region: String,
    status: String,
    /// The district office that holds the insurance, as a place id
    /// (`cq/yuzhong`); none when it is not on this host's tree (another
    /// province).
    #[serde(default)]
    place: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Application {
    applicant_id: String,
    from_region: String,
    to_region: String,
    phone: String,
    /// The district the applicant moves to, when it is on this host's tree.
    #[serde(default)]
    to_district: Option<String>,
}

/// Where the transfer stands.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
enum Phase {
    #[default]
    Refused,
    Sending,
    Receiving,
    Done,
    Stopped,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct State {
    phase: Phase,
    #[serde(default)]
    sending_item: Option<String>,
    #[serde(default)]
    receiving_item: Option<String>,
    #[serde(default)]
    to_region: String,
    #[serde(default)]
    applicant_id: String,
    #[serde(default)]
    phone: String,
    /// The receiving district, if the applicant named one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    to_district: Option<String>,
}

struct Transfer;

impl Scenario for Transfer {
    type Application = Application;
    type State = State;

    fn describe() -> Info {
        Info::from_manifest()
            .description(
                "Move your basic medical insurance to another region: the office you leave \
                 completes within 10 working days, then the office you join within 5.",
            )
            .department(DEPARTMENT)
            .field(
                Field::text("applicant_id")
                    .required()
                    .describe("Your ID number."),
            )
            .field(
                Field::text("from_region")
                    .required()
                    .describe("The region you are insured in now."),
            )
            .field(
                Field::text("to_region")
                    .required()
                    .describe("The region you move to."),
            )
            .field(
                Field::text("phone")
                    .required()
                    .describe("A phone number for the offices."),
            )
            .field(Field::place("to_district").describe(
                "The district you move to (a place id, e.g. cq/jiangbei), when it is in this \
                 city; its medical insurance office receives the transfer.",
            ))
    }

    fn start(_case: &Case, form: Application) -> Result<Outcome<State>, Error> {
        let enrolment = data::query::<Enrolment>(
            "medical-insurance/enrolments",
            &form.applicant_id,
            "check the insurance to be transferred",
        )?;
        let refused = |check: &str, message: String| {
            Ok(Outcome::rejected(
                State::default(),
                format!("{check}: {message}"),
            ))
        };
        let Some(enrolment) = enrolment else {
            return refused(
                "not-enrolled",
                "no basic medical insurance is on record for the applicant".into(),
            );
        };
        if enrolment.status != "active" {
            return refused(
                "not-active",
                format!("the insurance is {}, not active", enrolment.status),
            );
        }
        if enrolment.region != form.from_region {
            return refused(
                "wrong-region",
                format!(
                    "the insurance is held in {}, not {}",
                    enrolment.region, form.from_region
                ),
            );
        }
        if form.from_region == form.to_region {
            return refused("same-region", "the two regions are the same".into());
        }
        if let (Some(from), Some(to)) = (&enrolment.place, &form.to_district)
            && from == to
        {
            return refused(
                "same-district",
                format!("the insurance is already held in {to}; there is nothing to transfer"),
            );
        }
        let mut sending = WorkItem::new(
            DEPARTMENT,
            SENDING,
            Due::WorkingDays(10),
            json!({"office": form.from_region, "applicant_id": form.applicant_id,
                   "to_region": form.to_region, "phone": form.phone}),
        );
        sending = match (&enrolment.place, &form.to_district) {
            // The district office that holds the insurance.
            (Some(from), _) => sending.at_place(from),
            // Held outside this tree, while the case is placed at the
            // receiving district: the city's office sends it on, not the
            // receiving district's.
            (None, Some(_)) => sending.at_level("city"),
            (None, None) => sending,
        };
        let id = dispatch::submit(sending)?;
        info!(
            "transfer from {} to {} started",
            form.from_region, form.to_region
        );
        Ok(Outcome::in_progress(
            State {
                phase: Phase::Sending,
                sending_item: Some(id),
                receiving_item: None,
                to_region: form.to_region,
                to_district: form.to_district,
                applicant_id: form.applicant_id,
                phone: form.phone,
            },
            "The office you leave has your transfer; it has 10 working days.",
        ))
    }

    fn on_event(_case: &Case, mut state: State, event: Event) -> Result<Outcome<State>, Error> {
        match event {
            Event::ItemCompleted {
                item_id, result, ..
            } => {
                if state.sending_item.as_deref() == Some(item_id.as_str())
                    && state.phase == Phase::Sending
                {
                    // The transfer information form travels to the receiving office.
                    let mut receiving = WorkItem::new(
                        DEPARTMENT,
                        RECEIVING,
                        Due::WorkingDays(5),
                        json!({"office": state.to_region, "applicant_id": state.applicant_id,
                               "phone": state.phone, "transfer_form": result}),
                    );
                    if let Some(to) = &state.to_district {
                        receiving = receiving.at_place(to);
                    }
                    let id = dispatch::submit(receiving)?;
                    state.receiving_item = Some(id);
                    state.phase = Phase::Receiving;
                    return Ok(Outcome::in_progress(
                        state,
                        "The office you leave has finished; the office you join has 5 working days.",
                    ));
                }
                if state.receiving_item.as_deref() == Some(item_id.as_str())
                    && state.phase == Phase::Receiving
                {
                    state.phase = Phase::Done;
                    let note = result
                        .get("note")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_owned();
                    return Ok(Outcome::completed(
                        state,
                        format!("Your insurance has moved. {note}")
                            .trim()
                            .to_owned(),
                    ));
                }
                Err(Error::NotFound(format!(
                    "item {item_id} is not a step of this transfer"
                )))
            }
            Event::ItemRejected { reason, task, .. } => {
                state.phase = Phase::Stopped;
                let side = if task == SENDING {
                    "the office you leave"
                } else {
                    "the office you join"
                };
                Ok(Outcome::rejected(
                    state,
                    format!("{side} refused the transfer: {reason}"),
                ))
            }
            Event::ItemOverdue { task, .. } => {
                let side = if task == SENDING {
                    "The office you leave"
                } else {
                    "The office you join"
                };
                dispatch::notify(&format!(
                    "{side} is past its time limit; the service centre has been told."
                ))?;
                Ok(Outcome::in_progress(
                    state,
                    "A step is overdue; it has been escalated.",
                ))
            }
            Event::Supplement(_) => {
                Err(Error::Invalid("this transfer asks for no material".into()))
            }
            // Escalations, reports, a rating: the transfer stands as it is.
            _ => Ok(current(state)),
        }
    }
}

/// The outcome that leaves the transfer where it stands.
fn current(state: State) -> Outcome<State> {
    match state.phase {
        Phase::Sending | Phase::Receiving => {
            Outcome::in_progress(state, "The transfer is with the offices.")
        }
        Phase::Done => Outcome::completed(state, "Your insurance has moved."),
        Phase::Refused | Phase::Stopped => Outcome::rejected(state, "The transfer was refused."),
    }
}

export_scenario!(Transfer);
