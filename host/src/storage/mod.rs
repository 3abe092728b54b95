//! The storage seam: everything the host keeps, behind one trait.
//!
//! The runtime and the HTTP layer see only [`Storage`]; [`sled`](self::sled)
//! is its one implementation for now, on an embedded database under
//! `--data-dir`. The trait is shaped so that a distributed backend (NATS
//! JetStream: KV for cases, streams for work queues) can implement it later:
//! every write of a plugin call's effects is one [`Commit`], applied
//! atomically and guarded by the case's revision (compare-and-swap), and
//! every method is async.
//!
//! Invariant: a commit is all or nothing. Either the case, every work item,
//! the idempotency mapping and every audit entry of the commit are durable
//! together when `commit` returns `Ok`, or none of them is written.

pub mod sled;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::model::{Case, CaseStatus, ItemStatus, WorkItem};

/// Everything one plugin call (or one department action) changes, written
/// atomically.
#[derive(Debug, Clone)]
pub struct Commit {
    /// The case as it is after the call, with `revision` already bumped.
    pub case: Case,
    /// The revision the call started from; `None` when the commit creates
    /// the case. A commit whose expected revision no longer matches is
    /// refused with [`StorageError::Conflict`].
    pub expected_revision: Option<u64>,
    /// Work items to write: new ones and changed ones.
    pub items: Vec<WorkItem>,
    /// Audit records to append to the hash chain, in order.
    pub audit: Vec<AuditRecord>,
    /// The idempotency key that created the case, if any.
    pub idempotency: Option<IdempotencyRecord>,
}

/// A submission's `Idempotency-Key`, kept with the case it created.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdempotencyRecord {
    /// The scenario applied to.
    pub scenario: String,
    /// The client's key.
    pub key: String,
    /// The case the first submission created.
    pub case_id: String,
    /// A digest of the first submission's body, so that a key reused for a
    /// different application is told apart from a retry.
    pub fingerprint: String,
}

/// A plugin call that failed before any case existed (a failed `start`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FailureRecord {
    /// When.
    pub at: DateTime<Utc>,
    /// The scenario.
    pub scenario: String,
    /// The plugin version.
    pub plugin_version: String,
    /// The applicant, if known.
    pub applicant: String,
    /// The error's code.
    pub code: String,
    /// What went wrong.
    pub message: String,
}

/// One thing that goes on the tamper-evident record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum AuditRecord {
    /// A plugin read (or tried to read) a department's data.
    DataRead {
        /// The plugin id (= scenario).
        plugin: String,
        /// Its version.
        version: String,
        /// The case the read was for.
        case_id: String,
        /// Whose case it is.
        applicant: String,
        /// `DEPARTMENT/NAME`.
        dataset: String,
        /// The record's key.
        key: String,
        /// Why, as the plugin said.
        purpose: String,
        /// Whether the grant allowed it.
        allowed: bool,
    },
    /// A plugin's reads of an ungranted dataset, or dispatches to an
    /// ungranted department, in one call: one record per target and call,
    /// with how often it tried.
    Denied {
        /// The plugin id.
        plugin: String,
        /// Its version.
        version: String,
        /// The case the call was for.
        case_id: String,
        /// `read` or `dispatch`.
        what: crate::runtime::DeniedKind,
        /// The dataset or department.
        target: String,
        /// How many attempts the call made.
        attempts: u32,
    },
    /// A plugin dispatched a work item.
    Dispatch {
        /// The plugin id.
        plugin: String,
        /// Its version.
        version: String,
        /// The case.
        case_id: String,
        /// The item.
        item_id: String,
        /// The department it went to.
        department: String,
        /// Its task.
        task: String,
    },
    /// A plugin decided a case's status.
    Decision {
        /// The plugin id.
        plugin: String,
        /// Its version.
        version: String,
        /// The case.
        case_id: String,
        /// The status decided.
        status: CaseStatus,
    },
    /// A department completed or rejected an item.
    DepartmentAction {
        /// The department.
        department: String,
        /// The case.
        case_id: String,
        /// The item.
        item_id: String,
        /// The item's new status.
        status: ItemStatus,
    },
    /// A plugin cancelled a pending work item.
    Cancelled {
        /// The plugin id.
        plugin: String,
        /// Its version.
        version: String,
        /// The case.
        case_id: String,
        /// The item.
        item_id: String,
        /// Its department.
        department: String,
    },
    /// The applicant withdrew a case.
    Withdrawn {
        /// The case.
        case_id: String,
        /// Who withdrew it.
        applicant: String,
        /// How many open items were cancelled.
        cancelled_items: usize,
    },
    /// An operator changed the registry: trusted or revoked a key, set a
    /// grant ceiling, uploaded, activated, rolled back, deactivated or
    /// removed a plugin version, or reactivated a quarantined one.
    Admin {
        /// Who (`admin` for the admin token, `demo-seed` at a demo start).
        actor: String,
        /// What, e.g. `plugin.activate`.
        action: String,
        /// On what, e.g. `newborn@0.2.0`.
        subject: String,
        /// Anything else worth keeping.
        detail: String,
    },
    /// An operator imported a dataset.
    DatasetImport {
        /// `DEPARTMENT/NAME`.
        dataset: String,
        /// How many records.
        records: usize,
    },
}

/// One entry of the hash-chained audit log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// Position in the log, from 1.
    pub seq: u64,
    /// When it was written.
    pub at: DateTime<Utc>,
    /// What happened.
    pub record: AuditRecord,
    /// The previous entry's hash (64 zeros for the first).
    pub prev_hash: String,
    /// SHA-256 over the previous hash, the sequence number, the time and
    /// the record.
    pub hash: String,
}

impl AuditEntry {
    /// Links `record` after an entry with hash `prev_hash` at position `seq`.
    pub fn link(seq: u64, at: DateTime<Utc>, record: AuditRecord, prev_hash: String) -> Self {
        let hash = Self::digest(seq, at, &record, &prev_hash);
        AuditEntry {
            seq,
            at,
            record,
            prev_hash,
            hash,
        }
    }

    /// Recomputes what this entry's hash must be.
    pub fn expected_hash(&self) -> String {
        Self::digest(self.seq, self.at, &self.record, &self.prev_hash)
    }

    fn digest(seq: u64, at: DateTime<Utc>, record: &AuditRecord, prev_hash: &str) -> String {
        use sha2::{Digest, Sha256};
        let mut hasher = Sha256::new();
        hasher.update(prev_hash.as_bytes());
        hasher.update(seq.to_be_bytes());
        hasher.update(at.to_rfc3339().as_bytes());
        // Serialising a record of plain strings, bools and enums cannot fail;
        // an empty body would still be chained by seq and time.
        hasher.update(serde_json::to_vec(record).unwrap_or_default());
        hex::encode(hasher.finalize())
    }
}

/// The hash that precedes the first audit entry.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Why storage could not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The case changed since the caller read it (or already exists).
    #[error("case {case_id} changed concurrently; retry")]
    Conflict {
        /// The case.
        case_id: String,
    },
    /// The idempotency key was taken by a concurrent submission.
    #[error("idempotency key already used for case {case_id}")]
    IdempotencyTaken {
        /// The case that holds the key.
        case_id: String,
    },
    /// Something stored could not be decoded: the data dir is damaged.
    #[error("stored record {key} is damaged: {message}")]
    Corrupt {
        /// Which record.
        key: String,
        /// What is wrong.
        message: String,
    },
    /// The backend failed (disk, I/O).
    #[error("storage backend failed: {0}")]
    Backend(String),
}

/// What the storage's writer has done since the host started. Every
/// durable write passes one writer, one at a time, so the share of time it
/// is busy is the headroom of the durable rate (exported on `/metrics`).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct WriterStats {
    /// Writes handed to the writer (commits, failures, imports, registry
    /// changes), refused ones included.
    pub writes: u64,
    /// Atomic batches applied; one batch covers every write that was
    /// waiting.
    pub batches: u64,
    /// Time spent checking writes and applying batches.
    pub busy: std::time::Duration,
    /// Flushes to disk; one flush makes one or more batches durable.
    pub flushes: u64,
    /// Time spent flushing.
    pub flushing: std::time::Duration,
}

/// A dataset record to import: its key and its JSON text.
pub type DatasetRecord = (String, String);

/// Cases and their work items, written together by the atomic [`Commit`].
///
/// Atomic: `commit` writes the case, every item, the queue and open-case
/// indexes, the idempotency record and the audit records all or nothing,
/// and only if the stored revision equals `expected_revision`
/// ([`StorageError::Conflict`] otherwise). Durable when it returns `Ok`.
/// A read after an `Ok` commit sees it.
#[async_trait]
pub trait CaseStore: Send + Sync + 'static {
    /// Writes a call's effects atomically and durably (see the module docs).
    async fn commit(&self, commit: Commit) -> Result<(), StorageError>;

    /// What the writer has done so far, for a backend that has one.
    fn writer_stats(&self) -> Option<WriterStats> {
        None
    }

    /// A case by id.
    async fn case(&self, case_id: &str) -> Result<Option<Case>, StorageError>;

    /// The idempotency record of a scenario's key, if the key was used.
    async fn idempotency(
        &self,
        scenario: &str,
        key: &str,
    ) -> Result<Option<IdempotencyRecord>, StorageError>;

    /// A work item by id.
    async fn item(&self, item_id: &str) -> Result<Option<WorkItem>, StorageError>;

    /// How many cases are neither completed nor rejected (read once at
    /// start; the service keeps the count from then on).
    async fn open_cases(&self) -> Result<u64, StorageError>;

    /// How many open cases each (scenario, plugin version) holds.
    async fn open_cases_by_version(
        &self,
    ) -> Result<std::collections::BTreeMap<(String, String), u64>, StorageError>;
}

/// Department queues and items due: read-only views over the items a
/// [`CaseStore::commit`] wrote, kept in the same atomic write, so a queue
/// never lists an item the commit did not write, nor misses one it did.
#[async_trait]
pub trait QueueStore: Send + Sync + 'static {
    /// A department's items, optionally only those with one status, oldest
    /// first, at most `limit`, starting after the item `after` (the last
    /// item of the previous page). Reads only the items it returns, however
    /// many items of other statuses the department has.
    async fn department_items(
        &self,
        department: &str,
        status: Option<ItemStatus>,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<WorkItem>, StorageError>;

    /// Pending items due at or before `by` whose plugin has not yet been
    /// told they are overdue, soonest first, at most `limit`.
    async fn items_due(
        &self,
        by: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<WorkItem>, StorageError>;
}

/// Dataset records the plugins read, and their imports.
///
/// Atomic: an import writes all its records and its audit record, or none.
/// Durable when it returns `Ok`.
#[async_trait]
pub trait DatasetStore: Send + Sync + 'static {
    /// One dataset record's JSON text.
    async fn dataset_record(
        &self,
        dataset: &str,
        key: &str,
    ) -> Result<Option<String>, StorageError>;

    /// Imports records into a dataset, all or none, replacing records with
    /// the same key; audited. Returns how many were written.
    async fn import_dataset(
        &self,
        dataset: &str,
        records: Vec<DatasetRecord>,
    ) -> Result<usize, StorageError>;

    /// Whether any dataset has been imported yet (used to seed demo data
    /// once).
    async fn has_datasets(&self) -> Result<bool, StorageError>;
}

/// The hash-chained audit log and its access-log index.
///
/// Entries are appended in one total order (`seq` increasing by one, each
/// linked to the previous hash); an append is durable when it returns `Ok`.
/// The access-log index is written in the same atomic write as the entries.
#[async_trait]
pub trait AuditLog: Send + Sync + 'static {
    /// Appends records to the audit chain on their own (admin actions that
    /// change nothing else the storage keeps).
    async fn audit(&self, records: Vec<AuditRecord>) -> Result<(), StorageError>;

    /// Audit entries from position `from_seq` on, at most `limit`.
    async fn audit_entries(
        &self,
        from_seq: u64,
        limit: usize,
    ) -> Result<Vec<AuditEntry>, StorageError>;

    /// The data reads that concern `subject`: reads on the cases they
    /// applied for, and reads of their own record (key = `subject`) in
    /// anyone's case; oldest first, at most `limit`, from position
    /// `from_seq` on.
    async fn access_log(
        &self,
        subject: &str,
        from_seq: u64,
        limit: usize,
    ) -> Result<Vec<AuditEntry>, StorageError>;
}

/// The plugin registry's records (see `onething_registry::registry`).
///
/// Atomic: `registry_apply` writes every record change and its audit record
/// all or nothing; durable when it returns `Ok`.
#[async_trait]
pub trait RegistryRecords: Send + Sync + 'static {
    /// One registry record (see `onething_registry::registry`).
    async fn registry_get(&self, key: &str) -> Result<Option<Vec<u8>>, StorageError>;

    /// Every registry record under `prefix`, in key order.
    async fn registry_scan(&self, prefix: &str) -> Result<Vec<(String, Vec<u8>)>, StorageError>;

    /// Writes registry records (`None` removes) and appends `audit`, all in
    /// one atomic, durable write.
    async fn registry_apply(
        &self,
        writes: Vec<(String, Option<Vec<u8>>)>,
        audit: AuditRecord,
    ) -> Result<(), StorageError>;
}

/// Plugin calls that failed before a case existed.
///
/// Atomic: a failure and the audit records of its reads are written
/// together, durably.
#[async_trait]
pub trait FailureLog: Send + Sync + 'static {
    /// Records a plugin call that failed before a case existed, with the
    /// audit records of the reads it made before failing (a read that
    /// happened is on record even if the call then failed).
    async fn record_failure(
        &self,
        failure: FailureRecord,
        audit: Vec<AuditRecord>,
    ) -> Result<(), StorageError>;

    /// Failed `start` calls, most recent last, at most `limit`.
    async fn failures(&self, limit: usize) -> Result<Vec<FailureRecord>, StorageError>;
}

/// What the host keeps, and the only way the rest of the host reaches it:
/// every store in one. A backend implements each store trait and gets this
/// one for free.
pub trait Storage:
    CaseStore + QueueStore + DatasetStore + AuditLog + RegistryRecords + FailureLog
{
}

impl<T> Storage for T where
    T: CaseStore + QueueStore + DatasetStore + AuditLog + RegistryRecords + FailureLog
{
}

/// The store traits, so that a caller gets every storage method with one
/// `use`.
pub mod prelude {
    pub use super::{
        AuditLog, CaseStore, DatasetStore, FailureLog, QueueStore, RegistryRecords, Storage,
    };
}
