//! 吹哨报到 — a whistle: the grid whistles, the departments report.
//!
//! A grid or town officer (never a citizen: the manifest's `applicants`)
//! names a problem at a place and the departments it needs. Each named
//! department gets one item `handle-whistle` at its office for that place,
//! with a report deadline (报到, `report_minutes`, default 30) and a
//! completion deadline (`resolve_hours`, default 72). A department that does
//! not report in time is moved one office up by the host. When every
//! department is done the case waits for the whistling officer, who
//! confirms the result (`{"confirm": true}`: completed, the departments'
//! feedback is the message) or sends it back once (`{"send_back":
//! "reason"}`: each department gets a `rework-whistle` item). See README.md.

use onething_sdk::{
    Case, Due, Error, Event, Field, Info, Outcome, Scenario, WorkItem, dispatch, export_scenario,
    info,
};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// The departments a whistle may name: the manifest's `grants.dispatch`.
const DEPARTMENTS: &[&str] = &[
    "fire-safety",
    "urban-management",
    "market-regulation",
    "public-security",
    "community-grid",
];

/// The report deadline's default and bounds, in minutes.
const REPORT_MINUTES: (u32, u32, u32) = (30, 5, 240);
/// The completion deadline's default and bounds, in hours.
const RESOLVE_HOURS: (u32, u32, u32) = (72, 1, 720);

#[derive(Debug, Deserialize)]
struct Whistle {
    title: String,
    description: String,
    location: String,
    departments: String,
    #[serde(default)]
    report_minutes: Option<u32>,
    #[serde(default)]
    resolve_hours: Option<u32>,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
enum Stage {
    #[default]
    Handling,
    Confirming,
    Closed,
}

/// One department's part of the whistle, in its current round.
#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
struct Job {
    department: String,
    item_id: String,
    #[serde(default)]
    done: bool,
    #[serde(default)]
    result: Option<Value>,
    #[serde(default)]
    refused: Option<String>,
    #[serde(default)]
    handled_by: Option<String>,
    #[serde(default)]
    office: Option<String>,
    #[serde(default)]
    reported_by: Option<String>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct State {
    stage: Stage,
    title: String,
    location: String,
    report_minutes: u32,
    resolve_hours: u32,
    jobs: Vec<Job>,
    /// The reason, once the officer sent the result back (only once).
    #[serde(default)]
    sent_back: Option<String>,
}

/// The departments of a whistle's `departments` text: comma-separated,
/// trimmed, each once, each one a whistle may name.
fn departments(text: &str) -> Result<Vec<String>, Error> {
    let mut named: Vec<String> = Vec::new();
    for department in text.split([',', '，']).map(str::trim) {
        if department.is_empty() || named.iter().any(|d| d == department) {
            continue;
        }
        if !DEPARTMENTS.contains(&department) {
            return Err(Error::Invalid(format!(
                "departments: `{department}` is not one a whistle may name; name some of {}",
                DEPARTMENTS.join(", ")
            )));
        }
        named.push(department.to_owned());
    }
    if named.is_empty() {
        return Err(Error::Invalid(format!(
            "departments: name at least one, comma-separated, of {}",
            DEPARTMENTS.join(", ")
        )));
    }
    Ok(named)
}

/// `value`, or `default` when absent, within `min..=max`.
fn bounded(
    field: &str,
    value: Option<u32>,
    (default, min, max): (u32, u32, u32),
) -> Result<u32, Error> {
    let value = value.unwrap_or(default);
    if (min..=max).contains(&value) {
        Ok(value)
    } else {
        Err(Error::Invalid(format!(
            "{field}: {value} is not from {min} to {max}"
        )))
    }
}

/// What the departments did, for the whistling officer.
fn feedback(jobs: &[Job]) -> String {
    jobs.iter()
        .map(|job| {
            let who = job.handled_by.as_deref().unwrap_or("?");
            let office = job.office.as_deref().unwrap_or(&job.department);
            match (&job.refused, &job.result) {
                (Some(reason), _) => format!("{office} ({who}) refused: {reason}"),
                (None, Some(result)) => format!("{office} ({who}): {result}"),
                (None, None) => format!("{office}: not finished"),
            }
        })
        .collect::<Vec<_>>()
        .join("; ")
}

impl State {
    /// Sends one item per department (`task`), for this round.
    fn dispatch(
        &mut self,
        departments: &[String],
        task: &str,
        payload: &Value,
    ) -> Result<(), Error> {
        let mut jobs = Vec::with_capacity(departments.len());
        for department in departments {
            let item_id = dispatch::submit(
                WorkItem::new(
                    department,
                    task,
                    Due::Hours(self.resolve_hours),
                    payload.clone(),
                )
                .at_place(&self.location)
                .reports_within(Due::Minutes(self.report_minutes))
                .escalates(Due::Hours(self.resolve_hours)),
            )?;
            jobs.push(Job {
                department: department.clone(),
                item_id,
                ..Job::default()
            });
        }
        self.jobs = jobs;
        Ok(())
    }

    fn job(&mut self, item_id: &str) -> Result<&mut Job, Error> {
        self.jobs
            .iter_mut()
            .find(|job| job.item_id == item_id && !job.done)
            .ok_or_else(|| Error::NotFound(format!("item {item_id} is not open in this whistle")))
    }

    /// After a department finished: wait for the others, or for the
    /// officer once all are done.
    fn after_finish(mut self, department: &str) -> Outcome<State> {
        let open: Vec<&str> = self
            .jobs
            .iter()
            .filter(|job| !job.done)
            .map(|job| job.department.as_str())
            .collect();
        if open.is_empty() {
            self.stage = Stage::Confirming;
            let message = format!(
                "Every department has finished — {}. Confirm the result with {{\"confirm\": true}}{}.",
                feedback(&self.jobs),
                if self.sent_back.is_none() {
                    ", or send it back once with {\"send_back\": \"reason\"}"
                } else {
                    ""
                }
            );
            return Outcome::awaiting_citizen(self, message);
        }
        let message = format!(
            "{department} has finished; waiting for {}.",
            open.join(", ")
        );
        Outcome::in_progress(self, message)
    }

    fn standing(self, message: String) -> Outcome<State> {
        match self.stage {
            Stage::Handling => Outcome::in_progress(self, message),
            Stage::Confirming => Outcome::awaiting_citizen(self, message),
            Stage::Closed => Outcome::completed(self, message),
        }
    }
}

struct WhistleScenario;

impl Scenario for WhistleScenario {
    type Application = Whistle;
    type State = State;

    fn describe() -> Info {
        let mut info = Info::from_manifest().description(
            "An officer whistles: each named department must report (报到) within minutes \
             and resolve the problem; the officer then confirms the result or sends it back once.",
        );
        for department in DEPARTMENTS {
            info = info.department(department);
        }
        info.field(Field::text("title").required().describe("What is wrong, in a line."))
            .field(
                Field::text("description")
                    .required()
                    .describe("What the grid found."),
            )
            .field(
                Field::place("location")
                    .required()
                    .describe("Where: a place in your area."),
            )
            .field(Field::text("departments").required().describe(
                "The departments it needs, comma-separated (fire-safety, urban-management, market-regulation, public-security, community-grid).",
            ))
            .field(
                Field::number("report_minutes")
                    .describe("Minutes each department has to report (报到): 5 to 240, default 30."),
            )
            .field(
                Field::number("resolve_hours")
                    .describe("Hours each department has to resolve it: 1 to 720, default 72."),
            )
    }

    fn start(_case: &Case, whistle: Whistle) -> Result<Outcome<State>, Error> {
        let named = departments(&whistle.departments)?;
        let mut state = State {
            stage: Stage::Handling,
            title: whistle.title.clone(),
            location: whistle.location.clone(),
            report_minutes: bounded("report_minutes", whistle.report_minutes, REPORT_MINUTES)?,
            resolve_hours: bounded("resolve_hours", whistle.resolve_hours, RESOLVE_HOURS)?,
            ..State::default()
        };
        let payload = json!({"title": whistle.title, "description": whistle.description,
                             "location": whistle.location});
        state.dispatch(&named, "handle-whistle", &payload)?;
        info!("whistle at {}: {}", state.location, named.join(", "));
        let message = format!(
            "Whistled {}: each must report within {} minutes.",
            named.join(", "),
            state.report_minutes
        );
        Ok(Outcome::in_progress(state, message))
    }

    fn on_event(_case: &Case, mut state: State, event: Event) -> Result<Outcome<State>, Error> {
        match event {
            Event::ItemReported {
                item_id,
                handled_by,
                office,
                ..
            } => {
                state.job(&item_id)?.reported_by = Some(handled_by.clone());
                Ok(state.standing(format!("{office} reported ({handled_by}).")))
            }
            Event::ItemEscalated {
                department,
                to_office,
                ..
            } => Ok(state.standing(format!(
                "{department} did not act in time: moved up to {to_office}."
            ))),
            Event::ItemCompleted {
                item_id,
                department,
                result,
                handled_by,
                office,
                ..
            } => {
                let job = state.job(&item_id)?;
                job.done = true;
                job.result = Some(result);
                job.handled_by = Some(handled_by);
                job.office = Some(office);
                Ok(state.after_finish(&department))
            }
            Event::ItemRejected {
                item_id,
                department,
                reason,
                handled_by,
                office,
                ..
            } => {
                let job = state.job(&item_id)?;
                job.done = true;
                job.refused = Some(reason);
                job.handled_by = Some(handled_by);
                job.office = Some(office);
                Ok(state.after_finish(&department))
            }
            Event::ItemOverdue { department, .. } => {
                Ok(state.standing(format!("{department} is past its time.")))
            }
            Event::Supplement(answer) => {
                if state.stage != Stage::Confirming {
                    return Err(Error::Invalid(
                        "the departments have not all finished: nothing to confirm yet".into(),
                    ));
                }
                if answer.get("confirm") == Some(&Value::Bool(true)) {
                    state.stage = Stage::Closed;
                    let message = format!("Confirmed by the grid — {}.", feedback(&state.jobs));
                    return Ok(Outcome::completed(state, message));
                }
                let Some(reason) = answer
                    .get("send_back")
                    .and_then(Value::as_str)
                    .map(str::trim)
                    .filter(|r| !r.is_empty())
                else {
                    return Err(Error::Invalid(
                        "answer {\"confirm\": true}, or {\"send_back\": \"reason\"} once".into(),
                    ));
                };
                if let Some(before) = &state.sent_back {
                    return Err(Error::Invalid(format!(
                        "this whistle was sent back once already (\"{before}\"): confirm the result"
                    )));
                }
                let named: Vec<String> = state.jobs.iter().map(|j| j.department.clone()).collect();
                let payload = json!({"title": state.title, "location": state.location,
                                     "send_back": reason, "before": feedback(&state.jobs)});
                state.sent_back = Some(reason.to_owned());
                state.dispatch(&named, "rework-whistle", &payload)?;
                state.stage = Stage::Handling;
                let message = format!("Sent back to {}: {reason}", named.join(", "));
                Ok(Outcome::in_progress(state, message))
            }
            _ => Ok(state.standing("The whistle is being handled.".into())),
        }
    }
}

export_scenario!(WhistleScenario);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn departments_are_trimmed_once_each_and_only_grantable_ones() {
        assert_eq!(
            departments(" fire-safety,urban-management，fire-safety ,").ok(),
            Some(vec![
                "fire-safety".to_owned(),
                "urban-management".to_owned()
            ])
        );
        assert!(matches!(departments(" , "), Err(Error::Invalid(_))));
        assert!(
            matches!(departments("fire-safety, tax"), Err(Error::Invalid(m)) if m.contains("`tax`"))
        );
    }

    #[test]
    fn deadlines_default_and_stay_in_bounds() {
        assert_eq!(
            bounded("report_minutes", None, REPORT_MINUTES).ok(),
            Some(30)
        );
        assert_eq!(
            bounded("report_minutes", Some(5), REPORT_MINUTES).ok(),
            Some(5)
        );
        assert!(bounded("report_minutes", Some(4), REPORT_MINUTES).is_err());
        assert!(bounded("report_minutes", Some(241), REPORT_MINUTES).is_err());
        assert_eq!(bounded("resolve_hours", None, RESOLVE_HOURS).ok(), Some(72));
    }

    #[test]
    fn the_feedback_names_each_office_and_officer() {
        let jobs = [
            Job {
                department: "fire-safety".into(),
                result: Some(json!({"fixed": "exit cleared"})),
                handled_by: Some("wang".into()),
                office: Some("fire-safety@cq/yubei/longxi".into()),
                done: true,
                ..Job::default()
            },
            Job {
                department: "urban-management".into(),
                refused: Some("not ours".into()),
                handled_by: Some("zhao".into()),
                done: true,
                ..Job::default()
            },
        ];
        let text = feedback(&jobs);
        assert!(
            text.contains("fire-safety@cq/yubei/longxi (wang)"),
            "{text}"
        );
        assert!(
            text.contains("urban-management (zhao) refused: not ours"),
            "{text}"
        );
    }
}
