//! [`FailureLog`] on sled: failures under `f/` with a UUIDv7 key (so in the
//! order they were recorded), written through the writer with the audit
//! records of their reads.

use async_trait::async_trait;

use super::keys::FAILURES;
use super::writer::Write;
use super::{SledStorage, backend, decode};
use crate::storage::{AuditRecord, FailureLog, FailureRecord, StorageError};

#[async_trait]
impl FailureLog for SledStorage {
    async fn record_failure(
        &self,
        failure: FailureRecord,
        audit: Vec<AuditRecord>,
    ) -> Result<(), StorageError> {
        self.write(Write::Failure(failure, audit)).await
    }

    async fn failures(&self, limit: usize) -> Result<Vec<FailureRecord>, StorageError> {
        let mut found = Vec::new();
        for entry in self.db.scan_prefix(FAILURES).rev().take(limit) {
            let (k, bytes) = entry.map_err(backend)?;
            found.push(decode(&k, &bytes)?);
        }
        found.reverse();
        Ok(found)
    }
}
