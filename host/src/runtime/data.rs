//! `onething:scenario/data`: a plugin reads what departments already know.
//!
//! Deny by default: a dataset the manifest does not grant answers `denied`.
//! Every attempt, allowed or not, is recorded in the call's effects and so
//! reaches the audit log, with the plugin's stated purpose.

use super::bindings::onething::scenario::data::Host;
use super::bindings::wit::Error as WitError;
use super::state::{DataRead, HostState, Phase};
use crate::limits;

impl Host for HostState {
    async fn query(
        &mut self,
        dataset: String,
        key: String,
        purpose: String,
    ) -> Result<Option<String>, WitError> {
        if self.identity.phase == Phase::Describe {
            return Err(WitError::Denied(
                "describe() may not read data; read it in start() or on-event()".into(),
            ));
        }
        if purpose.trim().is_empty() {
            return Err(WitError::Invalid(
                "a purpose is required: say why the citizen's data is read; it appears in their access log".into(),
            ));
        }
        if self.effects.reads.len() >= limits::MAX_READS_PER_CALL {
            return Err(WitError::Invalid(format!(
                "one call may read at most {} records",
                limits::MAX_READS_PER_CALL
            )));
        }
        let allowed = self.identity.manifest.grants.allows_dataset(&dataset);
        let mut read = DataRead {
            dataset,
            key,
            purpose,
            allowed,
            found: false,
        };
        if !allowed {
            tracing::warn!(dataset = %read.dataset, "plugin read of an ungranted dataset denied");
            self.identity
                .metrics
                .record_failure(crate::metrics::FailureKind::Denied);
            let message = format!(
                "dataset `{}` is not granted to plugin `{}`; its manifest must list it under grants.datasets",
                read.dataset, self.identity.manifest.id
            );
            self.effects.reads.push(read);
            return Err(WitError::Denied(message));
        }
        let answer = self
            .storage
            .dataset_record(&read.dataset, &read.key)
            .await
            .map_err(|err| {
                tracing::error!(error = %err, "dataset read failed");
                WitError::Unavailable(format!("dataset `{}` cannot be read now", read.dataset))
            })?;
        read.found = answer.is_some();
        self.effects.reads.push(read);
        Ok(answer)
    }
}
