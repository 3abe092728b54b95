//! What a call decides.

use super::*;

/// What a call decides.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome<S> {
    /// The case's new status.
    pub status: Status,
    /// The plugin's new state for the case.
    pub state: S,
    /// What the applicant is told.
    pub message: String,
    /// Sets (or moves) the case's place; `None`: it stays as it is.
    pub place: Option<String>,
}

impl<S> Outcome<S> {
    /// Any status.
    pub fn new(status: Status, state: S, message: impl Into<String>) -> Self {
        Outcome {
            status,
            state,
            message: message.into(),
            place: None,
        }
    }

    /// Sets the case's place (e.g. from a residence record's `place`). The
    /// host checks it is a place of its tree (else the call fails as
    /// `invalid`) and routes the items this call dispatched from it.
    ///
    /// ```
    /// use onething_sdk::Outcome;
    ///
    /// let outcome = Outcome::in_progress((), "with the departments")
    ///     .at_place("cq/yuzhong/jiefangbei/minsheng/g01");
    /// assert_eq!(outcome.place.as_deref(), Some("cq/yuzhong/jiefangbei/minsheng/g01"));
    /// ```
    pub fn at_place(mut self, place: impl Into<String>) -> Self {
        self.place = Some(place.into());
        self
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
            place: self.place,
        })
    }
}
