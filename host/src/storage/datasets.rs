//! Dataset records the plugins read, and their imports.
//!
//! What a backend must guarantee:
//! - A record is JSON text under (dataset, key), returned as it was
//!   imported. Dataset names are `DEPARTMENT/NAME`.
//! - [`DatasetStore::import_dataset`] writes all its records and one
//!   [`AuditRecord::DatasetImport`](super::AuditRecord::DatasetImport)
//!   (the dataset and the record count) in one atomic write, or none;
//!   records with the same key are replaced, other records of the dataset
//!   stay. Durable when it returns `Ok`, and read by every read after.
//! - [`DatasetStore::replace_dataset`] removes every record of the dataset
//!   and writes the new ones, with one `DatasetImport` naming the operator
//!   and how many records the dataset held before, in one atomic write:
//!   a read before it sees the old record, a read after it the new one
//!   (or none), never a dataset half replaced.
//! - The read side is its own trait, [`DatasetReader`], because that is
//!   all a plugin call may reach.

use async_trait::async_trait;

use super::StorageError;

/// A dataset record to import: its key and its JSON text.
pub type DatasetRecord = (String, String);

/// Reads one dataset record: all a plugin call's `query` needs of storage.
#[async_trait]
pub trait DatasetReader: Send + Sync + 'static {
    /// One dataset record's JSON text.
    async fn dataset_record(
        &self,
        dataset: &str,
        key: &str,
    ) -> Result<Option<String>, StorageError>;
}

/// Dataset records and their imports (see the module docs).
#[async_trait]
pub trait DatasetStore: DatasetReader {
    /// Imports records into a dataset, all or none, replacing records with
    /// the same key; audited. Returns how many were written.
    async fn import_dataset(
        &self,
        dataset: &str,
        records: Vec<DatasetRecord>,
    ) -> Result<usize, StorageError>;

    /// Replaces a dataset whole for `actor`: removes every record it
    /// holds and writes `records`, all or none; audited. Returns how many
    /// were written.
    async fn replace_dataset(
        &self,
        dataset: &str,
        records: Vec<DatasetRecord>,
        actor: &str,
    ) -> Result<usize, StorageError>;

    /// Whether any dataset has been imported yet (used to seed demo data
    /// once).
    async fn has_datasets(&self) -> Result<bool, StorageError>;
}
