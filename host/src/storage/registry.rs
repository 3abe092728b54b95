//! The plugin registry's records (see `onething_registry::registry`):
//! opaque bytes under string keys, which the registry encodes and decodes
//! itself.
//!
//! What a backend must guarantee:
//! - [`RegistryRecords::registry_apply`] writes every record change
//!   (`None` removes the key) and its audit record in one atomic write, or
//!   none; durable when it returns `Ok`, and seen by every read after.
//! - [`RegistryRecords::registry_scan`] lists keys in byte order.
//! - Registry keys are their own namespace: they never clash with the keys
//!   of another store.

use async_trait::async_trait;

use super::{AuditRecord, StorageError};

/// The plugin registry's records (see the module docs).
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
