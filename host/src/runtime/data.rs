//! `onething:scenario/data`: a plugin reads what departments already know.
//!
//! Deny by default: a dataset the manifest does not grant answers `denied`.
//! Every read is recorded in the call's effects and so reaches the audit
//! log, with the plugin's stated purpose; denied attempts are summed per
//! dataset (one audit record per dataset and call, with the count, and the
//! first one on the case's timeline), and past `limits.max_denied_per_call`
//! the call fails.
//!
//! Bounds: the dataset name and key (`limits.max_name_bytes`), the purpose
//! (`limits.max_purpose_bytes`), the number of reads
//! (`limits.max_reads_per_call`) and the bytes kept for them
//! (`limits.max_call_effect_bytes`). A value past its bound is answered
//! `invalid`, naming the bound, and fails the whole call.

use super::bindings::onething::scenario::data::Host;
use super::bindings::wit::Error as WitError;
use super::state::{DataRead, DeniedKind, HostState, Phase, stored_len};

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
        let names = self.limits.max_name_bytes;
        self.within(
            "the dataset name's length in bytes",
            dataset.len(),
            names,
            "max_name_bytes",
        )?;
        self.within(
            "the record key's length in bytes",
            key.len(),
            names,
            "max_name_bytes",
        )?;
        let max_purpose = self.limits.max_purpose_bytes;
        self.within(
            "the purpose's length in bytes",
            purpose.len(),
            max_purpose,
            "max_purpose_bytes",
        )?;
        if purpose.trim().is_empty() {
            return Err(WitError::Invalid(
                "a purpose is required: say why the citizen's data is read; it appears in their access log".into(),
            ));
        }
        let allowed = self.identity.manifest.grants.allows_dataset(&dataset);
        if !allowed {
            if let Some(error) = self.deny(DeniedKind::Read, &dataset) {
                return Err(error);
            }
            let message = format!(
                "dataset `{dataset}` is not granted to plugin `{}`; its manifest must list it under grants.datasets",
                self.identity.manifest.id
            );
            // The first denied read of a dataset in a call is kept like a
            // read (the citizen sees the attempt); the rest are counted.
            let first = !self
                .effects
                .reads
                .iter()
                .any(|r| !r.allowed && r.dataset == dataset);
            if first {
                self.record(DataRead {
                    dataset,
                    key,
                    purpose,
                    allowed: false,
                    found: false,
                })?;
            }
            return Err(WitError::Denied(message));
        }
        let answer = self
            .datasets
            .dataset_record(&dataset, &key)
            .await
            .map_err(|err| {
                tracing::error!(error = %err, "dataset read failed");
                WitError::Unavailable(format!("dataset `{dataset}` cannot be read now"))
            })?;
        self.record(DataRead {
            found: answer.is_some(),
            dataset,
            key,
            purpose,
            allowed: true,
        })?;
        Ok(answer)
    }
}

impl HostState {
    /// Keeps a read in the call's effects, within the count and byte bounds.
    fn record(&mut self, read: DataRead) -> Result<(), WitError> {
        let max = self.limits.max_reads_per_call;
        if self.effects.reads.len() >= max {
            return Err(self.cross(
                "the number of reads",
                self.effects.reads.len() + 1,
                max,
                "max_reads_per_call",
            ));
        }
        // Kept twice: on the case's timeline and on the audit log.
        let bytes = stored_len(&read.dataset) + stored_len(&read.key) + stored_len(&read.purpose);
        self.spend(bytes.saturating_mul(2))?;
        self.effects.reads.push(read);
        Ok(())
    }
}
