//! The SDK's own types, converted to and from the WIT types at the edge;
//! one room per concern: the case (`case.rs`), work items (`work.rs`),
//! events (`event.rs`), outcomes (`outcome.rs`), the form (`form.rs`).

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::bindings::onething::scenario::types as wit;

mod case;
mod event;
mod form;
mod outcome;
mod work;

#[cfg(test)]
use case::parse_state;
pub use case::{Case, Clock};
pub use event::Event;
pub use form::{Field, FieldKind, Info};
pub use outcome::Outcome;
pub use work::{Due, Priority, Target, WorkItem};

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

/// How the area a case is in is being run (平战结合).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Mode {
    /// Day-to-day service.
    #[default]
    Normal,
    /// The area is in emergency mode: its items are urgent.
    Emergency,
}

impl From<wit::CaseMode> for Mode {
    fn from(m: wit::CaseMode) -> Self {
        match m {
            wit::CaseMode::Normal => Mode::Normal,
            wit::CaseMode::Emergency => Mode::Emergency,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;
