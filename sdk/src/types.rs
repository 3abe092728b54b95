//! The SDK's own types, converted to and from the WIT types at the edge.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::bindings::onething::scenario::types as wit;

/// Why a call could not be carried out (the WIT `error` variant).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// Not allowed (e.g. a dataset the manifest does not grant).
    Denied(String),
    /// Something needed does not exist.
    NotFound(String),
    /// The input is malformed or breaks a rule of the scenario.
    Invalid(String),
    /// A dependency is out of reach for now; trying later may work.
    Unavailable(String),
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::Denied(m) => write!(f, "denied: {m}"),
            Error::NotFound(m) => write!(f, "not found: {m}"),
            Error::Invalid(m) => write!(f, "invalid: {m}"),
            Error::Unavailable(m) => write!(f, "unavailable: {m}"),
        }
    }
}

impl std::error::Error for Error {}

impl From<wit::Error> for Error {
    fn from(e: wit::Error) -> Self {
        match e {
            wit::Error::Denied(m) => Error::Denied(m),
            wit::Error::NotFound(m) => Error::NotFound(m),
            wit::Error::Invalid(m) => Error::Invalid(m),
            wit::Error::Unavailable(m) => Error::Unavailable(m),
        }
    }
}

impl From<Error> for wit::Error {
    fn from(e: Error) -> Self {
        match e {
            Error::Denied(m) => wit::Error::Denied(m),
            Error::NotFound(m) => wit::Error::NotFound(m),
            Error::Invalid(m) => wit::Error::Invalid(m),
            Error::Unavailable(m) => wit::Error::Unavailable(m),
        }
    }
}

/// Where a case stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Received; nothing decided yet.
    Submitted,
    /// Work items are with the departments.
    InProgress,
    /// Waiting for the applicant.
    AwaitingCitizen,
    /// Done.
    Completed,
    /// Refused or ended without being done.
    Rejected,
}

impl From<Status> for wit::CaseStatus {
    fn from(s: Status) -> Self {
        match s {
            Status::Submitted => wit::CaseStatus::Submitted,
            Status::InProgress => wit::CaseStatus::InProgress,
            Status::AwaitingCitizen => wit::CaseStatus::AwaitingCitizen,
            Status::Completed => wit::CaseStatus::Completed,
            Status::Rejected => wit::CaseStatus::Rejected,
        }
    }
}

/// The case a call is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Case {
    /// The case id.
    pub id: String,
    /// The scenario id.
    pub scenario: String,
    /// The applicant's id.
    pub applicant: String,
    raw_state: String,
}

impl Case {
    /// A case, as a test would build one.
    pub fn new(id: &str, scenario: &str, applicant: &str, state_json: &str) -> Self {
        Case {
            id: id.into(),
            scenario: scenario.into(),
            applicant: applicant.into(),
            raw_state: state_json.into(),
        }
    }

    /// The plugin's state for the case, as the host keeps it (`{}` at first).
    pub fn raw_state(&self) -> &str {
        &self.raw_state
    }

    /// The plugin's state, deserialised; an empty state (`{}` or nothing)
    /// gives `T::default()`.
    pub fn state<T: DeserializeOwned + Default>(&self) -> Result<T, Error> {
        parse_state(&self.raw_state)
    }
}

/// Parses a stored state: empty (or `{}`) is the default.
pub(crate) fn parse_state<T: DeserializeOwned + Default>(raw: &str) -> Result<T, Error> {
    let trimmed = raw.trim();
    if trimmed.is_empty() || trimmed == "{}" || trimmed == "null" {
        return Ok(T::default());
    }
    serde_json::from_str(trimmed)
        .map_err(|e| Error::Invalid(format!("the case's stored state cannot be read: {e}")))
}

impl From<wit::CaseInfo> for Case {
    fn from(c: wit::CaseInfo) -> Self {
        Case {
            id: c.id,
            scenario: c.scenario,
            applicant: c.applicant,
            raw_state: c.state,
        }
    }
}

/// A department's time limit for an item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Due {
    /// Working days (weekends and holidays do not count).
    WorkingDays(u32),
    /// Calendar hours.
    Hours(u32),
    /// Minutes.
    Minutes(u32),
}

/// A task for one department.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkItem {
    /// The department, e.g. `public-security`; must be granted in the manifest.
    pub department: String,
    /// What to do, e.g. `household-registration`.
    pub task: String,
    /// What the department needs to do it.
    pub payload: serde_json::Value,
    /// The time limit.
    pub due: Due,
}

impl WorkItem {
    /// An item for `department` to do `task` within `due`, with `payload`.
    pub fn new(department: &str, task: &str, due: Due, payload: serde_json::Value) -> Self {
        WorkItem {
            department: department.into(),
            task: task.into(),
            payload,
            due,
        }
    }
}

/// Something that happened to a case.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// A department completed an item.
    ItemCompleted {
        /// The item's id.
        item_id: String,
        /// The department.
        department: String,
        /// The item's task.
        task: String,
        /// What the department reports.
        result: serde_json::Value,
    },
    /// A department refused an item.
    ItemRejected {
        /// The item's id.
        item_id: String,
        /// The department.
        department: String,
        /// The item's task.
        task: String,
        /// The department's reason.
        reason: String,
    },
    /// An item is past its time limit.
    ItemOverdue {
        /// The item's id.
        item_id: String,
        /// The department.
        department: String,
        /// The item's task.
        task: String,
    },
    /// The applicant supplied material.
    Supplement(serde_json::Value),
}

fn parse_json(what: &str, text: &str) -> Result<serde_json::Value, Error> {
    serde_json::from_str(text).map_err(|e| Error::Invalid(format!("{what} is not JSON: {e}")))
}

impl TryFrom<wit::CaseEvent> for Event {
    type Error = Error;

    fn try_from(e: wit::CaseEvent) -> Result<Self, Error> {
        Ok(match e {
            wit::CaseEvent::ItemCompleted(c) => Event::ItemCompleted {
                result: parse_json("the item's result", &c.result)?,
                item_id: c.item_id,
                department: c.department,
                task: c.task,
            },
            wit::CaseEvent::ItemRejected(r) => Event::ItemRejected {
                item_id: r.item_id,
                department: r.department,
                task: r.task,
                reason: r.reason,
            },
            wit::CaseEvent::ItemOverdue(o) => Event::ItemOverdue {
                item_id: o.item_id,
                department: o.department,
                task: o.task,
            },
            wit::CaseEvent::Supplement(s) => Event::Supplement(parse_json("the supplement", &s)?),
        })
    }
}

/// What a call decides.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome<S> {
    /// The case's new status.
    pub status: Status,
    /// The plugin's new state for the case.
    pub state: S,
    /// What the applicant is told.
    pub message: String,
}

impl<S> Outcome<S> {
    /// Any status.
    pub fn new(status: Status, state: S, message: impl Into<String>) -> Self {
        Outcome {
            status,
            state,
            message: message.into(),
        }
    }

    /// Work is with the departments.
    pub fn in_progress(state: S, message: impl Into<String>) -> Self {
        Self::new(Status::InProgress, state, message)
    }

    /// The case waits for the applicant.
    pub fn awaiting_citizen(state: S, message: impl Into<String>) -> Self {
        Self::new(Status::AwaitingCitizen, state, message)
    }

    /// The thing is done.
    pub fn completed(state: S, message: impl Into<String>) -> Self {
        Self::new(Status::Completed, state, message)
    }

    /// The application is refused, or the case ends undone.
    pub fn rejected(state: S, message: impl Into<String>) -> Self {
        Self::new(Status::Rejected, state, message)
    }
}

impl<S: Serialize> Outcome<S> {
    pub(crate) fn into_wit(self) -> Result<wit::Outcome, Error> {
        let state = serde_json::to_string(&self.state)
            .map_err(|e| Error::Invalid(format!("the state cannot be serialised: {e}")))?;
        Ok(wit::Outcome {
            status: self.status.into(),
            state,
            message: self.message,
        })
    }
}

/// The type of an application field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FieldKind {
    /// A string.
    Text,
    /// A number.
    Number,
    /// true or false.
    Boolean,
    /// A `YYYY-MM-DD` date.
    Date,
    /// One of these strings.
    Choice(Vec<String>),
}

/// One field of the application form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    /// The JSON key.
    pub name: String,
    /// Its type.
    pub kind: FieldKind,
    /// Whether it must be given.
    pub required: bool,
    /// A sentence for the applicant.
    pub description: String,
}

impl Field {
    fn new(name: &str, kind: FieldKind) -> Self {
        Field {
            name: name.into(),
            kind,
            required: false,
            description: String::new(),
        }
    }

    /// A text field (optional until [`Field::required`]).
    pub fn text(name: &str) -> Self {
        Self::new(name, FieldKind::Text)
    }

    /// A number field.
    pub fn number(name: &str) -> Self {
        Self::new(name, FieldKind::Number)
    }

    /// A true/false field.
    pub fn boolean(name: &str) -> Self {
        Self::new(name, FieldKind::Boolean)
    }

    /// A `YYYY-MM-DD` date field.
    pub fn date(name: &str) -> Self {
        Self::new(name, FieldKind::Date)
    }

    /// A field whose value must be one of `choices`.
    pub fn choice(name: &str, choices: &[&str]) -> Self {
        Self::new(
            name,
            FieldKind::Choice(choices.iter().map(|c| (*c).to_owned()).collect()),
        )
    }

    /// Makes the field required.
    pub fn required(mut self) -> Self {
        self.required = true;
        self
    }

    /// Sets the sentence shown to the applicant.
    pub fn describe(mut self, description: &str) -> Self {
        self.description = description.into();
        self
    }
}

/// What a scenario is, for the catalogue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Info {
    /// The scenario id; must equal the manifest's id.
    pub id: String,
    /// The title shown to applicants.
    pub title: String,
    /// What the applicant gets done.
    pub description: String,
    /// Every department involved.
    pub departments: Vec<String>,
    /// The application form.
    pub fields: Vec<Field>,
}

impl Info {
    /// A scenario `id` titled `title`, with no fields yet.
    pub fn new(id: &str, title: &str) -> Self {
        Info {
            id: id.into(),
            title: title.into(),
            description: String::new(),
            departments: Vec::new(),
            fields: Vec::new(),
        }
    }

    /// Sets the description.
    pub fn description(mut self, text: &str) -> Self {
        self.description = text.into();
        self
    }

    /// Adds a department the scenario involves.
    pub fn department(mut self, department: &str) -> Self {
        self.departments.push(department.into());
        self
    }

    /// Adds a field to the form.
    pub fn field(mut self, field: Field) -> Self {
        self.fields.push(field);
        self
    }
}

impl From<Info> for wit::Info {
    fn from(i: Info) -> Self {
        wit::Info {
            id: i.id,
            title: i.title,
            description: i.description,
            departments: i.departments,
            fields: i
                .fields
                .into_iter()
                .map(|f| wit::Field {
                    name: f.name,
                    kind: match f.kind {
                        FieldKind::Text => wit::FieldKind::Text,
                        FieldKind::Number => wit::FieldKind::Number,
                        FieldKind::Boolean => wit::FieldKind::Boolean,
                        FieldKind::Date => wit::FieldKind::Date,
                        FieldKind::Choice(c) => wit::FieldKind::Choice(c),
                    },
                    required: f.required,
                    description: f.description,
                })
                .collect(),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[derive(Debug, Default, PartialEq, serde::Deserialize)]
    struct State {
        count: u32,
    }

    #[test]
    fn an_empty_state_is_the_default() {
        assert_eq!(parse_state::<State>("{}").unwrap(), State::default());
        assert_eq!(parse_state::<State>("").unwrap(), State::default());
        assert_eq!(
            parse_state::<State>("{\"count\":3}").unwrap(),
            State { count: 3 }
        );
        assert!(matches!(
            parse_state::<State>("[").unwrap_err(),
            Error::Invalid(_)
        ));
    }

    #[test]
    fn field_builders_set_what_they_say() {
        let f = Field::choice("side", &["mother", "father"])
            .required()
            .describe("whose household");
        assert!(f.required);
        assert_eq!(
            f.kind,
            FieldKind::Choice(vec!["mother".into(), "father".into()])
        );
        assert_eq!(f.description, "whose household");
        assert!(!Field::text("x").required);
    }

    #[test]
    fn outcomes_serialise_their_state() {
        let wit = Outcome::in_progress(vec![1, 2], "ok").into_wit().unwrap();
        assert_eq!(wit.state, "[1,2]");
        assert_eq!(wit.message, "ok");
    }
}
