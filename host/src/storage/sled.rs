//! The embedded default backend: sled, in the data dir.
//!
//! Everything lives in one sled tree, under key prefixes: `c/` cases
//! (id → JSON), `i/` items (id → JSON), `q/` queue index (department NUL
//! status NUL item id → nothing; item ids are time-ordered, so a prefix
//! scan lists a queue oldest first), `o/` open cases (scenario NUL version
//! NUL case id → nothing), `x/` access index (subject NUL seq → nothing),
//! `u/` due index (due time in ms, big endian, NUL item id → nothing; only
//! pending items not yet reported overdue),
//! `k/` idempotency keys (scenario NUL key → record),
//! `s/` datasets (dataset NUL key → JSON), `a/` audit entries (seq, big
//! endian → entry), `f/` failures, and `m/` meta (the audit chain's head).
//!
//! Writes go through one writer thread (group commit). It is the only
//! writer, so the checks a commit needs (the case's revision, the
//! idempotency key, the audit chain's head) read a state nothing else
//! changes. It takes every write waiting in its queue, checks each in turn
//! against the tree and the writes before it in the batch, and applies the
//! whole batch as one atomic sled batch: all of it lands or none of it. A
//! flusher thread then makes everything applied so far durable with one
//! flush and answers each caller, while the writer goes on with the next
//! batch. So `commit` returns `Ok` only once the write is on disk: an
//! acknowledged application survives a crash, and under load one fsync
//! covers a whole batch. Records are encoded on the caller's thread before
//! they reach the writer, which does only what must be serial; it counts
//! its writes, batches and busy time for `/metrics`.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use chrono::Utc;
use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;

use super::{
    AuditEntry, AuditRecord, Commit, DatasetRecord, FailureRecord, GENESIS_HASH, IdempotencyRecord,
    StorageError, WriterStats,
};
use super::{AuditLog, CaseStore, DatasetStore, FailureLog, QueueStore, RegistryRecords};
use crate::model::{Case, ItemStatus, WorkItem};

/// The most writes one batch (and so one flush) covers.
const MAX_BATCH: usize = 256;

const CASES: &[u8] = b"c/";
const ITEMS: &[u8] = b"i/";
// `d/<department>\0<item_id>` keys of data dirs written before the queue
// index are no longer read or written: the queue index lists every item.
const DUE: &[u8] = b"u/";
const IDEMPOTENCY: &[u8] = b"k/";
const DATASETS: &[u8] = b"s/";
const AUDIT: &[u8] = b"a/";
const FAILURES: &[u8] = b"f/";
const AUDIT_HEAD: &[u8] = b"m/audit_head";
const REGISTRY: &[u8] = b"r/";
/// Index of data reads by the person they concern: `x/<subject>\0<seq>`.
const ACCESS: &[u8] = b"x/";
/// Set once every audit entry's reads are in the access index (a data dir
/// written before the index existed is indexed once, at open).
const ACCESS_INDEXED: &[u8] = b"m/access_index_v1";
/// A department's items by status: `q/<department>\0<status>\0<item_id>`,
/// so that a queue of pending items is read without the finished ones.
const QUEUE: &[u8] = b"q/";
/// Open cases by the plugin version they are pinned to:
/// `o/<scenario>\0<version>\0<case_id>`, so that counting them reads no
/// case and no finished case.
const OPEN: &[u8] = b"o/";
/// Set once the queue and open-case indexes cover every item and case (a
/// data dir written before they existed is indexed once, at open).
const CASES_INDEXED: &[u8] = b"m/case_index_v1";

/// The queue-index key of an item with `status`.
fn queue_key(item: &WorkItem, status: ItemStatus) -> Vec<u8> {
    key(
        QUEUE,
        &[
            item.department.as_bytes(),
            status.as_str().as_bytes(),
            item.id.as_bytes(),
        ],
    )
}

/// The open-case-index key of a case.
fn open_key(scenario: &str, version: &str, case_id: &str) -> Vec<u8> {
    key(
        OPEN,
        &[scenario.as_bytes(), version.as_bytes(), case_id.as_bytes()],
    )
}

/// Stages the queue key of an item whose stored status was `stored`
/// (`None`: a new item): moved from the old status to the new.
fn index_item(item: &WorkItem, stored: Option<ItemStatus>, out: &mut Pending) {
    if let Some(old) = stored.filter(|old| *old != item.status) {
        out.remove(queue_key(item, old));
    }
    out.insert(queue_key(item, item.status), Vec::new());
}

/// Stages the open-case key of a case: present while it is open.
fn index_case(scenario: &str, version: &str, case_id: &str, open: bool, out: &mut Pending) {
    let k = open_key(scenario, version, case_id);
    if open {
        out.insert(k, Vec::new());
    } else {
        out.remove(k);
    }
}

/// Indexes the items and cases of an older data dir, once.
fn backfill_case_indexes(db: &sled::Db) -> Result<(), StorageError> {
    #[derive(Deserialize)]
    struct Pin {
        id: String,
        scenario: String,
        plugin_version: String,
        status: crate::model::CaseStatus,
    }
    if db.get(CASES_INDEXED).map_err(backend)?.is_some() {
        return Ok(());
    }
    let mut staged = Pending::default();
    for entry in db.scan_prefix(ITEMS) {
        let (k, bytes) = entry.map_err(backend)?;
        let item: WorkItem = decode(&k, &bytes)?;
        index_item(&item, None, &mut staged);
    }
    for entry in db.scan_prefix(CASES) {
        let (k, bytes) = entry.map_err(backend)?;
        let case: Pin = decode(&k, &bytes)?;
        let open = !case.status.is_final();
        index_case(
            &case.scenario,
            &case.plugin_version,
            &case.id,
            open,
            &mut staged,
        );
    }
    let keys = staged
        .written
        .into_iter()
        .filter_map(|(k, v)| v.is_some().then_some(k));
    write_backfill(db, keys, CASES_INDEXED, "the items and cases by status")
}

/// Writes the index keys a backfill found and its flag, in one durable
/// batch.
fn write_backfill(
    db: &sled::Db,
    keys: impl Iterator<Item = Vec<u8>>,
    flag: &[u8],
    what: &str,
) -> Result<(), StorageError> {
    let mut batch = sled::Batch::default();
    let mut indexed = 0usize;
    for k in keys {
        batch.insert(k, Vec::new());
        indexed += 1;
    }
    batch.insert(flag, Vec::new());
    db.apply_batch(batch).map_err(backend)?;
    db.flush().map_err(backend)?;
    if indexed > 0 {
        tracing::info!(indexed, "indexed {what} of an older data dir");
    }
    Ok(())
}

/// The access-index keys of an audit entry: one for the applicant and one
/// for the person whose record was read, if another.
fn access_keys(entry: &AuditEntry) -> Vec<Vec<u8>> {
    let AuditRecord::DataRead {
        applicant, key: k, ..
    } = &entry.record
    else {
        return Vec::new();
    };
    let seq = entry.seq.to_be_bytes();
    let mut keys = vec![key(ACCESS, &[applicant.as_bytes(), &seq])];
    if k != applicant {
        keys.push(key(ACCESS, &[k.as_bytes(), &seq]));
    }
    keys
}

/// Indexes the reads of an older data dir's audit log, once.
fn backfill_access_index(db: &sled::Db) -> Result<(), StorageError> {
    if db.get(ACCESS_INDEXED).map_err(backend)?.is_some() {
        return Ok(());
    }
    let mut keys = Vec::new();
    for entry in db.scan_prefix(AUDIT) {
        let (k, bytes) = entry.map_err(backend)?;
        let entry: AuditEntry = decode(&k, &bytes)?;
        keys.extend(access_keys(&entry));
    }
    write_backfill(
        db,
        keys.into_iter(),
        ACCESS_INDEXED,
        "the audit log's data reads for access logs",
    )
}

/// Storage on an embedded sled database.
pub struct SledStorage {
    db: Arc<sled::Db>,
    writer: Option<Writer>,
    counters: Arc<Counters>,
}

/// What the writer and the flusher count, read by [`Storage::writer_stats`].
#[derive(Default)]
struct Counters {
    writes: AtomicU64,
    batches: AtomicU64,
    busy_nanos: AtomicU64,
    flushes: AtomicU64,
    flush_nanos: AtomicU64,
}

impl Counters {
    fn add_time(counter: &AtomicU64, since: Instant) {
        let nanos = u64::try_from(since.elapsed().as_nanos()).unwrap_or(u64::MAX);
        counter.fetch_add(nanos, Ordering::Relaxed);
    }
}

/// The queue to the writer thread, and the writer and flusher threads.
struct Writer {
    queue: mpsc::Sender<(Write, Reply)>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

/// Where a write's answer goes.
type Reply = oneshot::Sender<Result<(), StorageError>>;

/// Applied writes waiting for the flush that makes them durable.
type Applied = Vec<(Result<(), StorageError>, Reply)>;

/// A write, applied by the writer thread.
enum Write {
    Commit(Box<EncodedCommit>),
    Failure(FailureRecord, Vec<AuditRecord>),
    Import(String, Vec<DatasetRecord>),
    Registry(Vec<(String, Option<Vec<u8>>)>, Vec<AuditRecord>),
}

/// A commit with its case and items already encoded, on the caller's
/// thread: the writer thread is the serial part of every durable write, so
/// it does only what must be serial (checks, the audit chain, the batch).
struct EncodedCommit {
    commit: Commit,
    case: Vec<u8>,
    items: Vec<Vec<u8>>,
}

impl EncodedCommit {
    fn new(commit: Commit) -> Result<Self, StorageError> {
        Ok(EncodedCommit {
            case: encode(&commit.case)?,
            items: commit.items.iter().map(encode).collect::<Result<_, _>>()?,
            commit,
        })
    }
}

/// The one field of a stored item the writer needs to move its queue key.
#[derive(Deserialize)]
struct StoredStatus {
    status: ItemStatus,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
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

/// `prefix` followed by `parts` joined with NUL.
fn key(prefix: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    let mut key = prefix.to_vec();
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            key.push(0);
        }
        key.extend_from_slice(part);
    }
    key
}

impl SledStorage {
    /// Opens (or creates) the database in `dir` and starts its writer.
    pub fn open(dir: &Path) -> Result<Self, StorageError> {
        let db = sled::Config::new()
            .path(dir.join("db"))
            .open()
            .map_err(|e| StorageError::Backend(format!("cannot open {}: {e}", dir.display())))?;
        let db = Arc::new(db);
        backfill_access_index(&db)?;
        backfill_case_indexes(&db)?;
        let head = match db.get(AUDIT_HEAD).map_err(backend)? {
            Some(bytes) => decode(AUDIT_HEAD, &bytes)?,
            None => AuditHead {
                seq: 0,
                hash: GENESIS_HASH.to_owned(),
            },
        };
        let (queue, inbox) = mpsc::channel();
        let (applied, to_flush) = mpsc::channel();
        let spawn_error =
            |e: std::io::Error| StorageError::Backend(format!("cannot start a writer thread: {e}"));
        let counters = Arc::new(Counters::default());
        let mut state = WriterState {
            db: db.clone(),
            head,
            counters: counters.clone(),
        };
        let writer = std::thread::Builder::new()
            .name("onething-sled-writer".into())
            .spawn(move || state.run(&inbox, &applied))
            .map_err(spawn_error)?;
        let flusher_db = db.clone();
        let flusher_counters = counters.clone();
        let flusher = std::thread::Builder::new()
            .name("onething-sled-flusher".into())
            .spawn(move || flush_loop(&flusher_db, &to_flush, &flusher_counters))
            .map_err(spawn_error)?;
        Ok(SledStorage {
            db,
            writer: Some(Writer {
                queue,
                threads: vec![writer, flusher],
            }),
            counters,
        })
    }

    /// Hands a write to the writer thread and waits until it is durable.
    async fn write(&self, write: Write) -> Result<(), StorageError> {
        let stopped = || StorageError::Backend("the storage writer has stopped".into());
        let queue = self.writer.as_ref().map(|w| &w.queue).ok_or_else(stopped)?;
        let (reply, answer) = oneshot::channel();
        queue.send((write, reply)).map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }

    fn get<T: for<'de> Deserialize<'de>>(&self, key: &[u8]) -> Result<Option<T>, StorageError> {
        match self.db.get(key).map_err(backend)? {
            Some(bytes) => Ok(Some(decode(key, &bytes)?)),
            None => Ok(None),
        }
    }
}

impl Drop for SledStorage {
    fn drop(&mut self) {
        // Closing the queue ends the writer once it has handed on every
        // write it took, which ends the flusher once it has answered them;
        // joining both releases the database.
        if let Some(Writer { queue, threads }) = self.writer.take() {
            drop(queue);
            for thread in threads {
                let _ = thread.join();
            }
        }
    }
}

/// What the writer thread owns: the database and the audit chain's head.
struct WriterState {
    db: Arc<sled::Db>,
    head: AuditHead,
    counters: Arc<Counters>,
}

/// Writes staged for a batch, by key (`None` removes the key), so that a
/// later write in the batch sees what an earlier one changed.
#[derive(Default)]
struct Pending {
    written: HashMap<Vec<u8>, Option<Vec<u8>>>,
}

impl Pending {
    fn insert(&mut self, key: Vec<u8>, value: Vec<u8>) {
        self.written.insert(key, Some(value));
    }

    fn remove(&mut self, key: Vec<u8>) {
        self.written.insert(key, None);
    }
}

/// The due-index key of an item.
fn due_key(item: &WorkItem) -> Vec<u8> {
    // Times before 1970 do not occur; clamp rather than wrap.
    let millis = u64::try_from(item.due_at.timestamp_millis()).unwrap_or(0);
    key(DUE, &[&millis.to_be_bytes(), item.id.as_bytes()])
}

impl WriterState {
    /// Takes batches of writes until the queue closes.
    fn run(&mut self, inbox: &mpsc::Receiver<(Write, Reply)>, flusher: &mpsc::Sender<Applied>) {
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
            Write::Import(dataset, records) => {
                let audit = vec![AuditRecord::DatasetImport {
                    dataset: dataset.clone(),
                    records: records.len(),
                }];
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
        match (expected_revision, self.current(&case_key, pending, own)?) {
            (None, None) => {}
            (Some(expected), Some(bytes)) => {
                let stored: Case = decode(&case_key, &bytes)?;
                if stored.revision != expected {
                    return Err(StorageError::Conflict { case_id: case.id });
                }
            }
            _ => return Err(StorageError::Conflict { case_id: case.id }),
        }
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
            !case.status.is_final(),
            own,
        );
        own.insert(case_key, case_bytes);
        for (item, bytes) in items.iter().zip(item_bytes) {
            let item_key = key(ITEMS, &[item.id.as_bytes()]);
            let stored = match self.current(&item_key, pending, own)? {
                Some(old) => Some(decode::<StoredStatus>(&item_key, &old)?.status),
                None => None,
            };
            own.insert(item_key, bytes);
            index_item(item, stored, own);
            if item.status == ItemStatus::Pending && item.overdue_at.is_none() {
                own.insert(due_key(item), Vec::new());
            } else {
                own.remove(due_key(item));
            }
        }
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
fn flush_loop(db: &sled::Db, inbox: &mpsc::Receiver<Applied>, counters: &Counters) {
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

    async fn item(&self, item_id: &str) -> Result<Option<WorkItem>, StorageError> {
        self.get(&key(ITEMS, &[item_id.as_bytes()]))
    }

    async fn open_cases(&self) -> Result<u64, StorageError> {
        let mut open = 0;
        for entry in self.db.scan_prefix(OPEN).keys() {
            entry.map_err(backend)?;
            open += 1;
        }
        Ok(open)
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

#[async_trait]
impl QueueStore for SledStorage {
    async fn department_items(
        &self,
        department: &str,
        status: Option<ItemStatus>,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<WorkItem>, StorageError> {
        // The ids of the page in each status asked for; with no status, the
        // pages of every status merged by id.
        let statuses = match status {
            Some(status) => vec![status],
            None => ItemStatus::ALL.to_vec(),
        };
        let mut ids = Vec::new();
        for status in statuses {
            let prefix = key(
                QUEUE,
                &[department.as_bytes(), status.as_str().as_bytes(), b""],
            );
            // The smallest key after `after`'s is `after`'s with a NUL added.
            let start = match after {
                Some(after) => key(&prefix, &[after.as_bytes(), b""]),
                None => prefix.clone(),
            };
            for entry in self.db.range(start..).keys().take(limit) {
                let k = entry.map_err(backend)?;
                match k.strip_prefix(prefix.as_slice()) {
                    Some(item_id) => ids.push(item_id.to_vec()),
                    None => break,
                }
            }
        }
        // An item that changed status between two range reads is in both.
        ids.sort_unstable();
        ids.dedup();
        ids.truncate(limit);
        let mut found = Vec::with_capacity(ids.len());
        for item_id in ids {
            // An item whose status changed since its key was read is left
            // for the next read to list under its new status.
            match self.get::<WorkItem>(&key(ITEMS, &[&item_id]))? {
                Some(item) if status.is_none_or(|s| s == item.status) => found.push(item),
                _ => {}
            }
        }
        Ok(found)
    }

    async fn items_due(
        &self,
        by: chrono::DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<WorkItem>, StorageError> {
        let until = u64::try_from(by.timestamp_millis()).unwrap_or(0);
        let mut found = Vec::new();
        for entry in self.db.scan_prefix(DUE) {
            let (k, _) = entry.map_err(backend)?;
            let rest = &k[DUE.len()..];
            let (Some(millis), Some(item_id)) = (rest.get(..8), rest.get(9..)) else {
                continue;
            };
            let mut bytes = [0u8; 8];
            bytes.copy_from_slice(millis);
            if u64::from_be_bytes(bytes) > until || found.len() >= limit {
                break;
            }
            if let Some(item) = self.get::<WorkItem>(&key(ITEMS, &[item_id]))? {
                found.push(item);
            }
        }
        Ok(found)
    }
}

#[async_trait]
impl DatasetStore for SledStorage {
    async fn dataset_record(
        &self,
        dataset: &str,
        record_key: &str,
    ) -> Result<Option<String>, StorageError> {
        let k = key(DATASETS, &[dataset.as_bytes(), record_key.as_bytes()]);
        match self.db.get(&k).map_err(backend)? {
            Some(bytes) => {
                String::from_utf8(bytes.to_vec())
                    .map(Some)
                    .map_err(|e| StorageError::Corrupt {
                        key: format!("{dataset}/{record_key}"),
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
        self.write(Write::Import(dataset.to_owned(), records))
            .await?;
        Ok(count)
    }

    async fn has_datasets(&self) -> Result<bool, StorageError> {
        Ok(self.db.scan_prefix(DATASETS).next().is_some())
    }
}

#[async_trait]
impl AuditLog for SledStorage {
    async fn audit(&self, records: Vec<AuditRecord>) -> Result<(), StorageError> {
        self.write(Write::Registry(Vec::new(), records)).await
    }

    async fn audit_entries(
        &self,
        from_seq: u64,
        limit: usize,
    ) -> Result<Vec<AuditEntry>, StorageError> {
        let start = key(AUDIT, &[&from_seq.to_be_bytes()]);
        let mut entries = Vec::new();
        for entry in self.db.range(start..).take(limit) {
            let (k, bytes) = entry.map_err(backend)?;
            if !k.starts_with(AUDIT) {
                break;
            }
            entries.push(decode(&k, &bytes)?);
        }
        Ok(entries)
    }

    async fn access_log(
        &self,
        subject: &str,
        from_seq: u64,
        limit: usize,
    ) -> Result<Vec<AuditEntry>, StorageError> {
        let start = key(ACCESS, &[subject.as_bytes(), &from_seq.to_be_bytes()]);
        let prefix = key(ACCESS, &[subject.as_bytes(), b""]);
        let mut entries = Vec::new();
        for index in self.db.range(start..) {
            let (k, _) = index.map_err(backend)?;
            if !k.starts_with(&prefix) || entries.len() >= limit {
                break;
            }
            let Some(seq) = k.get(prefix.len()..) else {
                continue;
            };
            if let Some(bytes) = self.db.get(key(AUDIT, &[seq])).map_err(backend)? {
                entries.push(decode(&k, &bytes)?);
            }
        }
        Ok(entries)
    }
}

#[async_trait]
impl RegistryRecords for SledStorage {
    async fn registry_get(&self, k: &str) -> Result<Option<Vec<u8>>, StorageError> {
        Ok(self
            .db
            .get(key(REGISTRY, &[k.as_bytes()]))
            .map_err(backend)?
            .map(|v| v.to_vec()))
    }

    async fn registry_scan(&self, prefix: &str) -> Result<Vec<(String, Vec<u8>)>, StorageError> {
        let mut found = Vec::new();
        for entry in self.db.scan_prefix(key(REGISTRY, &[prefix.as_bytes()])) {
            let (k, v) = entry.map_err(backend)?;
            let name = String::from_utf8_lossy(&k[REGISTRY.len()..]).into_owned();
            found.push((name, v.to_vec()));
        }
        Ok(found)
    }

    async fn registry_apply(
        &self,
        writes: Vec<(String, Option<Vec<u8>>)>,
        audit: AuditRecord,
    ) -> Result<(), StorageError> {
        self.write(Write::Registry(writes, vec![audit])).await
    }
}

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

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::model::CaseStatus;

    fn case(id: &str, revision: u64) -> Case {
        Case {
            id: id.into(),
            scenario: "s".into(),
            plugin_version: "1.0.0".into(),
            applicant: "a".into(),
            status: CaseStatus::InProgress,
            message: String::new(),
            state: "{}".into(),
            application: serde_json::Value::Null,
            item_ids: Vec::new(),
            timeline: Vec::new(),
            created_at: Utc::now(),
            updated_at: Utc::now(),
            revision,
        }
    }

    fn commit(id: &str, expected: Option<u64>, revision: u64, key: Option<&str>) -> Commit {
        Commit {
            case: case(id, revision),
            expected_revision: expected,
            items: Vec::new(),
            audit: vec![AuditRecord::Decision {
                plugin: "s".into(),
                version: "1.0.0".into(),
                case_id: id.into(),
                status: CaseStatus::InProgress,
            }],
            idempotency: key.map(|k| IdempotencyRecord {
                scenario: "s".into(),
                key: k.into(),
                case_id: id.into(),
                fingerprint: "f".into(),
            }),
        }
    }

    fn item(n: usize, case_id: &str, status: ItemStatus) -> WorkItem {
        WorkItem {
            id: format!("item-{n:02}"),
            case_id: case_id.into(),
            scenario: "s".into(),
            department: if n.is_multiple_of(2) { "even" } else { "odd" }.into(),
            task: "t".into(),
            payload: serde_json::Value::Null,
            status,
            due: crate::model::Due::Hours(1),
            due_at: Utc::now(),
            created_at: Utc::now(),
            finished_at: None,
            result: None,
            reason: None,
            overdue_at: None,
        }
    }

    async fn queue(s: &SledStorage, dept: &str, status: Option<ItemStatus>) -> Vec<String> {
        let items = s.department_items(dept, status, None, 100).await.unwrap();
        items.into_iter().map(|i| i.id).collect()
    }

    #[tokio::test]
    async fn queues_and_open_cases_follow_each_write_and_an_older_dir_is_indexed_once() {
        let dir = tempfile::tempdir().unwrap();
        let storage = SledStorage::open(dir.path()).unwrap();
        // Case a: six pending items; case b (version 2.0.0): one.
        let mut a = commit("a", None, 0, None);
        a.items = (0..6).map(|n| item(n, "a", ItemStatus::Pending)).collect();
        storage.commit(a).await.unwrap();
        let mut b = commit("b", None, 0, None);
        b.case.plugin_version = "2.0.0".into();
        b.items = vec![item(7, "b", ItemStatus::Pending)];
        storage.commit(b).await.unwrap();
        // Items 0 and 2 finish one way and the other; case b ends.
        let mut a1 = commit("a", Some(0), 1, None);
        a1.items = vec![
            item(0, "a", ItemStatus::Completed),
            item(2, "a", ItemStatus::Rejected),
        ];
        storage.commit(a1).await.unwrap();
        let mut b1 = commit("b", Some(0), 1, None);
        b1.case.plugin_version = "2.0.0".into();
        b1.case.status = CaseStatus::Completed;
        b1.items = vec![item(7, "b", ItemStatus::Cancelled)];
        storage.commit(b1).await.unwrap();

        let check = |storage: SledStorage| async move {
            use ItemStatus::*;
            assert_eq!(queue(&storage, "even", Some(Pending)).await, ["item-04"]);
            assert_eq!(queue(&storage, "even", Some(Completed)).await, ["item-00"]);
            assert_eq!(queue(&storage, "even", Some(Rejected)).await, ["item-02"]);
            assert_eq!(
                queue(&storage, "even", None).await,
                ["item-00", "item-02", "item-04"]
            );
            assert_eq!(
                queue(&storage, "odd", Some(Pending)).await,
                ["item-01", "item-03", "item-05"]
            );
            assert_eq!(queue(&storage, "odd", Some(Cancelled)).await, ["item-07"]);
            // Each item has one queue key, its current status's: a key left
            // behind by an earlier status would fill pages with nothing.
            let queue_keys: Vec<String> = storage
                .db
                .scan_prefix(QUEUE)
                .keys()
                .map(|k| String::from_utf8_lossy(&k.unwrap()[QUEUE.len()..]).replace('\0', " "))
                .collect();
            assert_eq!(
                queue_keys,
                [
                    "even completed item-00",
                    "even pending item-04",
                    "even rejected item-02",
                    "odd cancelled item-07",
                    "odd pending item-01",
                    "odd pending item-03",
                    "odd pending item-05",
                ]
            );
            // A page starts after the item given and holds at most `limit`.
            let page = storage
                .department_items("odd", Some(Pending), Some("item-01"), 1)
                .await
                .unwrap();
            assert_eq!(page.len(), 1);
            assert_eq!(page[0].id, "item-03");
            // With no status, the pages of every status merge by id.
            let ids = |items: Vec<WorkItem>| items.into_iter().map(|i| i.id).collect::<Vec<_>>();
            let all = storage.department_items("odd", None, Some("item-01"), 3);
            assert_eq!(ids(all.await.unwrap()), ["item-03", "item-05", "item-07"]);
            let all = storage.department_items("odd", None, Some("item-03"), 2);
            assert_eq!(ids(all.await.unwrap()), ["item-05", "item-07"]);
            let all = storage.department_items("even", None, None, 2);
            assert_eq!(ids(all.await.unwrap()), ["item-00", "item-02"]);
            // Only case a is open, on 1.0.0.
            assert_eq!(storage.open_cases().await.unwrap(), 1);
            let open = storage.open_cases_by_version().await.unwrap();
            assert_eq!(
                open.into_iter().collect::<Vec<_>>(),
                [(("s".to_owned(), "1.0.0".to_owned()), 1)]
            );
            storage
        };
        let storage = check(storage).await;
        drop(storage);
        // As a data dir written before the indexes: none, and no flag.
        {
            let db = sled::open(dir.path().join("db")).unwrap();
            for prefix in [QUEUE, OPEN] {
                for k in db.scan_prefix(prefix).keys() {
                    db.remove(k.unwrap()).unwrap();
                }
            }
            db.remove(CASES_INDEXED).unwrap();
            db.flush().unwrap();
        }
        drop(check(SledStorage::open(dir.path()).unwrap()).await);
    }

    #[tokio::test]
    async fn an_older_audit_log_is_indexed_for_access_logs_once() {
        let dir = tempfile::tempdir().unwrap();
        let storage = SledStorage::open(dir.path()).unwrap();
        let mut with_read = commit("case-r", None, 0, None);
        with_read.audit.push(AuditRecord::DataRead {
            plugin: "s".into(),
            version: "1.0.0".into(),
            case_id: "case-r".into(),
            applicant: "A".into(),
            dataset: "d/x".into(),
            key: "B".into(),
            purpose: "p".into(),
            allowed: true,
        });
        storage.commit(with_read).await.unwrap();
        assert_eq!(storage.access_log("B", 0, 10).await.unwrap().len(), 1);
        drop(storage);
        // As a data dir written before the index: no index, no flag.
        {
            let db = sled::open(dir.path().join("db")).unwrap();
            for k in db.scan_prefix(ACCESS).keys() {
                db.remove(k.unwrap()).unwrap();
            }
            db.remove(ACCESS_INDEXED).unwrap();
            db.flush().unwrap();
        }
        let storage = SledStorage::open(dir.path()).unwrap();
        for subject in ["A", "B"] {
            let log = storage.access_log(subject, 0, 10).await.unwrap();
            assert_eq!(log.len(), 1, "{subject}");
            assert_eq!(log[0].seq, 2);
        }
        assert!(storage.access_log("C", 0, 10).await.unwrap().is_empty());
    }

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

    #[tokio::test]
    async fn the_audit_chain_continues_across_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        {
            let storage = SledStorage::open(dir.path()).unwrap();
            storage.commit(commit("a", None, 0, None)).await.unwrap();
        }
        let storage = SledStorage::open(dir.path()).unwrap();
        storage.commit(commit("b", None, 0, None)).await.unwrap();
        let entries = storage.audit_entries(0, 10).await.unwrap();
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[1].prev_hash, entries[0].hash);
        assert!(storage.case("a").await.unwrap().is_some());
    }
}
