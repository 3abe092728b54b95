//! 电瓶车入户充电 — a grid event (Chongqing's "141" grassroots system).
//!
//! No citizen files it: a sensor posts a reading to the scenario's events
//! endpoint. The loop is perceive → warn → handle → review (感知—预警—处置—复盘):
//! the grid worker at the sensor's grid (the case's place is the device's)
//! gets an item due in 30 minutes; each time it runs out the host moves it
//! up to the community's office, then the next one up, 30 minutes each;
//! when it runs out at the top, the town command centre of the sensor's
//! town gets a second item; once handled, a review item closes the loop.
//! The review may whistle (吹哨): a result with `"whistle": ["fire-safety",
//! …]` sends each named department a `handle-whistle` item that it must
//! report (报到) within 30 minutes, and the case closes when they are done.
//! See README.md.

use onething_sdk::{
    Case, Due, Error, Event, Field, Info, Outcome, Scenario, WorkItem, dispatch, export_scenario,
    info,
};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

const GRID: &str = "community-grid";
const CENTRE: &str = "town-command-centre";
/// The departments a review may whistle (the manifest grants them).
const WHISTLE: &[&str] = &["fire-safety", "urban-management"];

#[derive(Debug, Deserialize, Serialize, Clone)]
struct Reading {
    sensor_id: String,
    building: String,
    grid: String,
    detected_at: String,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
enum Stage {
    #[default]
    Handling,
    Escalated,
    Review,
    /// The review whistled departments; waiting for them.
    Whistled,
    Closed,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct State {
    stage: Stage,
    #[serde(default)]
    grid_item: String,
    #[serde(default)]
    centre_item: Option<String>,
    #[serde(default)]
    review_item: Option<String>,
    #[serde(default)]
    reading: Option<Value>,
    #[serde(default)]
    handled_by: Option<String>,
    /// The whistled departments' items still open.
    #[serde(default)]
    whistled: Vec<String>,
}

/// The departments a review's result whistles (`"whistle": [..]`), each
/// one the scenario may whistle.
fn whistled(result: &Value) -> Result<Vec<String>, Error> {
    let Some(named) = result.get("whistle") else {
        return Ok(Vec::new());
    };
    let Some(named) = named.as_array() else {
        return Err(Error::Invalid(
            "whistle: a list of departments, e.g. [\"fire-safety\"]".into(),
        ));
    };
    let mut departments: Vec<String> = Vec::new();
    for department in named {
        match department.as_str() {
            Some(d) if WHISTLE.contains(&d) => {
                if !departments.iter().any(|x| x == d) {
                    departments.push(d.to_owned());
                }
            }
            _ => {
                return Err(Error::Invalid(format!(
                    "whistle: {department} is not one of {}",
                    WHISTLE.join(", ")
                )));
            }
        }
    }
    Ok(departments)
}

struct Ebike;

impl Scenario for Ebike {
    type Application = Reading;
    type State = State;

    fn describe() -> Info {
        Info::from_manifest()
            .description(
                "Reported by sensors, not filed by citizens: an e-bike charging indoors is \
                 handled by the grid worker within 30 minutes, escalated to the town command \
                 centre on breach, and reviewed.",
            )
            .department(GRID)
            .department(CENTRE)
            .field(
                Field::text("sensor_id")
                    .required()
                    .describe("The sensor that reported."),
            )
            .field(
                Field::text("building")
                    .required()
                    .describe("Where: building and unit."),
            )
            .field(
                Field::text("grid")
                    .required()
                    .describe("The grid the building belongs to."),
            )
            .field(
                Field::text("detected_at")
                    .required()
                    .describe("When the sensor detected it."),
            )
    }

    fn start(_case: &Case, reading: Reading) -> Result<Outcome<State>, Error> {
        let payload = json!(reading);
        let id = dispatch::submit(
            WorkItem::new(
                GRID,
                "stop-indoor-charging",
                Due::Minutes(30),
                payload.clone(),
            )
            .escalates(Due::Minutes(30)),
        )?;
        info!("grid {} alerted for {}", reading.grid, reading.building);
        Ok(Outcome::in_progress(
            State {
                stage: Stage::Handling,
                grid_item: id,
                reading: Some(payload),
                ..State::default()
            },
            format!(
                "Grid worker of {} alerted; due within 30 minutes.",
                reading.grid
            ),
        ))
    }

    fn on_event(_case: &Case, mut state: State, event: Event) -> Result<Outcome<State>, Error> {
        match event {
            Event::ItemOverdue { item_id, .. }
                if item_id == state.grid_item && state.stage == Stage::Handling =>
            {
                let id = dispatch::submit(
                    WorkItem::new(
                        CENTRE,
                        "escalated-indoor-charging",
                        Due::Hours(2),
                        json!({"reading": state.reading, "escalated_from": item_id}),
                    )
                    .at_level("town"),
                )?;
                state.centre_item = Some(id);
                state.stage = Stage::Escalated;
                Ok(Outcome::in_progress(
                    state,
                    "Nobody handled it in time, up to the top grid office: escalated to the town command centre.",
                ))
            }
            Event::ItemEscalated {
                item_id, to_office, ..
            } if item_id == state.grid_item && state.stage == Stage::Handling => {
                Ok(Outcome::in_progress(
                    state,
                    format!(
                        "Not handled within 30 minutes: moved up to {to_office}, due within 30 minutes."
                    ),
                ))
            }
            Event::ItemOverdue { .. } => Ok(Outcome::in_progress(state, "A step is overdue.")),
            Event::ItemCompleted {
                item_id,
                department,
                result,
                handled_by,
                office,
                ..
            } => {
                let handles = item_id == state.grid_item
                    || state.centre_item.as_deref() == Some(item_id.as_str());
                if handles && matches!(state.stage, Stage::Handling | Stage::Escalated) {
                    // Whichever finishes the handling, the other item (if
                    // any) is no longer needed.
                    for other in [Some(state.grid_item.clone()), state.centre_item.clone()]
                        .into_iter()
                        .flatten()
                    {
                        if other != item_id {
                            let _ = dispatch::cancel(&other);
                        }
                    }
                    let id = dispatch::submit(
                        WorkItem::new(
                            CENTRE,
                            "review",
                            Due::Hours(24),
                            json!({"reading": state.reading, "handled_by": handled_by,
                                   "office": office, "handling": result}),
                        )
                        .at_level("town"),
                    )?;
                    state.review_item = Some(id);
                    state.handled_by = Some(handled_by);
                    state.stage = Stage::Review;
                    return Ok(Outcome::in_progress(
                        state,
                        format!("Handled by {department} ({office}); under review."),
                    ));
                }
                if state.review_item.as_deref() == Some(item_id.as_str()) {
                    let departments = whistled(&result)?;
                    if !departments.is_empty() {
                        // The hazard needs other departments (吹哨报到).
                        for department in &departments {
                            let id = dispatch::submit(
                                WorkItem::new(
                                    department,
                                    "handle-whistle",
                                    Due::Hours(72),
                                    json!({"reading": state.reading, "review": result}),
                                )
                                .reports_within(Due::Minutes(30))
                                .escalates(Due::Hours(72)),
                            )?;
                            state.whistled.push(id);
                        }
                        state.stage = Stage::Whistled;
                        return Ok(Outcome::in_progress(
                            state,
                            format!(
                                "Reviewed; whistled {}: each must report within 30 minutes.",
                                departments.join(", ")
                            ),
                        ));
                    }
                    state.stage = Stage::Closed;
                    return Ok(Outcome::completed(
                        state,
                        "Handled and reviewed: the loop is closed.",
                    ));
                }
                if let Some(outcome) = whistle_done(&mut state, &item_id) {
                    return Ok(outcome(state));
                }
                Err(Error::NotFound(format!(
                    "item {item_id} is not a step of this event"
                )))
            }
            Event::ItemRejected { item_id, .. } if state.whistled.contains(&item_id) => {
                match whistle_done(&mut state, &item_id) {
                    Some(outcome) => Ok(outcome(state)),
                    None => Ok(Outcome::in_progress(
                        state,
                        "A whistled department refused.",
                    )),
                }
            }
            Event::ItemRejected {
                department, reason, ..
            } => Ok(Outcome::awaiting_citizen(
                state,
                format!("{department} could not act: {reason}"),
            )),
            Event::Supplement(_) => Err(Error::Invalid("a grid event takes no material".into())),
            // Reports (once the host has them), a rating: the loop stands
            // where it is.
            _ => Ok(match state.stage {
                Stage::Closed => Outcome::completed(state, "The loop is closed."),
                _ => Outcome::in_progress(state, "The event is being handled."),
            }),
        }
    }
}

/// A whistled item finished: how the case stands now, or `None` if
/// `item_id` is not a whistled item.
fn whistle_done(state: &mut State, item_id: &str) -> Option<fn(State) -> Outcome<State>> {
    let at = state.whistled.iter().position(|id| id == item_id)?;
    state.whistled.remove(at);
    if state.whistled.is_empty() {
        state.stage = Stage::Closed;
        Some(|state| {
            Outcome::completed(
                state,
                "Handled, reviewed, and the whistled departments finished: the loop is closed.",
            )
        })
    } else {
        Some(|state| Outcome::in_progress(state, "A whistled department finished."))
    }
}

export_scenario!(Ebike);
