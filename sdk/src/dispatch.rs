//! Hand work to departments and tell the applicant.

use crate::bindings::onething::scenario::dispatch as wit;
use crate::{Error, WorkItem};

/// Dispatches a work item and returns its id. The item reaches the
/// department only if the call that submitted it succeeds; the host routes
/// it to an office (see [`WorkItem::at_level`]) when the call returns, from
/// the case's place as the outcome leaves it, and an item it cannot route
/// fails the call as `not-found`.
pub fn submit(item: WorkItem) -> Result<String, Error> {
    Ok(wit::submit(&item.into_wit()?)?)
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
