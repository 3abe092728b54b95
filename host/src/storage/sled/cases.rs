//! [`CaseStore`] and [`ItemReader`] on sled: a commit goes to the writer
//! (see `writer.rs`), reads are single gets, and the open cases are counted
//! from their index (`o/`) without reading a case.

use std::sync::atomic::Ordering;
use std::time::Duration;

use async_trait::async_trait;

use super::keys::{CASES, IDEMPOTENCY, ITEMS, OPEN, SUBJECT_OPEN, key};
use super::writer::{EncodedCommit, Write};
use super::{SledStorage, backend};
use crate::model::{Case, WorkItem};
use crate::storage::{CaseStore, Commit, IdempotencyRecord, ItemReader, StorageError, WriterStats};

#[async_trait]
impl ItemReader for SledStorage {
    async fn item(&self, item_id: &str) -> Result<Option<WorkItem>, StorageError> {
        self.get(&key(ITEMS, &[item_id.as_bytes()]))
    }
}

#[async_trait]
impl CaseStore for SledStorage {
    async fn commit(&self, commit: Commit) -> Result<(), StorageError> {
        let encoded = EncodedCommit::new(commit)?;
        self.write(Write::Commit(Box::new(encoded))).await
    }

    fn writer_stats(&self) -> Option<WriterStats> {
        let c = &self.counters;
        Some(WriterStats {
            writes: c.writes.load(Ordering::Relaxed),
            batches: c.batches.load(Ordering::Relaxed),
            busy: Duration::from_nanos(c.busy_nanos.load(Ordering::Relaxed)),
            flushes: c.flushes.load(Ordering::Relaxed),
            flushing: Duration::from_nanos(c.flush_nanos.load(Ordering::Relaxed)),
        })
    }

    async fn case(&self, case_id: &str) -> Result<Option<Case>, StorageError> {
        self.get(&key(CASES, &[case_id.as_bytes()]))
    }

    async fn idempotency(
        &self,
        scenario: &str,
        idempotency_key: &str,
    ) -> Result<Option<IdempotencyRecord>, StorageError> {
        self.get(&key(
            IDEMPOTENCY,
            &[scenario.as_bytes(), idempotency_key.as_bytes()],
        ))
    }

    async fn open_cases(&self) -> Result<u64, StorageError> {
        let mut open = 0;
        for entry in self.db.scan_prefix(OPEN).keys() {
            entry.map_err(backend)?;
            open += 1;
        }
        Ok(open)
    }

    async fn open_case_of(
        &self,
        scenario: &str,
        subject: &str,
    ) -> Result<Option<String>, StorageError> {
        let prefix = key(
            SUBJECT_OPEN,
            &[scenario.as_bytes(), subject.as_bytes(), b""],
        );
        match self.db.scan_prefix(&prefix).keys().next() {
            Some(entry) => {
                let k = entry.map_err(backend)?;
                Ok(Some(
                    String::from_utf8_lossy(&k[prefix.len()..]).into_owned(),
                ))
            }
            None => Ok(None),
        }
    }

    async fn open_cases_by_version(
        &self,
    ) -> Result<std::collections::BTreeMap<(String, String), u64>, StorageError> {
        let mut open = std::collections::BTreeMap::new();
        for entry in self.db.scan_prefix(OPEN).keys() {
            let k = entry.map_err(backend)?;
            let mut parts = k[OPEN.len()..].split(|b| *b == 0);
            let (Some(scenario), Some(version)) = (parts.next(), parts.next()) else {
                continue;
            };
            let pin = (
                String::from_utf8_lossy(scenario).into_owned(),
                String::from_utf8_lossy(version).into_owned(),
            );
            *open.entry(pin).or_insert(0) += 1;
        }
        Ok(open)
    }
}
