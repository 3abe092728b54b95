//! The set of loaded plugins: every loaded version of every scenario, and
//! which version takes new cases.
//!
//! Cases are pinned to the version that started them, so a case's later
//! events look their version up by number, while new applications go to the
//! active version. Activation swaps one field under a write lock: a call
//! holds an `Arc` to the version it began on, so calls in flight finish on
//! it, and the next lookup sees the new one. What is loaded and active comes
//! from the registry (see `deploy.rs`); loading from a directory is for the
//! test kit and the demo seeding.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
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

#[derive(Default)]
struct Scenario {
    versions: BTreeMap<semver::Version, Arc<LoadedPlugin>>,
    active: Option<semver::Version>,
}

/// Every loaded plugin version, by scenario id.
#[derive(Default)]
pub struct PluginSet {
    scenarios: RwLock<HashMap<String, Scenario>>,
}

impl PluginSet {
    /// Adds a loaded version and makes the highest version of the scenario
    /// active (the test kit's and benchmarks' way in; the host goes through
    /// [`PluginSet::add`] and [`PluginSet::set_active`]).
    pub fn insert(&self, plugin: LoadedPlugin) -> Result<(), PluginDirError> {
        let id = plugin.manifest().id.clone();
        let version = plugin.manifest().version.clone();
        self.add(Arc::new(plugin))?;
        let mut scenarios = self.scenarios.write().unwrap_or_else(|e| e.into_inner());
        if let Some(entry) = scenarios.get_mut(&id)
            && entry.active.as_ref().is_none_or(|active| version > *active)
        {
            entry.active = Some(version);
        }
        Ok(())
    }

    /// Adds a loaded version without activating it.
    pub fn add(&self, plugin: Arc<LoadedPlugin>) -> Result<(), PluginDirError> {
        let id = plugin.manifest().id.clone();
        let version = plugin.manifest().version.clone();
        let mut scenarios = self.scenarios.write().unwrap_or_else(|e| e.into_inner());
        let entry = scenarios.entry(id.clone()).or_default();
        if entry.versions.contains_key(&version) {
            return Err(PluginDirError::Duplicate {
                id,
                version: version.to_string(),
            });
        }
        entry.versions.insert(version, plugin);
        Ok(())
    }

    /// Makes `version` (loaded already) the one that takes new cases, or
    /// none. Returns `false` if that version is not loaded.
    pub fn set_active(&self, scenario: &str, version: Option<&semver::Version>) -> bool {
        let mut scenarios = self.scenarios.write().unwrap_or_else(|e| e.into_inner());
        let Some(entry) = scenarios.get_mut(scenario) else {
            return version.is_none();
        };
        if let Some(version) = version
            && !entry.versions.contains_key(version)
        {
            return false;
        }
        entry.active = version.cloned();
        true
    }

    /// Drops a loaded version that is not active (calls in flight on it
    /// finish: they hold their own reference).
    pub fn remove(&self, scenario: &str, version: &semver::Version) -> bool {
        let mut scenarios = self.scenarios.write().unwrap_or_else(|e| e.into_inner());
        let Some(entry) = scenarios.get_mut(scenario) else {
            return false;
        };
        if entry.active.as_ref() == Some(version) {
            return false;
        }
        entry.versions.remove(version).is_some()
    }

    /// Whether `version` of `scenario` is loaded.
    pub fn is_loaded(&self, scenario: &str, version: &semver::Version) -> bool {
        let scenarios = self.scenarios.read().unwrap_or_else(|e| e.into_inner());
        scenarios
            .get(scenario)
            .is_some_and(|s| s.versions.contains_key(version))
    }

    /// The version of `scenario` that takes new cases.
    pub fn active(&self, scenario: &str) -> Option<Arc<LoadedPlugin>> {
        let scenarios = self.scenarios.read().unwrap_or_else(|e| e.into_inner());
        let entry = scenarios.get(scenario)?;
        entry.versions.get(entry.active.as_ref()?).cloned()
    }

    /// A given version of `scenario`, for the cases pinned to it.
    pub fn version(&self, scenario: &str, version: &str) -> Option<Arc<LoadedPlugin>> {
        let version = semver::Version::parse(version).ok()?;
        let scenarios = self.scenarios.read().unwrap_or_else(|e| e.into_inner());
        scenarios.get(scenario)?.versions.get(&version).cloned()
    }

    /// Every scenario with its active version and all its loaded versions,
    /// sorted by id (for operators).
    pub fn list(&self) -> Vec<(String, Option<String>, Vec<Arc<LoadedPlugin>>)> {
        let scenarios = self.scenarios.read().unwrap_or_else(|e| e.into_inner());
        let mut list: Vec<_> = scenarios
            .iter()
            .map(|(id, s)| {
                (
                    id.clone(),
                    s.active.as_ref().map(ToString::to_string),
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
            .filter_map(|s| s.versions.get(s.active.as_ref()?).cloned())
            .collect();
        active.sort_by(|a, b| a.manifest().id.cmp(&b.manifest().id));
        active
    }
}

/// The sub-directories of `dir` that hold a manifest, sorted.
pub fn plugin_dirs(dir: &Path) -> Result<Vec<PathBuf>, PluginDirError> {
    let entries = std::fs::read_dir(dir).map_err(|source| PluginDirError::Read {
        path: dir.display().to_string(),
        source,
    })?;
    let mut dirs: Vec<_> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.join(MANIFEST_FILE).is_file())
        .collect();
    dirs.sort();
    Ok(dirs)
}

/// Reads a plugin directory: the manifest's text (checked) and the
/// component's bytes.
pub fn read_plugin_dir(dir: &Path) -> Result<(String, Manifest, Vec<u8>), PluginDirError> {
    read_plugin_files(&dir.join(MANIFEST_FILE), &dir.join(COMPONENT_FILE))
}

/// Reads a manifest (checked) and a component from two paths.
pub fn read_plugin_files(
    manifest_path: &Path,
    component_path: &Path,
) -> Result<(String, Manifest, Vec<u8>), PluginDirError> {
    let read = |path: &Path| {
        std::fs::read(path).map_err(|source| PluginDirError::Read {
            path: path.display().to_string(),
            source,
        })
    };
    let manifest_bytes = read(manifest_path)?;
    let shown = manifest_path.display().to_string();
    let text = String::from_utf8(manifest_bytes).map_err(|e| PluginDirError::Read {
        path: shown.clone(),
        source: std::io::Error::new(std::io::ErrorKind::InvalidData, e),
    })?;
    let manifest = Manifest::parse(&text).map_err(|source| PluginDirError::Manifest {
        path: shown,
        source,
    })?;
    let wasm = read(component_path)?;
    Ok((text, manifest, wasm))
}

/// The subdirectory of a plugin crate where `onething plugin build` puts
/// the component (and a copy of the manifest).
pub const BUILD_DIR: &str = "dist";

/// Loads the plugin in one directory (unsigned: for the test kit and
/// benchmarks; the host loads only what the registry verified): its
/// `onething.toml` with the `plugin.wasm` beside it (a plugins dir's
/// layout) or, when there is none, with `dist/plugin.wasm` (a plugin crate
/// after `onething plugin build`).
pub async fn load_one(runtime: &Runtime, dir: &Path) -> Result<LoadedPlugin, PluginDirError> {
    let beside = dir.join(COMPONENT_FILE);
    let built = dir.join(BUILD_DIR).join(COMPONENT_FILE);
    let component = if !beside.is_file() && built.is_file() {
        built
    } else {
        beside
    };
    let (_, manifest, wasm) = read_plugin_files(&dir.join(MANIFEST_FILE), &component)?;
    Ok(runtime.load(manifest, &wasm).await?)
}
