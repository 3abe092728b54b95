//! Deployment: the registry's records turned into loaded, active plugins.
//!
//! The registry (crate `onething-registry`) verifies packages and keeps
//! versions, keys and ceilings; this module compiles what it stores
//! (through the compile cache), swaps the active version in the
//! [`PluginSet`] and keeps the two in step:
//!
//! - **upload**: verify → compile and `describe()` → store (with its audit
//!   entry) → loaded, not active;
//! - **activate**: compile (or take from the cache) *before* the swap →
//!   persist → swap. Calls in flight keep the version they began on; cases
//!   stay pinned to the version that started them;
//! - **restore** at start: every stored version is loaded and the recorded
//!   active version of each plugin takes new cases again;
//! - **demo seeding**: the example plugins are packed, signed with their
//!   department's demo key and published through the same checks.
//!
//! Admin operations are serialised by one lock (they are rare); requests
//! never take it.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::plugins::{PluginDirError, PluginSet};
use crate::runtime::{LoadError, LoadedPlugin, Runtime};
use crate::service::Clock;
use crate::storage::{Storage, StorageError};
use onething_registry::{
    AdminAction, Ceiling, PluginState, PublicKeyFile, Registry, RegistryError, TrustedKey,
    VersionRecord,
};

/// The actor name of the demo seeding in the audit log.
pub const DEMO_ACTOR: &str = "demo-seed";

mod seed;
mod store;

use store::admin_record;

pub use store::StorageRegistry;

/// Why a deployment step failed.
#[derive(Debug, thiserror::Error)]
pub enum DeployError {
    /// The registry refused.
    #[error(transparent)]
    Registry(#[from] RegistryError),
    /// The component passed the registry's checks but could not be loaded.
    #[error("the plugin cannot be loaded: {0}")]
    Load(#[from] LoadError),
    /// A version that open cases are pinned to.
    #[error(
        "{id}@{version} holds {open_cases} open case(s): a version is kept while its cases run"
    )]
    InUse {
        /// The plugin.
        id: String,
        /// The version.
        version: String,
        /// How many open cases it holds.
        open_cases: u64,
    },
    /// A plugin directory (demo seeding) could not be read.
    #[error(transparent)]
    Dir(#[from] PluginDirError),
    /// Storage failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// What an upload did (the HTTP layer renders it, `http/views.rs`).
#[derive(Debug, Clone)]
pub struct Uploaded {
    /// The stored version's record.
    pub record: VersionRecord,
    /// `false` when the same package was there already.
    pub created: bool,
    /// Whether it is now active.
    pub active: bool,
    /// Whether the compile cache had it.
    pub compile_cache: String,
}

/// What an activation, rollback or deactivation did.
#[derive(Debug, Clone)]
pub struct Switched {
    /// The plugin.
    pub id: String,
    /// The version active now (none after a deactivation).
    pub active: Option<semver::Version>,
    /// The version active before.
    pub previous: Option<semver::Version>,
    /// Time spent compiling (or reading the cache) before the swap.
    pub load: Duration,
}

/// One stored plugin with its versions: what [`Deployer::overview`]
/// returns.
#[derive(Clone)]
pub struct PluginOverview {
    /// The plugin (scenario) id.
    pub id: String,
    /// The owning department.
    pub department: String,
    /// Its active version and history.
    pub state: PluginState,
    /// Every stored version, lowest first.
    pub versions: Vec<VersionOverview>,
}

/// One stored version, and how it runs.
#[derive(Clone)]
pub struct VersionOverview {
    /// The registry's record of it.
    pub record: VersionRecord,
    /// Whether it takes new cases.
    pub active: bool,
    /// The loaded version, if it is loaded.
    pub loaded: Option<Arc<LoadedPlugin>>,
    /// Open cases pinned to it.
    pub open_cases: u64,
}

/// The registry and the loaded plugins, kept in step.
pub struct Deployer {
    registry: tokio::sync::Mutex<Registry<StorageRegistry>>,
    runtime: Arc<Runtime>,
    plugins: Arc<PluginSet>,
    storage: Arc<dyn Storage>,
    clock: Arc<dyn Clock>,
}

impl Deployer {
    /// Opens the registry on `storage`, with component blobs in
    /// `blob_dir`.
    pub async fn open(
        runtime: Arc<Runtime>,
        plugins: Arc<PluginSet>,
        storage: Arc<dyn Storage>,
        blob_dir: PathBuf,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, DeployError> {
        let registry = Registry::open(StorageRegistry::new(storage.clone(), blob_dir)).await?;
        Ok(Deployer {
            registry: tokio::sync::Mutex::new(registry),
            runtime,
            plugins,
            storage,
            clock,
        })
    }

    /// The loaded plugins.
    pub fn plugins(&self) -> &Arc<PluginSet> {
        &self.plugins
    }

    /// Loads every stored version and activates what the registry says is
    /// active. A version that fails to load is reported and skipped.
    pub async fn restore(&self) -> Vec<DeployError> {
        let registry = self.registry.lock().await;
        let mut errors = Vec::new();
        for (id, state) in registry.plugins() {
            for record in registry.versions(&id) {
                if self.plugins.is_loaded(&id, &record.version) {
                    continue;
                }
                if let Err(e) = self.load(&registry, &record).await {
                    tracing::error!(scenario = %id, version = %record.version, error = %e, "stored plugin version not loaded");
                    errors.push(e);
                }
            }
            if let Some(active) = &state.active
                && !self.plugins.set_active(&id, Some(active))
            {
                tracing::error!(scenario = %id, version = %active, "the active version is not loaded: the scenario takes no new cases");
            }
        }
        let referenced: std::collections::HashSet<String> = registry
            .plugins()
            .iter()
            .flat_map(|(id, _)| registry.versions(id))
            .map(|r| r.component_sha256)
            .collect();
        registry.store().remove_unreferenced(&referenced);
        errors
    }

    async fn load(
        &self,
        registry: &Registry<StorageRegistry>,
        record: &VersionRecord,
    ) -> Result<String, DeployError> {
        let component = registry.component(record).await?;
        let manifest = record.manifest()?;
        let plugin = self.runtime.load(manifest, &component).await?;
        let cache = format!("{:?}", plugin.cache_outcome()).to_lowercase();
        tracing::info!(scenario = %record.id, plugin_version = %record.version, compile_cache = %cache, "plugin version loaded");
        self.plugins.add(Arc::new(plugin))?;
        Ok(cache)
    }

    /// Verifies and stores a package, loads it, and activates it if asked.
    pub async fn upload(
        &self,
        bytes: &[u8],
        actor: &str,
        activate: bool,
    ) -> Result<Uploaded, DeployError> {
        let mut registry = self.registry.lock().await;
        let verified = registry.verify(bytes)?;
        let id = verified.manifest.id.clone();
        let version = verified.manifest.version.clone();
        let mut compile_cache = "loaded".to_owned();
        let known_same = match registry.version(&id, &version) {
            Some(existing) if existing.digest != verified.digest => {
                return Err(RegistryError::VersionExists {
                    id,
                    version: version.to_string(),
                    existing: existing.digest.clone(),
                }
                .into());
            }
            Some(_) => true,
            None => false,
        };
        // Load before storing: a package the runtime cannot load is never
        // recorded as a version.
        let loaded = if known_same || self.plugins.is_loaded(&id, &version) {
            None
        } else {
            let plugin = self
                .runtime
                .load(verified.manifest.clone(), &verified.component)
                .await?;
            compile_cache = format!("{:?}", plugin.cache_outcome()).to_lowercase();
            Some(plugin)
        };
        let published = registry
            .store_verified(verified, actor, self.clock.now())
            .await?;
        if let Some(plugin) = loaded {
            self.plugins.add(Arc::new(plugin))?;
        }
        if !self.plugins.is_loaded(&id, &version) {
            compile_cache = self.load(&registry, &published.record).await?;
        }
        let mut active = registry.state(&id).active.as_ref() == Some(&version);
        if activate && !active {
            self.switch_to(&mut registry, &id, &version, actor).await?;
            active = true;
        }
        tracing::info!(scenario = %id, plugin_version = %version, created = published.created, active, actor, "plugin package uploaded");
        Ok(Uploaded {
            record: published.record,
            created: published.created,
            active,
            compile_cache,
        })
    }

    /// Makes a stored version active: compiled before the swap.
    pub async fn activate(
        &self,
        id: &str,
        version: &semver::Version,
        actor: &str,
    ) -> Result<Switched, DeployError> {
        let mut registry = self.registry.lock().await;
        self.switch_to(&mut registry, id, version, actor).await
    }

    async fn switch_to(
        &self,
        registry: &mut Registry<StorageRegistry>,
        id: &str,
        version: &semver::Version,
        actor: &str,
    ) -> Result<Switched, DeployError> {
        let record = registry.can_activate(id, version)?;
        let started = Instant::now();
        if !self.plugins.is_loaded(id, version) {
            self.load(registry, &record).await?;
        }
        let load = started.elapsed();
        let previous = registry.activate(id, version, actor).await?;
        self.plugins.set_active(id, Some(version));
        tracing::info!(scenario = %id, plugin_version = %version, previous = ?previous.as_ref().map(ToString::to_string), load_ms = duration_ms(load), actor, "plugin version activated");
        Ok(Switched {
            id: id.to_owned(),
            active: Some(version.clone()),
            previous,
            load,
        })
    }

    /// Returns a plugin to the version active before.
    pub async fn rollback(&self, id: &str, actor: &str) -> Result<Switched, DeployError> {
        let mut registry = self.registry.lock().await;
        let state = registry.state(id);
        // Compile the target before anything changes.
        let started = Instant::now();
        if let Some(target) = state
            .history
            .iter()
            .rev()
            .find(|v| Some(*v) != state.active.as_ref())
            && !self.plugins.is_loaded(id, target)
            && let Ok(record) = registry.can_activate(id, target)
        {
            self.load(&registry, &record).await?;
        }
        let load = started.elapsed();
        let (from, to) = registry.rollback(id, actor).await?;
        if !self.plugins.is_loaded(id, &to) {
            let record = registry.can_activate(id, &to)?;
            self.load(&registry, &record).await?;
        }
        self.plugins.set_active(id, Some(&to));
        tracing::warn!(scenario = %id, from = ?from.as_ref().map(ToString::to_string), to = %to, actor, "plugin rolled back");
        Ok(Switched {
            id: id.to_owned(),
            active: Some(to),
            previous: from,
            load,
        })
    }

    /// Stops a plugin from taking new cases; its open cases go on.
    pub async fn deactivate(&self, id: &str, actor: &str) -> Result<Switched, DeployError> {
        let mut registry = self.registry.lock().await;
        let previous = registry.deactivate(id, actor).await?;
        self.plugins.set_active(id, None);
        tracing::warn!(scenario = %id, previous = ?previous.as_ref().map(ToString::to_string), actor, "plugin deactivated");
        Ok(Switched {
            id: id.to_owned(),
            active: None,
            previous,
            load: Duration::ZERO,
        })
    }

    /// Removes a stored version that is neither active nor used by an
    /// open case.
    pub async fn remove(
        &self,
        id: &str,
        version: &semver::Version,
        actor: &str,
    ) -> Result<(), DeployError> {
        let mut registry = self.registry.lock().await;
        if registry.state(id).active.as_ref() == Some(version) {
            return Err(RegistryError::Conflict(format!(
                "{id}@{version} is active: activate another version or deactivate {id} first"
            ))
            .into());
        }
        let open = self
            .storage
            .open_cases_by_version()
            .await?
            .get(&(id.to_owned(), version.to_string()))
            .copied()
            .unwrap_or(0);
        if open > 0 {
            return Err(DeployError::InUse {
                id: id.to_owned(),
                version: version.to_string(),
                open_cases: open,
            });
        }
        registry.remove(id, version, actor).await?;
        self.plugins.remove(id, version);
        Ok(())
    }

    /// Trusts a department's public key.
    pub async fn trust_key(
        &self,
        key: &PublicKeyFile,
        actor: &str,
    ) -> Result<(TrustedKey, bool), DeployError> {
        let mut registry = self.registry.lock().await;
        Ok(registry.trust_key(key, actor, self.clock.now()).await?)
    }

    /// Revokes a key. Returns it, and the active versions it signed
    /// (`id@version`): they keep running until an operator activates
    /// another version or deactivates the plugin.
    pub async fn revoke_key(
        &self,
        key_id: &str,
        actor: &str,
    ) -> Result<(TrustedKey, Vec<String>), DeployError> {
        let mut registry = self.registry.lock().await;
        let key = registry.revoke_key(key_id, actor, self.clock.now()).await?;
        let still_active = registry
            .plugins()
            .into_iter()
            .filter_map(|(id, state)| {
                let active = state.active?;
                let record = registry.version(&id, &active)?;
                (record.signed_by == key_id).then(|| format!("{id}@{active}"))
            })
            .collect();
        Ok((key, still_active))
    }

    /// Every key ever trusted.
    pub async fn keys(&self) -> Vec<TrustedKey> {
        self.registry.lock().await.keys()
    }

    /// Sets a department's grant ceiling.
    pub async fn set_ceiling(
        &self,
        department: &str,
        ceiling: Ceiling,
        actor: &str,
    ) -> Result<(), DeployError> {
        let mut registry = self.registry.lock().await;
        Ok(registry.set_ceiling(department, ceiling, actor).await?)
    }

    /// Every department's grant ceiling.
    pub async fn ceilings(&self) -> BTreeMap<String, Ceiling> {
        self.registry.lock().await.ceilings().clone()
    }

    /// Records an admin action that changes nothing in the registry (e.g.
    /// reactivating a quarantined version).
    pub async fn audit(&self, action: AdminAction) -> Result<(), DeployError> {
        Ok(self.storage.audit(vec![admin_record(action)]).await?)
    }

    /// Every stored plugin with its versions, which one is active, how many
    /// open cases each holds and how it runs.
    pub async fn overview(&self) -> Result<Vec<PluginOverview>, DeployError> {
        let open = self.storage.open_cases_by_version().await?;
        let registry = self.registry.lock().await;
        let mut overview = Vec::new();
        for (id, state) in registry.plugins() {
            let records = registry.versions(&id);
            let department = records
                .last()
                .map(|r| r.department.clone())
                .unwrap_or_default();
            let versions = records
                .into_iter()
                .map(|record| {
                    let version = record.version.to_string();
                    VersionOverview {
                        active: state.active.as_ref() == Some(&record.version),
                        loaded: self.plugins.version(&id, &version),
                        open_cases: open.get(&(id.clone(), version)).copied().unwrap_or(0),
                        record,
                    }
                })
                .collect();
            overview.push(PluginOverview {
                id,
                department,
                state,
                versions,
            });
        }
        Ok(overview)
    }
}

/// A duration in whole milliseconds, saturating.
pub fn duration_ms(elapsed: Duration) -> u64 {
    u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX)
}
