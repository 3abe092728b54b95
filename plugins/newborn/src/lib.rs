//! 新生儿出生一件事 — the newborn scenario.
//!
//! The parents apply once with the birth medical certificate's number. The
//! plugin checks the certificate (health), that the applicant is a parent
//! on it, and that the chosen parent is a registered resident (public
//! security), then dispatches four items, each due in 5 working days:
//! household registration, resident medical insurance enrolment, the social
//! security card and the vaccination record. When the household's resident
//! record has a `place`, the case is placed there: household registration
//! goes to the police office of the family's district, the other three to
//! the city's offices. See README.md for the paths.

use std::collections::BTreeMap;

use onething_sdk::{
    Case, Due, Error, Event, Field, Info, Outcome, Scenario, WorkItem, data, dispatch, evidence,
    export_scenario, info,
};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// Every item is due within 5 working days (the published promise).
const DUE: Due = Due::WorkingDays(5);

/// The four items: (department, task, the level of the office that takes
/// it when the case has a place).
const ITEMS: [(&str, &str, &str); 4] = [
    ("public-security", "household-registration", "district"),
    ("medical-insurance", "resident-enrolment", "city"),
    ("hrss", "social-security-card", "city"),
    ("disease-control", "vaccination-record", "city"),
];

/// The level at which `task`'s office is chosen.
fn level_of(task: &str) -> Option<&'static str> {
    ITEMS
        .iter()
        .find(|(_, t, _)| *t == task)
        .map(|(_, _, level)| *level)
}

/// A birth medical certificate (出生医学证明), as health keeps it.
#[derive(Debug, Deserialize)]
struct Certificate {
    certificate_no: String,
    child_name: String,
    sex: String,
    born_at: String,
    hospital: String,
    mother_id: String,
    father_id: String,
}

/// A registered resident, as public security keeps them.
#[derive(Debug, Deserialize)]
struct Resident {
    household_id: String,
    address: String,
    /// Where the household lives: a place id of the host's tree (a grid,
    /// e.g. `cq/yubei/longxi/jinlong/g02`); records without one leave the
    /// case unplaced.
    #[serde(default)]
    place: Option<String>,
}

/// The application form.
#[derive(Debug, Deserialize)]
struct Application {
    certificate_no: String,
    child_name: String,
    applicant_id: String,
    household_of: String,
    phone: String,
    /// Show the parents what was fetched before anything is sent.
    #[serde(default)]
    preview_evidence: Option<bool>,
}

/// Where one dispatched item stands, as the plugin remembers it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct ItemState {
    department: String,
    task: String,
    status: ItemStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    result: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
enum ItemStatus {
    Pending,
    Completed,
    Rejected,
    /// Rejected, then dispatched again after a supplement.
    Replaced,
}

/// The plugin's state for one case.
#[derive(Debug, Default, Serialize, Deserialize)]
struct State {
    /// The check that refused the application, if one did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    failed_check: Option<String>,
    /// Every dispatched item by id (ids are time-ordered).
    #[serde(default)]
    items: BTreeMap<String, ItemState>,
    /// What each task's item carried, to send it again after a supplement.
    #[serde(default)]
    payloads: BTreeMap<String, Value>,
    /// The evidence waits for the parents' confirmation; nothing is sent yet.
    #[serde(default)]
    awaiting_evidence: bool,
}

impl State {
    fn refused(check: &str) -> Self {
        State {
            failed_check: Some(check.to_owned()),
            ..State::default()
        }
    }

    fn all_completed(&self) -> bool {
        ITEMS.iter().all(|(_, task, _)| {
            self.items
                .values()
                .any(|i| i.task == *task && i.status == ItemStatus::Completed)
        })
    }

    fn rejected(&self) -> Vec<(String, ItemState)> {
        self.items
            .iter()
            .filter(|(_, i)| i.status == ItemStatus::Rejected)
            .map(|(id, i)| (id.clone(), i.clone()))
            .collect()
    }

    /// Dispatches `task`; `placed` says whether the case has (or gets, in
    /// this call) a place to route from: then the item goes to the office
    /// at its level, otherwise to the department's top office as before
    /// places (a level target needs a place to start from).
    fn dispatch(
        &mut self,
        department: &str,
        task: &str,
        payload: Value,
        placed: bool,
    ) -> Result<(), Error> {
        let mut item = WorkItem::new(department, task, DUE, payload);
        if let Some(level) = level_of(task).filter(|_| placed) {
            item = item.at_level(level);
        }
        let id = dispatch::submit(item)?;
        self.items.insert(
            id,
            ItemState {
                department: department.to_owned(),
                task: task.to_owned(),
                status: ItemStatus::Pending,
                result: None,
                reason: None,
            },
        );
        Ok(())
    }
}

fn refuse(check: &str, message: String) -> Result<Outcome<State>, Error> {
    info!("application refused: {check}");
    Ok(Outcome::rejected(
        State::refused(check),
        format!("{check}: {message}"),
    ))
}

struct Newborn;

impl Scenario for Newborn {
    type Application = Application;
    type State = State;

    fn describe() -> Info {
        Info::from_manifest()
            .description(
                "After a birth, apply once: household registration, resident medical insurance, \
                 the social security card and the vaccination record, each within 5 working days. \
                 The birth medical certificate travels electronically; bring nothing.",
            )
            .department("health")
            .department("public-security")
            .department("medical-insurance")
            .department("hrss")
            .department("disease-control")
            .field(
                Field::text("certificate_no")
                    .required()
                    .describe("The number on the birth medical certificate (出生医学证明编号)."),
            )
            .field(
                Field::text("child_name")
                    .required()
                    .describe("The child's name as on the certificate."),
            )
            .field(Field::subject("applicant_id").required().describe(
                "The applying parent's ID number (the case's subject): yours, filled in from \
                 your token when left out, or that of a parent who gave you a mandate; the \
                 parent must be the mother or the father on the certificate.",
            ))
            .field(
                Field::choice("household_of", &["mother", "father"])
                    .required()
                    .describe("Whose household the child joins."),
            )
            .field(
                Field::text("phone")
                    .required()
                    .describe("A phone number for the departments to reach you."),
            )
            .field(Field::boolean("preview_evidence").describe(
                "Show me what was fetched about us before anything is sent (default: no).",
            ))
    }

    fn start(_case: &Case, form: Application) -> Result<Outcome<State>, Error> {
        let Some(cert) = data::query::<Certificate>(
            "health/birth-certificates",
            &form.certificate_no,
            "verify the birth medical certificate for newborn registration",
        )?
        else {
            return refuse(
                "certificate-not-found",
                format!(
                    "no birth medical certificate numbered {} is on record; check the number on the certificate",
                    form.certificate_no
                ),
            );
        };
        if cert.child_name != form.child_name {
            return refuse(
                "child-name-mismatch",
                format!(
                    "the certificate names the child {}, not {}",
                    cert.child_name, form.child_name
                ),
            );
        }
        if form.applicant_id != cert.mother_id && form.applicant_id != cert.father_id {
            return refuse(
                "applicant-not-parent",
                format!(
                    "the applicant is neither the mother nor the father on certificate {}; only a parent may apply",
                    cert.certificate_no
                ),
            );
        }
        let parent_id = if form.household_of == "mother" {
            &cert.mother_id
        } else {
            &cert.father_id
        };
        let Some(resident) = data::query::<Resident>(
            "public-security/residents",
            parent_id,
            "check the household the newborn joins",
        )?
        else {
            return refuse(
                "parent-not-resident",
                format!(
                    "the {} is not a registered resident; choose the other parent's household or register first",
                    form.household_of
                ),
            );
        };

        let child = json!({
            "certificate_no": cert.certificate_no,
            "child_name": cert.child_name,
            "sex": cert.sex,
            "born_at": cert.born_at,
        });
        let with = |extra: Value| {
            let mut payload = child.clone();
            if let (Value::Object(p), Value::Object(e)) = (&mut payload, extra) {
                p.extend(e);
            }
            payload
        };
        let payloads = [
            with(json!({
                "hospital": cert.hospital,
                "household_of": form.household_of,
                "parent_id": parent_id,
                "household_id": resident.household_id,
                "address": resident.address,
            })),
            with(json!({
                "household_id": resident.household_id,
                "applicant_id": form.applicant_id,
                "phone": form.phone,
            })),
            with(json!({
                "applicant_id": form.applicant_id,
                "phone": form.phone,
                "mail_to": resident.address,
            })),
            with(json!({"hospital": cert.hospital, "phone": form.phone})),
        ];
        // The case is where the household lives, when the record says.
        let place = resident.place.clone();
        let placed = |outcome: Outcome<State>| match &place {
            Some(place) => outcome.at_place(place.clone()),
            None => outcome,
        };
        let mut state = State::default();
        if form.preview_evidence == Some(true) {
            for ((_, task, _), payload) in ITEMS.iter().zip(payloads) {
                state.payloads.insert((*task).to_owned(), payload);
            }
            state.awaiting_evidence = true;
            return Ok(placed(evidence::preview(
                state,
                &[
                    (
                        "health",
                        format!(
                            "birth certificate {}: {}, born {} at {}",
                            cert.certificate_no, cert.child_name, cert.born_at, cert.hospital
                        ),
                    ),
                    (
                        "public-security",
                        format!(
                            "household {} at {}",
                            resident.household_id, resident.address
                        ),
                    ),
                ],
            )));
        }
        for ((department, task, _), payload) in ITEMS.iter().zip(payloads) {
            state.payloads.insert((*task).to_owned(), payload.clone());
            state.dispatch(department, task, payload, place.is_some())?;
        }
        info!("four items dispatched for {}", cert.certificate_no);
        Ok(placed(Outcome::in_progress(
            state,
            "Your application is accepted. Household registration, medical insurance, \
             the social security card and the vaccination record are with the departments, \
             each due within 5 working days.",
        )))
    }

    fn on_event(case: &Case, mut state: State, event: Event) -> Result<Outcome<State>, Error> {
        match event {
            Event::ItemCompleted {
                item_id, result, ..
            } => {
                let item = known_item(&mut state, &item_id)?;
                item.status = ItemStatus::Completed;
                item.result = Some(result);
                if state.all_completed() {
                    let done: Vec<String> = state
                        .items
                        .values()
                        .filter(|i| i.status == ItemStatus::Completed)
                        .map(|i| {
                            format!(
                                "{} {}: {}",
                                i.department,
                                i.task,
                                i.result.as_ref().map(Value::to_string).unwrap_or_default()
                            )
                        })
                        .collect();
                    let message = format!("All done. {}", done.join("; "));
                    return Ok(Outcome::completed(state, message));
                }
                Ok(current(
                    state,
                    "A department finished its item; the others are still at work.",
                ))
            }
            Event::ItemRejected {
                item_id,
                department,
                task,
                reason,
                ..
            } => {
                let item = known_item(&mut state, &item_id)?;
                item.status = ItemStatus::Rejected;
                item.reason = Some(reason.clone());
                Ok(Outcome::awaiting_citizen(
                    state,
                    format!(
                        "{department} could not do {task}: {reason}. Please supply what is missing \
                         (POST /v1/cases/{{case}}/supplements) and the item will be sent again."
                    ),
                ))
            }
            event @ Event::Supplement(_) if state.awaiting_evidence => {
                match evidence::answer(&event) {
                    Some(evidence::Answer::Confirmed) => {
                        state.awaiting_evidence = false;
                        for (department, task, _) in ITEMS {
                            let payload = state.payloads.get(task).cloned().unwrap_or(json!({}));
                            state.dispatch(department, task, payload, case.place().is_some())?;
                        }
                        Ok(Outcome::in_progress(
                            state,
                            "Thank you for confirming: the four items are with the departments, \
                             each due within 5 working days.",
                        ))
                    }
                    Some(evidence::Answer::Declined) => {
                        state.awaiting_evidence = false;
                        Ok(Outcome::rejected(
                            state,
                            "evidence-declined: you declined the evidence; nothing was sent. \
                             Ask the hospital or the police station to correct the record, then apply again.",
                        ))
                    }
                    None => Err(Error::Invalid(
                        "the evidence waits for your answer: confirm or decline it".into(),
                    )),
                }
            }
            Event::Supplement(material) => {
                let rejected = state.rejected();
                if rejected.is_empty() {
                    return Err(Error::Invalid(
                        "no rejected item is waiting for material".into(),
                    ));
                }
                for (id, item) in rejected {
                    let mut payload = state.payloads.get(&item.task).cloned().unwrap_or(json!({}));
                    if let Value::Object(p) = &mut payload {
                        p.insert("supplement".into(), material.clone());
                    }
                    if let Some(old) = state.items.get_mut(&id) {
                        old.status = ItemStatus::Replaced;
                    }
                    state.dispatch(
                        &item.department,
                        &item.task,
                        payload,
                        case.place().is_some(),
                    )?;
                }
                Ok(Outcome::in_progress(
                    state,
                    "Thank you: the material went to the departments that asked for it.",
                ))
            }
            Event::ItemOverdue {
                department, task, ..
            } => {
                dispatch::notify(&format!(
                    "{department} is past its time limit for {task}; the service centre has been told."
                ))?;
                Ok(current(state, "An item is overdue; it has been escalated."))
            }
            Event::CaseRated { .. } if state.all_completed() => Ok(Outcome::completed(
                state,
                "Thank you for rating the service.",
            )),
            // Escalations, reports and anything newer change nothing here.
            _ => Ok(current(state, "The departments are at work.")),
        }
    }
}

fn known_item<'a>(state: &'a mut State, item_id: &str) -> Result<&'a mut ItemState, Error> {
    state
        .items
        .get_mut(item_id)
        .ok_or_else(|| Error::NotFound(format!("item {item_id} is not part of this case")))
}

/// The status the case is in when nothing decisive happened.
fn current(state: State, message: &str) -> Outcome<State> {
    if state.rejected().is_empty() {
        Outcome::in_progress(state, message)
    } else {
        Outcome::awaiting_citizen(state, "An item was rejected and waits for your material.")
    }
}

export_scenario!(Newborn);
