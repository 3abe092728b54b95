//! The seam to storage: what the registry writes through ([`RegistryStore`]),
//! the [`AdminAction`] each write carries, and an in-memory store.

use super::*;

/// Why the store failed.
#[derive(Debug, Clone, thiserror::Error)]
#[error("registry store: {0}")]
pub struct StoreError(pub String);

/// Where the registry keeps its records: the host implements it on its own
/// storage (behind the same seam as cases), [`MemoryStore`] for tests.
#[async_trait]
pub trait RegistryStore: Send + Sync {
    /// One value.
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError>;
    /// Every key and value under `prefix`, in key order.
    async fn scan(&self, prefix: &str) -> Result<Vec<(String, Vec<u8>)>, StoreError>;
    /// Writes (`None` removes) all of `writes` atomically and durably,
    /// recording `action` with them.
    async fn apply(
        &self,
        writes: Vec<(String, Option<Vec<u8>>)>,
        action: AdminAction,
    ) -> Result<(), StoreError>;
}

/// An operator's (or the demo seeder's) change, for the audit log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdminAction {
    /// Who: `admin` for the admin token, an operator token's name, or
    /// `demo-seed` for the demo seeding.
    pub actor: String,
    /// What, e.g. `plugin.upload`, `plugin.activate`, `key.trust`.
    pub action: String,
    /// On what, e.g. `newborn@0.2.0`, a key id, a department.
    pub subject: String,
    /// Anything else worth keeping (digest, previous version, grants).
    pub detail: String,
}

/// A registry store in memory, for tests and tools.
#[derive(Debug, Default)]
pub struct MemoryStore {
    data: std::sync::Mutex<BTreeMap<String, Vec<u8>>>,
    actions: std::sync::Mutex<Vec<AdminAction>>,
}

impl MemoryStore {
    /// Every action applied so far.
    pub fn actions(&self) -> Vec<AdminAction> {
        self.actions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

#[async_trait]
impl RegistryStore for MemoryStore {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let data = self.data.lock().unwrap_or_else(|e| e.into_inner());
        Ok(data.get(key).cloned())
    }

    async fn scan(&self, prefix: &str) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        let data = self.data.lock().unwrap_or_else(|e| e.into_inner());
        Ok(data
            .range(prefix.to_owned()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect())
    }

    async fn apply(
        &self,
        writes: Vec<(String, Option<Vec<u8>>)>,
        action: AdminAction,
    ) -> Result<(), StoreError> {
        let mut data = self.data.lock().unwrap_or_else(|e| e.into_inner());
        for (key, value) in writes {
            match value {
                Some(value) => data.insert(key, value),
                None => data.remove(&key),
            };
        }
        self.actions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(action);
        Ok(())
    }
}

#[async_trait]
impl<T: RegistryStore + ?Sized> RegistryStore for std::sync::Arc<T> {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        (**self).get(key).await
    }

    async fn scan(&self, prefix: &str) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        (**self).scan(prefix).await
    }

    async fn apply(
        &self,
        writes: Vec<(String, Option<Vec<u8>>)>,
        action: AdminAction,
    ) -> Result<(), StoreError> {
        (**self).apply(writes, action).await
    }
}
