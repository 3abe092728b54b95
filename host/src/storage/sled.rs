//! The embedded default backend: sled, in the data dir.
//!
//! Trees: `cases` (id → case JSON), `items` (id → item JSON), `dept_items`
//! (department NUL item id → nothing; item ids are time-ordered, so a
//! prefix scan lists a queue oldest first), `idempotency` (scenario NUL key →
//! record), `datasets` (dataset NUL key → record JSON), `audit` (seq, big
//! endian → entry), `failures`, and `meta` (the audit chain's head).
//!
//! Every commit is one sled transaction over all the trees it touches, and
//! is flushed to disk before `commit` returns: an acknowledged application
//! survives a crash. The audit chain's head is read and written inside the
//! same transaction, so the chain never forks.
//!
//! Writes go through one writer thread (group commit): it takes every write
//! waiting in its queue and applies each as its own transaction, one after
//! the other (so they never conflict on the audit head and never retry).
//! A flusher thread then makes everything applied so far durable with one
//! flush and answers each caller, while the writer applies the next batch.
//! Under load one fsync covers a whole batch; alone, a write costs one
//! fsync as before.

use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::Utc;
use serde::{Deserialize, Serialize};
use sled::Transactional;
use tokio::sync::oneshot;
use sled::transaction::{ConflictableTransactionError, TransactionError, TransactionalTree};

use super::{
    AuditEntry, AuditRecord, Commit, DatasetRecord, FailureRecord, GENESIS_HASH, IdempotencyRecord,
    Storage, StorageError,
};
use crate::model::{Case, ItemStatus, WorkItem};

const AUDIT_HEAD: &[u8] = b"audit_head";

/// The most writes one flush covers.
const MAX_BATCH: usize = 256;

/// Storage on an embedded sled database.
pub struct SledStorage {
    trees: Arc<Trees>,
    writer: Option<Writer>,
}

/// The queue to the writer thread and its handle.
struct Writer {
    queue: std::sync::mpsc::Sender<(Write, Reply)>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

/// Where a write's answer goes.
type Reply = oneshot::Sender<Result<(), StorageError>>;

/// Applied writes waiting for the flush that makes them durable.
type Applied = Vec<(Result<(), StorageError>, Reply)>;

/// A write, applied by the writer thread.
enum Write {
    Commit(Commit),
    Failure(FailureRecord, Vec<AuditRecord>),
    Import(String, Vec<DatasetRecord>),
}

struct Trees {
    db: sled::Db,
    cases: sled::Tree,
    items: sled::Tree,
    dept_items: sled::Tree,
    idempotency: sled::Tree,
    datasets: sled::Tree,
    audit: sled::Tree,
    failures: sled::Tree,
    meta: sled::Tree,
}

#[derive(Debug, Serialize, Deserialize)]
struct AuditHead {
    seq: u64,
    hash: String,
}

fn backend(err: sled::Error) -> StorageError {
    StorageError::Backend(err.to_string())
}

fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, StorageError> {
    serde_json::to_vec(value).map_err(|e| StorageError::Backend(format!("encode: {e}")))
}

fn decode<T: for<'de> Deserialize<'de>>(key: &[u8], bytes: &[u8]) -> Result<T, StorageError> {
    serde_json::from_slice(bytes).map_err(|e| StorageError::Corrupt {
        key: String::from_utf8_lossy(key).into_owned(),
        message: e.to_string(),
    })
}

fn pair_key(a: &str, b: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(a.len() + b.len() + 1);
    key.extend_from_slice(a.as_bytes());
    key.push(0);
    key.extend_from_slice(b.as_bytes());
    key
}

/// An error raised inside a transaction: ours, or the backend's.
type TxError = ConflictableTransactionError<StorageError>;

fn abort(err: StorageError) -> TxError {
    ConflictableTransactionError::Abort(err)
}

fn tx_result<T>(result: Result<T, TransactionError<StorageError>>) -> Result<T, StorageError> {
    match result {
        Ok(value) => Ok(value),
        Err(TransactionError::Abort(err)) => Err(err),
        Err(TransactionError::Storage(err)) => Err(backend(err)),
    }
}

/// Appends `records` to the audit chain inside a transaction.
fn append_audit(
    audit: &TransactionalTree,
    meta: &TransactionalTree,
    records: Vec<AuditRecord>,
) -> Result<(), TxError> {
    if records.is_empty() {
        return Ok(());
    }
    let mut head = match meta.get(AUDIT_HEAD)? {
        Some(bytes) => decode::<AuditHead>(AUDIT_HEAD, &bytes).map_err(abort)?,
        None => AuditHead {
            seq: 0,
            hash: GENESIS_HASH.to_owned(),
        },
    };
    let at = Utc::now();
    for record in records {
        let entry = AuditEntry::link(head.seq + 1, at, record, head.hash.clone());
        audit.insert(&entry.seq.to_be_bytes(), encode(&entry).map_err(abort)?)?;
        head = AuditHead {
            seq: entry.seq,
            hash: entry.hash,
        };
    }
    meta.insert(AUDIT_HEAD, encode(&head).map_err(abort)?)?;
    Ok(())
}

impl SledStorage {
    /// Opens (or creates) the database in `dir` and starts its writer.
    pub fn open(dir: &Path) -> Result<Self, StorageError> {
        let db = sled::Config::new()
            .path(dir.join("db"))
            .open()
            .map_err(|e| StorageError::Backend(format!("cannot open {}: {e}", dir.display())))?;
        let tree = |name: &str| db.open_tree(name).map_err(backend);
        let trees = Arc::new(Trees {
            cases: tree("cases")?,
            items: tree("items")?,
            dept_items: tree("dept_items")?,
            idempotency: tree("idempotency")?,
            datasets: tree("datasets")?,
            audit: tree("audit")?,
            failures: tree("failures")?,
            meta: tree("meta")?,
            db,
        });
        let (queue, inbox) = std::sync::mpsc::channel();
        let (applied, to_flush) = std::sync::mpsc::channel();
        let spawn_error =
            |e: std::io::Error| StorageError::Backend(format!("cannot start a writer thread: {e}"));
        let writer_trees = trees.clone();
        let writer = std::thread::Builder::new()
            .name("onething-sled-writer".into())
            .spawn(move || write_loop(&writer_trees, &inbox, &applied))
            .map_err(spawn_error)?;
        let flusher_trees = trees.clone();
        let flusher = std::thread::Builder::new()
            .name("onething-sled-flusher".into())
            .spawn(move || flush_loop(&flusher_trees, &to_flush))
            .map_err(spawn_error)?;
        Ok(SledStorage {
            trees,
            writer: Some(Writer {
                queue,
                threads: vec![writer, flusher],
            }),
        })
    }

    /// Hands a write to the writer thread and waits until it is durable.
    async fn write(&self, write: Write) -> Result<(), StorageError> {
        let (reply, answer) = oneshot::channel();
        let queue = self
            .writer
            .as_ref()
            .map(|w| &w.queue)
            .ok_or_else(|| StorageError::Backend("storage is closed".into()))?;
        queue
            .send((write, reply))
            .map_err(|_| StorageError::Backend("the writer thread has stopped".into()))?;
        answer
            .await
            .map_err(|_| StorageError::Backend("the writer thread has stopped".into()))?
    }
}

impl Drop for SledStorage {
    fn drop(&mut self) {
        // Closing the queue ends the writer after it has answered every
        // write it took; joining it releases the database.
        if let Some(Writer { queue, threads }) = self.writer.take() {
            drop(queue);
            for thread in threads {
                let _ = thread.join();
            }
        }
    }
}

/// The writer thread: applies every waiting write as its own transaction,
/// one after the other, and hands the batch to the flusher. It goes on
/// applying the next batch while the flusher syncs the last one.
fn write_loop(
    trees: &Trees,
    inbox: &std::sync::mpsc::Receiver<(Write, Reply)>,
    flusher: &std::sync::mpsc::Sender<Applied>,
) {
    while let Ok(first) = inbox.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match inbox.try_recv() {
                Ok(next) => batch.push(next),
                Err(_) => break,
            }
        }
        let applied: Applied = batch
            .into_iter()
            .map(|(write, reply)| (trees.apply(write), reply))
            .collect();
        if let Err(std::sync::mpsc::SendError(applied)) = flusher.send(applied) {
            for (_, reply) in applied {
                let _ = reply.send(Err(StorageError::Backend("the flusher has stopped".into())));
            }
        }
    }
}

/// The flusher thread: one flush for every batch applied since the last
/// one; a write is answered only once a flush that began after it was
/// applied has finished, so every `Ok` is durable.
fn flush_loop(trees: &Trees, inbox: &std::sync::mpsc::Receiver<Applied>) {
    while let Ok(first) = inbox.recv() {
        let mut waiting = first;
        while let Ok(more) = inbox.try_recv() {
            waiting.extend(more);
        }
        let flushed = trees.db.flush().map(|_| ()).map_err(backend);
        for (result, reply) in waiting {
            let answer = match (&result, &flushed) {
                (Ok(()), Err(e)) => Err(StorageError::Backend(format!("flush failed: {e}"))),
                _ => result,
            };
            let _ = reply.send(answer);
        }
    }
}

impl Trees {
    fn apply(&self, write: Write) -> Result<(), StorageError> {
        match write {
            Write::Commit(commit) => self.commit(commit),
            Write::Failure(failure, audit) => self.record_failure(failure, audit),
            Write::Import(dataset, records) => self.import_dataset(&dataset, records),
        }
    }

    fn commit(&self, commit: Commit) -> Result<(), StorageError> {
        let Commit {
            case,
            expected_revision,
            items,
            audit,
            idempotency,
        } = commit;
        let case_bytes = encode(&case)?;
        let item_bytes = items
            .iter()
            .map(|item| Ok((item, encode(item)?)))
            .collect::<Result<Vec<_>, StorageError>>()?;
        let idem = match &idempotency {
            Some(record) => Some((pair_key(&record.scenario, &record.key), encode(record)?)),
            None => None,
        };
        let result = (
            &self.cases,
            &self.items,
            &self.dept_items,
            &self.idempotency,
            &self.audit,
            &self.meta,
        )
            .transaction(
                |(cases, items_tree, dept_items, idem_tree, audit_tree, meta)| {
                    let stored = cases.get(case.id.as_bytes())?;
                    match (expected_revision, stored) {
                        (None, None) => {}
                        (Some(expected), Some(bytes)) => {
                            let current: Case =
                                decode(case.id.as_bytes(), &bytes).map_err(abort)?;
                            if current.revision != expected {
                                return Err(abort(StorageError::Conflict {
                                    case_id: case.id.clone(),
                                }));
                            }
                        }
                        _ => {
                            return Err(abort(StorageError::Conflict {
                                case_id: case.id.clone(),
                            }));
                        }
                    }
                    if let Some((key, bytes)) = &idem {
                        if let Some(existing) = idem_tree.get(key)? {
                            let existing: IdempotencyRecord =
                                decode(key, &existing).map_err(abort)?;
                            return Err(abort(StorageError::IdempotencyTaken {
                                case_id: existing.case_id,
                            }));
                        }
                        idem_tree.insert(key.as_slice(), bytes.as_slice())?;
                    }
                    cases.insert(case.id.as_bytes(), case_bytes.as_slice())?;
                    for (item, bytes) in &item_bytes {
                        items_tree.insert(item.id.as_bytes(), bytes.as_slice())?;
                        dept_items.insert(pair_key(&item.department, &item.id), &[] as &[u8])?;
                    }
                    append_audit(audit_tree, meta, audit.clone())?;
                    Ok(())
                },
            );
        tx_result(result)
    }

    fn record_failure(
        &self,
        failure: FailureRecord,
        audit: Vec<AuditRecord>,
    ) -> Result<(), StorageError> {
        let key = uuid::Uuid::now_v7();
        let bytes = encode(&failure)?;
        let result = (&self.failures, &self.audit, &self.meta).transaction(
            |(failures, audit_tree, meta)| {
                failures.insert(key.as_bytes(), bytes.as_slice())?;
                append_audit(audit_tree, meta, audit.clone())?;
                Ok(())
            },
        );
        tx_result(result)
    }

    fn import_dataset(&self, dataset: &str, records: Vec<DatasetRecord>) -> Result<(), StorageError> {
        let audit = vec![AuditRecord::DatasetImport {
            dataset: dataset.to_owned(),
            records: records.len(),
        }];
        let result = (&self.datasets, &self.audit, &self.meta).transaction(
            |(datasets, audit_tree, meta)| {
                for (key, json) in &records {
                    datasets.insert(pair_key(dataset, key), json.as_bytes())?;
                }
                append_audit(audit_tree, meta, audit.clone())?;
                Ok(())
            },
        );
        tx_result(result)
    }
}

#[async_trait]
impl Storage for SledStorage {
    async fn commit(&self, commit: Commit) -> Result<(), StorageError> {
        self.write(Write::Commit(commit)).await
    }

    async fn record_failure(
        &self,
        failure: FailureRecord,
        audit: Vec<AuditRecord>,
    ) -> Result<(), StorageError> {
        self.write(Write::Failure(failure, audit)).await
    }

    async fn case(&self, case_id: &str) -> Result<Option<Case>, StorageError> {
        match self.trees.cases.get(case_id.as_bytes()).map_err(backend)? {
            Some(bytes) => Ok(Some(decode(case_id.as_bytes(), &bytes)?)),
            None => Ok(None),
        }
    }

    async fn idempotency(
        &self,
        scenario: &str,
        key: &str,
    ) -> Result<Option<IdempotencyRecord>, StorageError> {
        let k = pair_key(scenario, key);
        match self.trees.idempotency.get(&k).map_err(backend)? {
            Some(bytes) => Ok(Some(decode(&k, &bytes)?)),
            None => Ok(None),
        }
    }

    async fn item(&self, item_id: &str) -> Result<Option<WorkItem>, StorageError> {
        match self.trees.items.get(item_id.as_bytes()).map_err(backend)? {
            Some(bytes) => Ok(Some(decode(item_id.as_bytes(), &bytes)?)),
            None => Ok(None),
        }
    }

    async fn department_items(
        &self,
        department: &str,
        status: Option<ItemStatus>,
    ) -> Result<Vec<WorkItem>, StorageError> {
        let prefix = pair_key(department, "");
        let mut found = Vec::new();
        for entry in self.trees.dept_items.scan_prefix(&prefix) {
            let (key, _) = entry.map_err(backend)?;
            let item_id = &key[prefix.len()..];
            let Some(bytes) = self.trees.items.get(item_id).map_err(backend)? else {
                continue;
            };
            let item: WorkItem = decode(item_id, &bytes)?;
            if status.is_none_or(|s| s == item.status) {
                found.push(item);
            }
        }
        Ok(found)
    }

    async fn dataset_record(
        &self,
        dataset: &str,
        key: &str,
    ) -> Result<Option<String>, StorageError> {
        let k = pair_key(dataset, key);
        match self.trees.datasets.get(&k).map_err(backend)? {
            Some(bytes) => {
                String::from_utf8(bytes.to_vec())
                    .map(Some)
                    .map_err(|e| StorageError::Corrupt {
                        key: format!("{dataset}/{key}"),
                        message: e.to_string(),
                    })
            }
            None => Ok(None),
        }
    }

    async fn import_dataset(
        &self,
        dataset: &str,
        records: Vec<DatasetRecord>,
    ) -> Result<usize, StorageError> {
        let count = records.len();
        self.write(Write::Import(dataset.to_owned(), records)).await?;
        Ok(count)
    }

    async fn has_datasets(&self) -> Result<bool, StorageError> {
        Ok(!self.trees.datasets.is_empty())
    }

    async fn audit_entries(
        &self,
        from_seq: u64,
        limit: usize,
    ) -> Result<Vec<AuditEntry>, StorageError> {
        let mut entries = Vec::new();
        for entry in self.trees.audit.range(from_seq.to_be_bytes()..).take(limit) {
            let (key, bytes) = entry.map_err(backend)?;
            entries.push(decode(&key, &bytes)?);
        }
        Ok(entries)
    }

    async fn failures(&self, limit: usize) -> Result<Vec<FailureRecord>, StorageError> {
        let mut found = Vec::new();
        for entry in self.trees.failures.iter().rev().take(limit) {
            let (key, bytes) = entry.map_err(backend)?;
            found.push(decode(&key, &bytes)?);
        }
        found.reverse();
        Ok(found)
    }
}
