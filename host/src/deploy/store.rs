//! The registry's records on the host's storage ([`StorageRegistry`], the
//! [`RegistryStore`] the registry crate writes through): metadata records
//! with their audit entries, component blobs as files.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use onething_registry::{AdminAction, RegistryStore, StoreError};

use crate::storage::{AuditRecord, Storage, StorageError};

/// The registry's records on the host's storage: metadata under `r/` keys
/// in sled, each change written atomically with its audit entry; component
/// blobs as files named by their SHA-256 in `data_dir/blobs` (large values
/// stay out of sled's page cache). A blob is written and synced before the
/// record that names it, so a crash can leave an unreferenced blob, never a
/// record without its blob; reads check the digest.
pub struct StorageRegistry {
    storage: Arc<dyn Storage>,
    blobs: PathBuf,
}

fn store_error(e: StorageError) -> StoreError {
    StoreError(e.to_string())
}

fn io_error(what: &str, path: &Path, e: std::io::Error) -> StoreError {
    StoreError(format!("cannot {what} {}: {e}", path.display()))
}

impl StorageRegistry {
    /// A registry store on `storage`, with blobs in `blobs`.
    pub fn new(storage: Arc<dyn Storage>, blobs: PathBuf) -> Self {
        StorageRegistry { storage, blobs }
    }

    fn blob_path(&self, key: &str) -> Option<PathBuf> {
        let name = key.strip_prefix("blob/")?;
        // Only hex digests name files: nothing can climb out of the dir.
        (name.len() == 64 && name.bytes().all(|b| b.is_ascii_hexdigit()))
            .then(|| self.blobs.join(name))
    }

    /// Deletes blob files no version names (left by a crash between a
    /// blob and its record, or a half-written `.tmp`). Run at start,
    /// before any upload can race it.
    pub fn remove_unreferenced(&self, referenced: &std::collections::HashSet<String>) {
        let Ok(entries) = std::fs::read_dir(&self.blobs) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            if referenced.contains(&name) {
                continue;
            }
            match std::fs::remove_file(&path) {
                Ok(()) => tracing::info!(blob = %path.display(), "unreferenced blob removed"),
                Err(e) => {
                    tracing::warn!(blob = %path.display(), error = %e, "unreferenced blob not removed");
                }
            }
        }
    }

    fn write_blob(&self, path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
        use std::io::Write;
        std::fs::create_dir_all(&self.blobs).map_err(|e| io_error("create", &self.blobs, e))?;
        let tmp = path.with_extension("tmp");
        let mut file = std::fs::File::create(&tmp).map_err(|e| io_error("create", &tmp, e))?;
        file.write_all(bytes)
            .and_then(|()| file.sync_all())
            .map_err(|e| io_error("write", &tmp, e))?;
        std::fs::rename(&tmp, path).map_err(|e| io_error("rename", &tmp, e))?;
        std::fs::File::open(&self.blobs)
            .and_then(|dir| dir.sync_all())
            .map_err(|e| io_error("sync", &self.blobs, e))
    }
}

#[async_trait]
impl RegistryStore for StorageRegistry {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        if let Some(path) = self.blob_path(key) {
            return match tokio::fs::read(&path).await {
                Ok(bytes) => Ok(Some(bytes)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(io_error("read", &path, e)),
            };
        }
        self.storage.registry_get(key).await.map_err(store_error)
    }

    async fn scan(&self, prefix: &str) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        self.storage
            .registry_scan(prefix)
            .await
            .map_err(store_error)
    }

    async fn apply(
        &self,
        writes: Vec<(String, Option<Vec<u8>>)>,
        action: AdminAction,
    ) -> Result<(), StoreError> {
        let mut records = Vec::new();
        let mut removed_blobs = Vec::new();
        for (key, value) in writes {
            match (self.blob_path(&key), value) {
                (Some(path), Some(bytes)) => {
                    let this = StorageRegistry::new(self.storage.clone(), self.blobs.clone());
                    tokio::task::spawn_blocking(move || this.write_blob(&path, &bytes))
                        .await
                        .map_err(|e| StoreError(format!("blob writer: {e}")))??;
                }
                (Some(path), None) => removed_blobs.push(path),
                (None, value) => records.push((key, value)),
            }
        }
        self.storage
            .registry_apply(records, admin_record(action))
            .await
            .map_err(store_error)?;
        for path in removed_blobs {
            if let Err(e) = std::fs::remove_file(&path) {
                tracing::warn!(path = %path.display(), error = %e, "unreferenced blob not removed");
            }
        }
        Ok(())
    }
}

pub(super) fn admin_record(action: AdminAction) -> AuditRecord {
    AuditRecord::Admin {
        actor: action.actor,
        action: action.action,
        subject: action.subject,
        detail: action.detail,
    }
}
