//! Cases and their work items: the records a plugin call changes, written
//! together by one atomic [`Commit`].
//!
//! What a backend must guarantee (and what the service relies on):
//! - **All or nothing.** [`CaseStore::commit`] writes the case, every item
//!   of the commit (new ones and changed ones, by id), the indexes derived
//!   from them (each item's department queue by status, the due index of
//!   pending items not yet reported overdue, the open cases by pinned
//!   plugin version; see [`QueueStore`](super::QueueStore)), the
//!   idempotency record and the commit's audit entries (appended to the one
//!   chain in order, with their access-log index; see
//!   [`AuditLog`](super::AuditLog)), or none of them.
//! - **Compare-and-swap on the revision.** With `expected_revision: None`
//!   the case must not exist yet; with `Some(r)` the stored case's
//!   `revision` must be `r`. Otherwise the commit is refused with
//!   [`StorageError::Conflict`] and writes nothing. Of two commits from the
//!   same revision exactly one succeeds, however close together they come.
//! - **One idempotency key, one case.** A commit whose
//!   [`IdempotencyRecord`] names a (scenario, key) already stored — by an
//!   earlier commit or a concurrent one — is refused with
//!   [`StorageError::IdempotencyTaken`] (the case that holds it) and writes
//!   nothing.
//! - **Durable on `Ok`.** `commit` returns `Ok` only once the write survives
//!   a crash; every read after it (of any store) sees it. `Conflict` and
//!   `IdempotencyTaken` mean nothing was written; after
//!   [`StorageError::Backend`] the write may or may not have landed (a
//!   flush can fail after the batch was applied), so a caller must re-read
//!   before it retries.
//! - Reads are of single records, current as of the last acknowledged
//!   write; no read spans two records atomically.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::{AuditRecord, StorageError, WriterStats};
use crate::model::{Case, WorkItem};

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

/// Reads one work item: all a plugin call's `cancel` needs of storage (it
/// then checks that the item is its case's and still pending).
#[async_trait]
pub trait ItemReader: Send + Sync + 'static {
    /// A work item by id, as the last acknowledged commit left it.
    async fn item(&self, item_id: &str) -> Result<Option<WorkItem>, StorageError>;
}

/// Cases and their work items, written together by the atomic [`Commit`]
/// (see the module docs for what must be atomic with what).
#[async_trait]
pub trait CaseStore: ItemReader {
    /// Writes a call's effects atomically and durably, guarded by the
    /// case's revision and the idempotency key (see the module docs).
    async fn commit(&self, commit: Commit) -> Result<(), StorageError>;

    /// What the writer has done so far (every durable write of every
    /// store, not only commits), for a backend that has one.
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

    /// An open case of `scenario` about `subject`, if there is one (the
    /// oldest): what `one_open_case_per_subject` looks up.
    async fn open_case_of(
        &self,
        scenario: &str,
        subject: &str,
    ) -> Result<Option<String>, StorageError>;

    /// How many cases are neither completed nor rejected (read once at
    /// start; the service keeps the count from then on).
    async fn open_cases(&self) -> Result<u64, StorageError>;

    /// How many open cases each (scenario, plugin version) holds: the
    /// version a case is pinned to is its `plugin_version`. A version with
    /// no open case is absent.
    async fn open_cases_by_version(
        &self,
    ) -> Result<std::collections::BTreeMap<(String, String), u64>, StorageError>;
}
