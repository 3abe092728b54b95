//! The registry: trusted department keys, each department's grant ceiling,
//! every version of every plugin (in a content-addressed blob store), and
//! which version of each plugin is active.
//!
//! It verifies packages and keeps records; it knows nothing of HTTP or of
//! wasmtime. The host loads what the registry says is active and swaps it
//! in. Every change is written through [`RegistryStore::apply`] together
//! with the [`AdminAction`] that caused it, so that the host can put the
//! change and its audit record in one atomic write.
//!
//! Store layout (keys are UTF-8, values JSON unless noted):
//!
//! | key | value |
//! |---|---|
//! | `blob/<sha256>` | raw bytes whose SHA-256 is the key (components) |
//! | `key/<key_id>` | [`TrustedKey`] |
//! | `ceiling/<department>` | [`Ceiling`] |
//! | `version/<id>/<version>` | [`VersionRecord`] |
//! | `plugin/<id>` | [`PluginState`] |
//!
//! Its rooms: `store.rs` (the storage seam and an in-memory store),
//! `records.rs`, `error.rs`, `trust.rs` (keys and ceilings), `versions.rs`
//! (verify, publish, activate, roll back, deactivate, remove).

use std::collections::BTreeMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::keys::{self, ALGORITHM, PublicKeyFile};
use crate::manifest::{Manifest, is_name};
use crate::package::{PackageError, Sections};
use crate::world::{self, WorldError};

mod error;
mod records;
mod store;
mod trust;
mod versions;

pub use error::RegistryError;
pub use records::{Ceiling, PluginState, Published, TrustedKey, Verified, VersionRecord};
pub use store::{AdminAction, MemoryStore, RegistryStore, StoreError};

/// The registry's state, loaded from its store and written through it.
pub struct Registry<S> {
    store: S,
    keys: BTreeMap<String, TrustedKey>,
    ceilings: BTreeMap<String, Ceiling>,
    versions: BTreeMap<String, BTreeMap<semver::Version, VersionRecord>>,
    plugins: BTreeMap<String, PluginState>,
}

fn json<T: Serialize>(value: &T) -> Result<Vec<u8>, RegistryError> {
    serde_json::to_vec(value).map_err(|e| RegistryError::Corrupt(format!("encode: {e}")))
}

async fn load<S: RegistryStore, T: for<'de> Deserialize<'de>>(
    store: &S,
    prefix: &str,
) -> Result<Vec<T>, RegistryError> {
    let mut out = Vec::new();
    for (key, bytes) in store.scan(prefix).await? {
        let value = serde_json::from_slice(&bytes)
            .map_err(|e| RegistryError::Corrupt(format!("{key}: {e}")))?;
        out.push(value);
    }
    Ok(out)
}

fn version_key(id: &str, version: &semver::Version) -> String {
    format!("version/{id}/{version}")
}

fn action(actor: &str, action: &str, subject: String, detail: String) -> AdminAction {
    AdminAction {
        actor: actor.to_owned(),
        action: action.to_owned(),
        subject,
        detail,
    }
}

impl<S: RegistryStore> Registry<S> {
    /// Loads the registry's records from `store`.
    pub async fn open(store: S) -> Result<Self, RegistryError> {
        let keys: Vec<TrustedKey> = load(&store, "key/").await?;
        let ceilings: Vec<(String, Ceiling)> = {
            let mut out = Vec::new();
            for (key, bytes) in store.scan("ceiling/").await? {
                let ceiling = serde_json::from_slice(&bytes)
                    .map_err(|e| RegistryError::Corrupt(format!("{key}: {e}")))?;
                out.push((key.trim_start_matches("ceiling/").to_owned(), ceiling));
            }
            out
        };
        let records: Vec<VersionRecord> = load(&store, "version/").await?;
        let mut versions: BTreeMap<String, BTreeMap<_, _>> = BTreeMap::new();
        for record in records {
            versions
                .entry(record.id.clone())
                .or_default()
                .insert(record.version.clone(), record);
        }
        let mut plugins = BTreeMap::new();
        for (key, bytes) in store.scan("plugin/").await? {
            let state: PluginState = serde_json::from_slice(&bytes)
                .map_err(|e| RegistryError::Corrupt(format!("{key}: {e}")))?;
            plugins.insert(key.trim_start_matches("plugin/").to_owned(), state);
        }
        Ok(Registry {
            store,
            keys: keys.into_iter().map(|k| (k.key_id.clone(), k)).collect(),
            ceilings: ceilings.into_iter().collect(),
            versions,
            plugins,
        })
    }

    /// The store underneath.
    pub fn store(&self) -> &S {
        &self.store
    }
}
