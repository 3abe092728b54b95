//! The set of loaded plugins: every loaded version of every scenario, and
//! which version takes new cases.
//!
//! Cases are pinned to the version that started them, so a case's later
//! events look its version up by number, while new applications go to the
//! active version. Loading from a directory is how the example plugins come
//! in for now; signed packages and hot swaps come with the registry work and
//! will replace the map atomically.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::{Arc, RwLock};

use onething_registry::Manifest;

use crate::runtime::{LoadError, LoadedPlugin, Runtime};

/// The file name of a plugin's manifest in its directory.
pub const MANIFEST_FILE: &str = "onething.toml";
/// The file name of a plugin's component in its directory.
pub const COMPONENT_FILE: &str = "plugin.wasm";

/// Why a plugin directory could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum PluginDirError {
    /// A file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The manifest is not valid.
    #[error("{path}: {source}")]
    Manifest {
        /// The manifest file.
        path: String,
        /// What is wrong.
        source: onething_registry::ManifestError,
    },
    /// The component could not be loaded.
    #[error(transparent)]
    Load(#[from] LoadError),
    /// The same id and version is loaded already.
    #[error("plugin `{id}` version {version} is loaded twice")]
    Duplicate {
        /// The plugin id.
        id: String,
        /// The version.
        version: String,
    },
}

struct Scenario {
    versions: BTreeMap<semver::Version, Arc<LoadedPlugin>>,
    active: semver::Version,
}

/// Every loaded plugin version, by scenario id.
#[derive(Default)]
pub struct PluginSet {
    scenarios: RwLock<HashMap<String, Scenario>>,
}

impl PluginSet {
    /// Adds a loaded version; the highest version of a scenario is active.
    pub fn insert(&self, plugin: LoadedPlugin) -> Result<(), PluginDirError> {
        let id = plugin.manifest().id.clone();
        let version = plugin.manifest().version.clone();
        let mut scenarios = self.scenarios.write().unwrap_or_else(|e| e.into_inner());
        let entry = scenarios.entry(id.clone()).or_insert_with(|| Scenario {
            versions: BTreeMap::new(),
            active: version.clone(),
        });
        if entry.versions.contains_key(&version) {
            return Err(PluginDirError::Duplicate {
                id,
                version: version.to_string(),
            });
        }
        entry.versions.insert(version.clone(), Arc::new(plugin));
        if version > entry.active {
            entry.active = version;
        }
        Ok(())
    }

    /// The version of `scenario` that takes new cases.
    pub fn active(&self, scenario: &str) -> Option<Arc<LoadedPlugin>> {
        let scenarios = self.scenarios.read().unwrap_or_else(|e| e.into_inner());
        let entry = scenarios.get(scenario)?;
        entry.versions.get(&entry.active).cloned()
    }

    /// A given version of `scenario`, for the cases pinned to it.
    pub fn version(&self, scenario: &str, version: &str) -> Option<Arc<LoadedPlugin>> {
        let version = semver::Version::parse(version).ok()?;
        let scenarios = self.scenarios.read().unwrap_or_else(|e| e.into_inner());
        scenarios.get(scenario)?.versions.get(&version).cloned()
    }

    /// Every scenario with its active version and all its loaded versions,
    /// sorted by id (for operators).
    pub fn list(&self) -> Vec<(String, String, Vec<Arc<LoadedPlugin>>)> {
        let scenarios = self.scenarios.read().unwrap_or_else(|e| e.into_inner());
        let mut list: Vec<_> = scenarios
            .iter()
            .map(|(id, s)| {
                (
                    id.clone(),
                    s.active.to_string(),
                    s.versions.values().cloned().collect(),
                )
            })
            .collect();
        list.sort_by(|a, b| a.0.cmp(&b.0));
        list
    }

    /// The active version of every scenario, sorted by id.
    pub fn catalogue(&self) -> Vec<Arc<LoadedPlugin>> {
        let scenarios = self.scenarios.read().unwrap_or_else(|e| e.into_inner());
        let mut active: Vec<_> = scenarios
            .values()
            .filter_map(|s| s.versions.get(&s.active).cloned())
            .collect();
        active.sort_by(|a, b| a.manifest().id.cmp(&b.manifest().id));
        active
    }

    /// Loads every sub-directory of `dir` that holds a manifest and a
    /// component. A plugin that fails to load is reported and skipped, so
    /// that one department's broken plugin does not take the others down.
    pub async fn load_dir(&self, runtime: &Runtime, dir: &Path) -> Vec<PluginDirError> {
        let mut errors = Vec::new();
        let entries = match std::fs::read_dir(dir) {
            Ok(entries) => entries,
            Err(source) => {
                errors.push(PluginDirError::Read {
                    path: dir.display().to_string(),
                    source,
                });
                return errors;
            }
        };
        let mut dirs: Vec<_> = entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.join(MANIFEST_FILE).is_file())
            .collect();
        dirs.sort();
        for plugin_dir in dirs {
            match load_one(runtime, &plugin_dir).await {
                Ok(plugin) => {
                    tracing::info!(
                        scenario = %plugin.manifest().id,
                        plugin_version = %plugin.version(),
                        dir = %plugin_dir.display(),
                        compile_cache = ?plugin.cache_outcome(),
                        "plugin loaded"
                    );
                    if let Err(e) = self.insert(plugin) {
                        errors.push(e);
                    }
                }
                Err(e) => errors.push(e),
            }
        }
        errors
    }
}

/// Loads the plugin in one directory.
pub async fn load_one(runtime: &Runtime, dir: &Path) -> Result<LoadedPlugin, PluginDirError> {
    let read = |name: &str| {
        let path = dir.join(name);
        std::fs::read(&path).map_err(|source| PluginDirError::Read {
            path: path.display().to_string(),
            source,
        })
    };
    let manifest_bytes = read(MANIFEST_FILE)?;
    let manifest_path = dir.join(MANIFEST_FILE).display().to_string();
    let text = String::from_utf8(manifest_bytes).map_err(|e| PluginDirError::Read {
        path: manifest_path.clone(),
        source: std::io::Error::new(std::io::ErrorKind::InvalidData, e),
    })?;
    let manifest = Manifest::parse(&text).map_err(|source| PluginDirError::Manifest {
        path: manifest_path,
        source,
    })?;
    let wasm = read(COMPONENT_FILE)?;
    Ok(runtime.load(manifest, &wasm).await?)
}
