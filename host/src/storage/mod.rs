//! The storage seam: everything the host keeps, behind one trait per thing
//! it keeps.
//!
//! | trait | holds | file |
//! |---|---|---|
//! | [`CaseStore`] (and [`ItemReader`]) | cases, work items, idempotency keys, the atomic [`Commit`] | `cases.rs` |
//! | [`QueueStore`] | department queues, items due | `queues.rs` |
//! | [`DatasetStore`] (and [`DatasetReader`]) | dataset records, imports | `datasets.rs` |
//! | [`AuditLog`] | the hash-chained audit log, the access-log index | `audit.rs` |
//! | [`RegistryRecords`] | the plugin registry's records | `registry.rs` |
//! | [`FailureLog`] | calls that failed before a case existed | `failures.rs` |
//! | [`PlaceStore`] | the place tree and the departments' offices | `places.rs` |
//! | [`CounterStore`] | the one-screen counters, kept in each commit | `counters.rs` |
//!
//! Each trait's module states what a backend must make atomic with what,
//! in what order, and what a caller may rely on; `docs/design/storage.md`
//! says what a second backend must implement and test. [`Storage`] is all
//! of them in one, for the service and the server; a room that needs less
//! takes less (the runtime's host functions get only a [`DatasetReader`]
//! and an [`ItemReader`]). `use crate::storage::prelude::*` brings every
//! method into scope.
//!
//! [`sled`](self::sled) is the one backend for now, on an embedded database
//! under `--data-dir`. The traits are shaped so that a distributed backend
//! (NATS JetStream: KV for cases, streams for work queues) can implement
//! them: every write of a plugin call's effects is one [`Commit`], applied
//! atomically and guarded by the case's revision (compare-and-swap), and
//! every method is async.
//!
//! Invariants across the stores:
//! - A commit is all or nothing. Either the case, every work item, the
//!   idempotency mapping and every audit entry of the commit are durable
//!   together when `commit` returns `Ok`, or none of them is written.
//! - Every write that appends audit records appends them to the one chain
//!   of [`AuditLog`], in the same atomic write as what they record.
//! - A write is durable when it returns `Ok`, and every read after it, of
//!   any store, sees it.

mod audit;
mod cases;
mod counters;
mod datasets;
mod failures;
mod places;
mod queues;
mod registry;
pub mod sled;

pub use audit::{AuditEntry, AuditLog, AuditRecord, GENESIS_HASH};
pub use cases::{CaseStore, Commit, IdempotencyRecord, ItemReader};
pub use counters::{CounterStore, Recount};
pub use datasets::{DatasetReader, DatasetRecord, DatasetStore};
pub use failures::{FailureLog, FailureRecord};
pub use places::{PlaceFilter, PlaceStore};
pub use queues::{OfficeStatus, QueueStore};
pub use registry::RegistryRecords;

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

/// What the host keeps, and the only way the rest of the host reaches it:
/// every store in one. A backend implements each store trait and gets this
/// one for free.
pub trait Storage:
    CaseStore
    + QueueStore
    + DatasetStore
    + AuditLog
    + RegistryRecords
    + FailureLog
    + PlaceStore
    + CounterStore
{
}

impl<T> Storage for T where
    T: CaseStore
        + QueueStore
        + DatasetStore
        + AuditLog
        + RegistryRecords
        + FailureLog
        + PlaceStore
        + CounterStore
{
}

/// The store traits, so that a caller gets every storage method with one
/// `use`.
pub mod prelude {
    pub use super::{
        AuditLog, CaseStore, CounterStore, DatasetReader, DatasetStore, FailureLog, ItemReader,
        PlaceStore, QueueStore, RegistryRecords, Storage,
    };
}
