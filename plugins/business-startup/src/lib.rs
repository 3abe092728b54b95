//! 企业开办 — starting a business in one application.
//!
//! Market regulation registers the company (the licence) while the seal,
//! invoices, employee insurance, housing fund account and basic bank account
//! are dispatched at the same time (Shenzhen's model: half a day each), each
//! due in hours. If the registration is refused after other items went out,
//! the plugin compensates: it cancels the items still open and asks the
//! departments that already finished to reverse their work (`reverse-…`
//! items), and the case says so.
//!
//! The form's `district` (a place field) is where the company registers: it
//! places the case, and every item, reversals too, goes to its department's
//! office of that district (or the nearest above it, e.g. the city's tax
//! office). See README.md.

use std::collections::BTreeMap;

use onething_sdk::{
    Case, Due, Error, Event, Field, Info, Outcome, Scenario, WorkItem, dispatch, export_scenario,
    info,
};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

const REGISTRATION: &str = "company-registration";

/// (department, task, hours).
const ITEMS: [(&str, &str, u32); 6] = [
    ("market-regulation", REGISTRATION, 4),
    ("public-security", "company-seal", 4),
    ("tax", "invoice-issuance", 4),
    ("hrss", "employee-insurance", 4),
    ("housing-fund", "fund-account", 4),
    ("bank", "basic-account", 4),
];

#[derive(Debug, Deserialize, Serialize, Clone)]
struct Application {
    company_name: String,
    legal_person_id: String,
    address: String,
    registered_capital: f64,
    phone: String,
    /// The district the company registers in (a place id); optional, so
    /// that a host without a place tree still serves the scenario.
    #[serde(default)]
    district: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
enum Step {
    Pending,
    Completed,
    Rejected,
    Cancelled,
    /// A reversal of another item (compensation).
    Reversal,
    ReversalDone,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct ItemState {
    department: String,
    task: String,
    step: Step,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    result: Option<Value>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct State {
    #[serde(default)]
    items: BTreeMap<String, ItemState>,
    #[serde(default)]
    compensating: bool,
}

impl State {
    fn track(&mut self, id: String, department: &str, task: &str, step: Step) {
        self.items.insert(
            id,
            ItemState {
                department: department.into(),
                task: task.into(),
                step,
                result: None,
            },
        );
    }

    fn reversals_open(&self) -> usize {
        self.items
            .values()
            .filter(|i| i.step == Step::Reversal)
            .count()
    }
}

struct Startup;

impl Scenario for Startup {
    type Application = Application;
    type State = State;

    fn describe() -> Info {
        let mut info = Info::from_manifest()
            .description(
                "Register a company and, at the same time, get its seal, invoices, employee \
                 insurance, housing fund account and basic bank account: each in hours.",
            )
            .field(
                Field::text("company_name")
                    .required()
                    .describe("The reserved company name."),
            )
            .field(
                Field::text("legal_person_id")
                    .required()
                    .describe("The legal representative's ID number."),
            )
            .field(
                Field::text("address")
                    .required()
                    .describe("The registered address."),
            )
            .field(
                Field::number("registered_capital")
                    .required()
                    .describe("Registered capital, in yuan."),
            )
            .field(
                Field::text("phone")
                    .required()
                    .describe("A phone number for the departments."),
            )
            .field(Field::place("district").describe(
                "The district the company registers in (a place id, e.g. cq/yubei): its offices \
                 take the items.",
            ));
        for (department, _, _) in ITEMS {
            info = info.department(department);
        }
        info
    }

    fn start(case: &Case, form: Application) -> Result<Outcome<State>, Error> {
        // The district field placed the case before this call: route from it.
        let placed = case.place().is_some();
        let mut state = State::default();
        let company = json!({
            "company_name": form.company_name,
            "legal_person_id": form.legal_person_id,
            "address": form.address,
            "registered_capital": form.registered_capital,
            "phone": form.phone,
            "district": form.district,
        });
        for (department, task, hours) in ITEMS {
            let id = dispatch::submit(in_district(
                WorkItem::new(department, task, Due::Hours(hours), company.clone()),
                placed,
            ))?;
            state.track(id, department, task, Step::Pending);
        }
        info!("business start-up dispatched for {}", form.company_name);
        Ok(Outcome::in_progress(
            state,
            "Your company's registration, seal, invoices, employee insurance, housing fund and \
             bank account are all under way, each within 4 hours.",
        ))
    }

    fn on_event(case: &Case, mut state: State, event: Event) -> Result<Outcome<State>, Error> {
        match event {
            Event::ItemCompleted {
                item_id, result, ..
            } => {
                let item = state.items.get_mut(&item_id).ok_or_else(|| {
                    Error::NotFound(format!("item {item_id} is not part of this case"))
                })?;
                if item.step == Step::Reversal {
                    item.step = Step::ReversalDone;
                    let open = state.reversals_open();
                    return Ok(Outcome::rejected(
                        state,
                        format!(
                            "The registration was refused; compensation goes on: {open} reversal(s) still open."
                        ),
                    ));
                }
                item.step = Step::Completed;
                item.result = Some(result);
                let all = state
                    .items
                    .values()
                    .filter(|i| i.step == Step::Completed)
                    .count();
                if all == ITEMS.len() {
                    return Ok(Outcome::completed(
                        state,
                        "Your company is open: every item is done.",
                    ));
                }
                Ok(Outcome::in_progress(
                    state,
                    format!("{all} of {} items done.", ITEMS.len()),
                ))
            }
            Event::ItemRejected {
                item_id,
                department,
                task,
                reason,
                ..
            } => {
                if let Some(item) = state.items.get_mut(&item_id) {
                    item.step = Step::Rejected;
                }
                if task != REGISTRATION {
                    return Ok(Outcome::awaiting_citizen(
                        state,
                        format!("{department} could not do {task}: {reason}"),
                    ));
                }
                compensate(state, &reason, case.place().is_some())
            }
            Event::ItemOverdue {
                department, task, ..
            } => {
                dispatch::notify(&format!(
                    "{department} is past its time limit for {task}; the service centre has been told."
                ))?;
                let status = if state.compensating {
                    Outcome::rejected
                } else {
                    Outcome::in_progress
                };
                Ok(status(
                    state,
                    "An item is overdue; it has been escalated.".to_owned(),
                ))
            }
            Event::Supplement(_) => {
                Err(Error::Invalid("this scenario asks for no material".into()))
            }
            // Escalations, reports, a rating: the case stands as it is.
            _ => Ok(current(state)),
        }
    }
}

/// `item` for the office of the case's district when the case has a place
/// (`placed`); otherwise as before places (the department's top office).
fn in_district(item: WorkItem, placed: bool) -> WorkItem {
    if placed {
        item.at_level("district")
    } else {
        item
    }
}

/// The outcome that leaves the case where it stands.
fn current(state: State) -> Outcome<State> {
    let done = state
        .items
        .values()
        .filter(|i| i.step == Step::Completed)
        .count();
    if state.compensating {
        Outcome::rejected(state, "The registration was refused; compensation goes on.")
    } else if done == ITEMS.len() {
        Outcome::completed(state, "Your company is open: every item is done.")
    } else {
        Outcome::in_progress(state, format!("{done} of {} items done.", ITEMS.len()))
    }
}

/// The registration was refused: cancel what is still open, reverse what
/// was done, and say so.
fn compensate(mut state: State, reason: &str, placed: bool) -> Result<Outcome<State>, Error> {
    state.compensating = true;
    let mut cancelled = Vec::new();
    let mut reversed = Vec::new();
    let snapshot: Vec<(String, ItemState)> = state
        .items
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    for (id, item) in snapshot {
        match item.step {
            Step::Pending => {
                dispatch::cancel(&id)?;
                if let Some(i) = state.items.get_mut(&id) {
                    i.step = Step::Cancelled;
                }
                cancelled.push(item.department.clone());
            }
            Step::Completed => {
                let task = format!("reverse-{}", item.task);
                let reversal = dispatch::submit(in_district(
                    WorkItem::new(
                        &item.department,
                        &task,
                        Due::Hours(4),
                        json!({"reverses": id, "result": item.result, "reason": "company registration refused"}),
                    ),
                    placed,
                ))?;
                state.track(reversal, &item.department, &task, Step::Reversal);
                reversed.push(item.department.clone());
            }
            _ => {}
        }
    }
    let message = format!(
        "Market regulation refused the registration: {reason}. Compensation: cancelled the open items \
         of {} and asked {} to reverse what they did.",
        if cancelled.is_empty() {
            "no department".to_owned()
        } else {
            cancelled.join(", ")
        },
        if reversed.is_empty() {
            "no department".to_owned()
        } else {
            reversed.join(", ")
        },
    );
    Ok(Outcome::rejected(state, message))
}

export_scenario!(Startup);
