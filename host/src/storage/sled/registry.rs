//! [`RegistryRecords`] on sled: the registry's records under `r/`, written
//! through the writer with their audit record.

use async_trait::async_trait;

use super::keys::{REGISTRY, key};
use super::writer::Write;
use super::{SledStorage, backend};
use crate::storage::{AuditRecord, RegistryRecords, StorageError};

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
