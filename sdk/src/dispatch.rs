//! Hand work to departments and tell the applicant.

use crate::bindings::onething::scenario::dispatch as wit;
use crate::bindings::onething::scenario::types;
use crate::{Due, Error, WorkItem};

/// Dispatches a work item and returns its id. The item reaches the
/// department only if the call that submitted it succeeds.
pub fn submit(item: WorkItem) -> Result<String, Error> {
    let payload = serde_json::to_string(&item.payload)
        .map_err(|e| Error::Invalid(format!("the payload cannot be serialised: {e}")))?;
    let item = types::WorkItem {
        department: item.department,
        task: item.task,
        payload,
        due: match item.due {
            Due::WorkingDays(n) => types::Due::WorkingDays(n),
            Due::Hours(n) => types::Due::Hours(n),
            Due::Minutes(n) => types::Due::Minutes(n),
        },
    };
    Ok(wit::submit(&item)?)
}

/// Cancels a pending work item of this case (e.g. to compensate when a later
/// step failed); its department sees it as cancelled. Takes effect only if
/// the call succeeds.
pub fn cancel(item_id: &str) -> Result<(), Error> {
    Ok(wit::cancel(item_id)?)
}

/// Sends the applicant a notification (kept on the case's timeline).
pub fn notify(message: &str) -> Result<(), Error> {
    Ok(wit::notify(message)?)
}
