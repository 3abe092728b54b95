//! The writer and flusher threads: group commit. The writer is the only
//! thread that writes the tree, so the checks a write needs (a case's
//! revision, an idempotency key, the audit chain's head) read a state
//! nothing else changes; it takes every write waiting, checks each against
//! the tree and the writes before it in the batch, and applies the batch
//! as one atomic sled batch. The flusher makes what was applied durable
//! with one flush and answers each caller. Both count what they do for
//! `/metrics` ([`WriterStats`]).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::Instant;

use chrono::Utc;
use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;

use super::counters::{RecountSlot, stage_deltas, stage_recount};
use super::keys::{
    AUDIT, AUDIT_HEAD, CASES, DATASETS, FAILURES, IDEMPOTENCY, ITEMS, Indexed, REGISTRY,
    access_keys, due_key, index_case, index_item, index_report, key,
};
use super::{backend, decode, encode};
use crate::model::{Case, ItemStatus};
use crate::ops::counters::{CaseFacts, ItemFacts, commit_deltas};
use crate::storage::{
    AuditEntry, AuditRecord, Commit, DatasetRecord, FailureRecord, IdempotencyRecord, StorageError,
};

/// The most writes one batch (and so one flush) covers.
const MAX_BATCH: usize = 256;

/// What the writer and the flusher count, read by [`CaseStore::writer_stats`](crate::storage::CaseStore::writer_stats).
#[derive(Default)]
pub(super) struct Counters {
    pub(super) writes: AtomicU64,
    pub(super) batches: AtomicU64,
    pub(super) busy_nanos: AtomicU64,
    pub(super) flushes: AtomicU64,
    pub(super) flush_nanos: AtomicU64,
}

impl Counters {
    pub(super) fn add_time(counter: &AtomicU64, since: Instant) {
        let nanos = u64::try_from(since.elapsed().as_nanos()).unwrap_or(u64::MAX);
        counter.fetch_add(nanos, Ordering::Relaxed);
    }
}

/// The queue to the writer thread, and the writer and flusher threads.
pub(super) struct Writer {
    pub(super) queue: mpsc::Sender<(Write, Reply)>,
    pub(super) threads: Vec<std::thread::JoinHandle<()>>,
}

/// Where a write's answer goes.
pub(super) type Reply = oneshot::Sender<Result<(), StorageError>>;

/// Applied writes waiting for the flush that makes them durable.
type Applied = Vec<(Result<(), StorageError>, Reply)>;

/// A write, applied by the writer thread.
pub(super) enum Write {
    Commit(Box<EncodedCommit>),
    Failure(FailureRecord, Vec<AuditRecord>),
    Import(String, Vec<DatasetRecord>),
    /// A dataset replaced whole: its old records removed, these written.
    Replace {
        dataset: String,
        records: Vec<DatasetRecord>,
        actor: String,
    },
    Registry(Vec<(String, Option<Vec<u8>>)>, Vec<AuditRecord>),
    /// Place-tree keys and values (already encoded), with their audit.
    Places(Vec<(Vec<u8>, Vec<u8>)>, Vec<AuditRecord>),
    /// Count every case and item again (see `counters.rs`).
    Recount {
        check_only: bool,
        report: RecountSlot,
    },
}

/// A commit with its case and items already encoded, on the caller's
/// thread: the writer thread is the serial part of every durable write, so
/// it does only what must be serial (checks, the audit chain, the batch).
pub(super) struct EncodedCommit {
    commit: Commit,
    case: Vec<u8>,
    items: Vec<Vec<u8>>,
}

impl EncodedCommit {
    pub(super) fn new(commit: Commit) -> Result<Self, StorageError> {
        Ok(EncodedCommit {
            case: encode(&commit.case)?,
            items: commit.items.iter().map(encode).collect::<Result<_, _>>()?,
            commit,
        })
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct AuditHead {
    pub(super) seq: u64,
    pub(super) hash: String,
}

/// What the writer thread owns: the database and the audit chain's head.
pub(super) struct WriterState {
    pub(super) db: Arc<sled::Db>,
    pub(super) head: AuditHead,
    pub(super) counters: Arc<Counters>,
    /// Minutes east of UTC of the host's local time: the months of the
    /// monthly counters.
    pub(super) utc_offset_minutes: i32,
}

/// Writes staged for a batch, by key (`None` removes the key), so that a
/// later write in the batch sees what an earlier one changed.
#[derive(Default)]
pub(super) struct Pending {
    pub(super) written: HashMap<Vec<u8>, Option<Vec<u8>>>,
}

impl Pending {
    pub(super) fn insert(&mut self, key: Vec<u8>, value: Vec<u8>) {
        self.written.insert(key, Some(value));
    }

    pub(super) fn remove(&mut self, key: Vec<u8>) {
        self.written.insert(key, None);
    }
}

impl WriterState {
    /// Takes batches of writes until the queue closes.
    pub(super) fn run(
        &mut self,
        inbox: &mpsc::Receiver<(Write, Reply)>,
        flusher: &mpsc::Sender<Applied>,
    ) {
        while let Ok(first) = inbox.recv() {
            let mut writes = vec![first];
            while writes.len() < MAX_BATCH {
                match inbox.try_recv() {
                    Ok(next) => writes.push(next),
                    Err(_) => break,
                }
            }
            let started = Instant::now();
            let count = writes.len() as u64;
            let applied = self.apply(writes);
            Counters::add_time(&self.counters.busy_nanos, started);
            self.counters.writes.fetch_add(count, Ordering::Relaxed);
            self.counters.batches.fetch_add(1, Ordering::Relaxed);
            if let Err(mpsc::SendError(applied)) = flusher.send(applied) {
                for (_, reply) in applied {
                    let _ = reply.send(Err(StorageError::Backend(
                        "the storage flusher has stopped".into(),
                    )));
                }
            }
        }
    }

    /// Checks each write, then applies all that passed as one atomic batch.
    fn apply(&mut self, writes: Vec<(Write, Reply)>) -> Applied {
        let head_before = self.head.clone();
        let mut pending = Pending::default();
        let mut results = Vec::with_capacity(writes.len());
        for (write, reply) in writes {
            // A write that fails its checks adds nothing to the batch.
            let mut own = Pending::default();
            let head = self.head.clone();
            let result = self.stage(write, &pending, &mut own);
            match result {
                Ok(()) => pending.written.extend(own.written),
                Err(_) => self.head = head,
            }
            results.push((result, reply));
        }
        if self.head.seq != head_before.seq {
            match encode(&self.head) {
                Ok(bytes) => pending.insert(AUDIT_HEAD.to_vec(), bytes),
                Err(e) => return fail_all(results, &e.to_string(), &mut self.head, head_before),
            }
        }
        let mut batch = sled::Batch::default();
        for (k, v) in pending.written {
            match v {
                Some(v) => batch.insert(k, v),
                None => batch.remove(k),
            }
        }
        if let Err(e) = self.db.apply_batch(batch) {
            return fail_all(results, &e.to_string(), &mut self.head, head_before);
        }
        results
    }

    /// Checks one write against the tree and the batch so far, and stages
    /// its changes in `own`.
    fn stage(
        &mut self,
        write: Write,
        pending: &Pending,
        own: &mut Pending,
    ) -> Result<(), StorageError> {
        match write {
            Write::Commit(commit) => self.stage_commit(*commit, pending, own),
            Write::Failure(failure, audit) => {
                let id = uuid::Uuid::now_v7();
                own.insert(key(FAILURES, &[id.as_bytes()]), encode(&failure)?);
                self.stage_audit(audit, own)
            }
            Write::Registry(writes, audit) => {
                for (k, value) in writes {
                    let k = key(REGISTRY, &[k.as_bytes()]);
                    match value {
                        Some(value) => own.insert(k, value),
                        None => own.remove(k),
                    }
                }
                self.stage_audit(audit, own)
            }
            Write::Places(writes, audit) => {
                for (k, value) in writes {
                    own.insert(k, value);
                }
                self.stage_audit(audit, own)
            }
            Write::Recount { check_only, report } => {
                let mut batch = Pending::default();
                batch.written.clone_from(&pending.written);
                let counted =
                    stage_recount(&self.db, &batch, own, self.utc_offset_minutes, check_only)?;
                *report.lock().unwrap_or_else(|e| e.into_inner()) = Some(counted);
                Ok(())
            }
            Write::Import(dataset, records) => {
                let audit = vec![AuditRecord::DatasetImport {
                    dataset: dataset.clone(),
                    records: records.len(),
                    actor: None,
                    replaced: None,
                }];
                for (k, json) in records {
                    own.insert(
                        key(DATASETS, &[dataset.as_bytes(), k.as_bytes()]),
                        json.into_bytes(),
                    );
                }
                self.stage_audit(audit, own)
            }
            Write::Replace {
                dataset,
                records,
                actor,
            } => {
                let before = self.dataset_keys(&dataset, pending)?;
                let audit = vec![AuditRecord::DatasetImport {
                    dataset: dataset.clone(),
                    records: records.len(),
                    actor: Some(actor),
                    replaced: Some(before.len()),
                }];
                for old in before {
                    own.remove(old);
                }
                for (k, json) in records {
                    own.insert(
                        key(DATASETS, &[dataset.as_bytes(), k.as_bytes()]),
                        json.into_bytes(),
                    );
                }
                self.stage_audit(audit, own)
            }
        }
    }

    /// Every record key of `dataset` as the batch so far leaves it.
    fn dataset_keys(
        &self,
        dataset: &str,
        pending: &Pending,
    ) -> Result<std::collections::BTreeSet<Vec<u8>>, StorageError> {
        let prefix = key(DATASETS, &[dataset.as_bytes(), b""]);
        let mut keys = std::collections::BTreeSet::new();
        for entry in self.db.scan_prefix(&prefix).keys() {
            keys.insert(entry.map_err(backend)?.to_vec());
        }
        for (k, value) in &pending.written {
            if k.starts_with(&prefix) {
                match value {
                    Some(_) => keys.insert(k.clone()),
                    None => keys.remove(k),
                };
            }
        }
        Ok(keys)
    }

    /// A key's value as the batch so far would leave it.
    fn current(
        &self,
        key: &[u8],
        pending: &Pending,
        own: &Pending,
    ) -> Result<Option<Vec<u8>>, StorageError> {
        if let Some(value) = own.written.get(key).or_else(|| pending.written.get(key)) {
            return Ok(value.clone());
        }
        Ok(self.db.get(key).map_err(backend)?.map(|v| v.to_vec()))
    }

    fn stage_commit(
        &mut self,
        encoded: EncodedCommit,
        pending: &Pending,
        own: &mut Pending,
    ) -> Result<(), StorageError> {
        let EncodedCommit {
            commit:
                Commit {
                    case,
                    expected_revision,
                    items,
                    audit,
                    idempotency,
                },
            case: case_bytes,
            items: item_bytes,
        } = encoded;
        let case_key = key(CASES, &[case.id.as_bytes()]);
        let case_before = match (expected_revision, self.current(&case_key, pending, own)?) {
            (None, None) => None,
            (Some(expected), Some(bytes)) => {
                let stored: Case = decode(&case_key, &bytes)?;
                if stored.revision != expected {
                    return Err(StorageError::Conflict { case_id: case.id });
                }
                Some(CaseFacts::from(&stored))
            }
            _ => return Err(StorageError::Conflict { case_id: case.id }),
        };
        let mut items_before = Vec::with_capacity(items.len());
        if let Some(record) = &idempotency {
            let idem_key = key(
                IDEMPOTENCY,
                &[record.scenario.as_bytes(), record.key.as_bytes()],
            );
            if let Some(existing) = self.current(&idem_key, pending, own)? {
                let existing: IdempotencyRecord = decode(&idem_key, &existing)?;
                return Err(StorageError::IdempotencyTaken {
                    case_id: existing.case_id,
                });
            }
            own.insert(idem_key, encode(record)?);
        }
        index_case(
            &case.scenario,
            &case.plugin_version,
            &case.id,
            case.subject.as_deref(),
            !case.status.is_final(),
            own,
        );
        own.insert(case_key, case_bytes);
        for (item, bytes) in items.iter().zip(item_bytes) {
            let item_key = key(ITEMS, &[item.id.as_bytes()]);
            let (stored, facts) = match self.current(&item_key, pending, own)? {
                Some(old) => (
                    Some(decode::<Indexed>(&item_key, &old)?),
                    Some(decode::<ItemFacts>(&item_key, &old)?),
                ),
                None => (None, None),
            };
            items_before.push(facts);
            own.insert(item_key, bytes);
            index_item(item, stored.as_ref(), own);
            index_report(item, stored.as_ref().and_then(|s| s.report_due_at), own);
            if item.status == ItemStatus::Pending && item.overdue_at.is_none() {
                own.insert(due_key(item), Vec::new());
            } else {
                own.remove(due_key(item));
            }
        }
        let deltas = commit_deltas(
            self.utc_offset_minutes,
            case_before.as_ref(),
            &CaseFacts::from(&case),
            items_before.into_iter().zip(&items),
        );
        let mut counted = Pending::default();
        stage_deltas(&deltas, |k| self.current(k, pending, own), &mut counted)?;
        own.written.extend(counted.written);
        self.stage_audit(audit, own)
    }

    fn stage_audit(
        &mut self,
        records: Vec<AuditRecord>,
        own: &mut Pending,
    ) -> Result<(), StorageError> {
        let at = Utc::now();
        for record in records {
            let entry = AuditEntry::link(self.head.seq + 1, at, record, self.head.hash.clone());
            for index in access_keys(&entry) {
                own.insert(index, Vec::new());
            }
            own.insert(key(AUDIT, &[&entry.seq.to_be_bytes()]), encode(&entry)?);
            self.head = AuditHead {
                seq: entry.seq,
                hash: entry.hash,
            };
        }
        Ok(())
    }
}

/// Answers every write of a batch that could not be applied with an error,
/// and rewinds the audit head.
fn fail_all(results: Applied, message: &str, head: &mut AuditHead, before: AuditHead) -> Applied {
    *head = before;
    results
        .into_iter()
        .map(|(result, reply)| {
            let result = result.and(Err(StorageError::Backend(format!(
                "write failed: {message}"
            ))));
            (result, reply)
        })
        .collect()
}

/// The flusher thread: one flush for every batch applied since the last
/// one. A write is answered only once a flush that began after it was
/// applied has finished, so every `Ok` is durable.
pub(super) fn flush_loop(db: &sled::Db, inbox: &mpsc::Receiver<Applied>, counters: &Counters) {
    while let Ok(first) = inbox.recv() {
        let mut waiting = first;
        while let Ok(more) = inbox.try_recv() {
            waiting.extend(more);
        }
        let started = Instant::now();
        let flushed = db.flush().map(|_| ()).map_err(backend);
        Counters::add_time(&counters.flush_nanos, started);
        counters.flushes.fetch_add(1, Ordering::Relaxed);
        for (result, reply) in waiting {
            let answer = match (&result, &flushed) {
                (Ok(()), Err(e)) => Err(StorageError::Backend(format!("flush failed: {e}"))),
                _ => result,
            };
            let _ = reply.send(answer);
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use super::super::SledStorage;
    use super::super::fixtures::commit;
    use super::*;
    use crate::storage::{AuditLog, CaseStore, GENESIS_HASH};

    #[tokio::test]
    async fn concurrent_commits_in_one_batch_are_checked_against_each_other() {
        let dir = tempfile::tempdir().unwrap();
        let storage = Arc::new(SledStorage::open(dir.path()).unwrap());
        // Many writers at once, so that batches form: each case created
        // once, then two updates from the same revision, of which one wins.
        let mut tasks = Vec::new();
        for n in 0..50 {
            let s = storage.clone();
            tasks.push(tokio::spawn(async move {
                let id = format!("case-{n}");
                s.commit(commit(&id, None, 0, Some(&format!("key-{}", n % 10))))
                    .await
            }));
        }
        let mut created = 0;
        for t in tasks {
            match t.await.unwrap() {
                Ok(()) => created += 1,
                Err(StorageError::IdempotencyTaken { .. }) => {}
                Err(e) => panic!("{e}"),
            }
        }
        // Ten keys: ten cases, however the batches fell.
        assert_eq!(created, 10);

        let first = storage.commit(commit("case-0", Some(0), 1, None)).await;
        let stale = storage.commit(commit("case-0", Some(0), 1, None)).await;
        assert!(first.is_ok());
        assert!(matches!(stale, Err(StorageError::Conflict { .. })));

        // The audit chain has one entry per applied commit, linked.
        let entries = storage.audit_entries(0, 1000).await.unwrap();
        assert_eq!(entries.len(), 11);
        let mut prev = GENESIS_HASH.to_owned();
        for (i, e) in entries.iter().enumerate() {
            assert_eq!(e.seq, i as u64 + 1);
            assert_eq!(e.prev_hash, prev);
            assert_eq!(e.hash, e.expected_hash());
            prev = e.hash.clone();
        }
    }
}
