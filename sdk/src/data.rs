//! Read what departments already know.

use serde::de::DeserializeOwned;

use crate::Error;
use crate::bindings::onething::scenario::data as wit;

/// Reads one record of `dataset` (`DEPARTMENT/NAME`) by `key`, saying why
/// (`purpose` appears in the citizen's access log). `Ok(None)` when no
/// record has that key; `Err(Error::Denied)` when the manifest does not
/// grant the dataset.
pub fn query<T: DeserializeOwned>(
    dataset: &str,
    key: &str,
    purpose: &str,
) -> Result<Option<T>, Error> {
    match wit::query(dataset, key, purpose)? {
        None => Ok(None),
        Some(json) => serde_json::from_str(&json).map(Some).map_err(|e| {
            Error::Invalid(format!(
                "record `{key}` of `{dataset}` does not have the expected shape: {e}"
            ))
        }),
    }
}

/// Like [`query`], as untyped JSON.
pub fn query_json(
    dataset: &str,
    key: &str,
    purpose: &str,
) -> Result<Option<serde_json::Value>, Error> {
    query(dataset, key, purpose)
}
