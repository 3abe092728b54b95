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

use std::collections::BTreeMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::keys::{self, ALGORITHM, PublicKeyFile};
use crate::manifest::{Manifest, is_name};
use crate::package::{PackageError, Sections};
use crate::world::{self, WorldError};

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

/// A department key the operator trusts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrustedKey {
    /// The key id.
    pub key_id: String,
    /// The only department whose packages it may sign.
    pub department: String,
    /// The ed25519 public key, hex.
    pub public_key: String,
    /// When it was trusted.
    pub trusted_at: DateTime<Utc>,
    /// When it was revoked, if it was: packages it signed are refused from
    /// then on, and versions it signed cannot be activated again.
    pub revoked_at: Option<DateTime<Utc>>,
}

/// The most a department's plugins may be granted. Each entry is exact
/// (`health/birth-certificates`, `hrss`), a department's every dataset
/// (`health/*`), or anything (`*`). No ceiling means nothing may be
/// granted.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ceiling {
    /// Datasets the department's plugins may be granted.
    #[serde(default)]
    pub datasets: Vec<String>,
    /// Departments the department's plugins may dispatch to.
    #[serde(default)]
    pub dispatch: Vec<String>,
}

impl Ceiling {
    fn allows(patterns: &[String], value: &str) -> bool {
        patterns.iter().any(|p| {
            p == "*"
                || p == value
                || p.strip_suffix("/*").is_some_and(|dept| {
                    value
                        .split_once('/')
                        .is_some_and(|(value_dept, _)| value_dept == dept)
                })
        })
    }

    /// The first grant of `manifest` beyond this ceiling, as (kind, value).
    pub fn first_excess(&self, manifest: &Manifest) -> Option<(&'static str, String)> {
        let dataset = manifest
            .grants
            .datasets
            .iter()
            .find(|d| !Self::allows(&self.datasets, d))
            .map(|d| ("dataset", d.clone()));
        dataset.or_else(|| {
            manifest
                .grants
                .dispatch
                .iter()
                .find(|d| !Self::allows(&self.dispatch, d))
                .map(|d| ("dispatch", d.clone()))
        })
    }

    /// Checks every entry's shape.
    pub fn validate(&self) -> Result<(), RegistryError> {
        let bad = |entry: &str| RegistryError::InvalidCeiling(entry.to_owned());
        for entry in &self.datasets {
            let ok = entry == "*"
                || entry
                    .split_once('/')
                    .is_some_and(|(dept, name)| is_name(dept) && (name == "*" || is_name(name)));
            if !ok {
                return Err(bad(entry));
            }
        }
        for entry in &self.dispatch {
            if entry != "*" && !is_name(entry) {
                return Err(bad(entry));
            }
        }
        Ok(())
    }
}

/// One stored version of a plugin.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionRecord {
    /// The plugin (scenario) id.
    pub id: String,
    /// The version.
    pub version: semver::Version,
    /// The owning department.
    pub department: String,
    /// The package digest (hex): its content identity.
    pub digest: String,
    /// SHA-256 of the component (hex): its blob's key.
    pub component_sha256: String,
    /// The component's size in bytes.
    pub component_bytes: u64,
    /// The manifest exactly as signed.
    pub manifest_text: String,
    /// The key that signed it.
    pub signed_by: String,
    /// When it was uploaded.
    pub uploaded_at: DateTime<Utc>,
    /// Who uploaded it.
    pub uploaded_by: String,
    /// The `onething:scenario` world its component was built for
    /// (`0.1.0` or `0.2.0`; records from before 0.2.0 are 0.1.0).
    #[serde(default = "world_0_1")]
    pub world: String,
}

fn world_0_1() -> String {
    world::World::V0_1.as_str().to_owned()
}

impl VersionRecord {
    /// The parsed manifest.
    pub fn manifest(&self) -> Result<Manifest, RegistryError> {
        Manifest::parse(&self.manifest_text).map_err(|e| {
            RegistryError::Corrupt(format!(
                "stored manifest of {}@{}: {e}",
                self.id, self.version
            ))
        })
    }
}

/// Which version of a plugin is active, and the ones active before it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PluginState {
    /// The version that takes new cases; `None` when deactivated.
    pub active: Option<semver::Version>,
    /// Versions active before, oldest first: rollback returns to the last.
    pub history: Vec<semver::Version>,
}

/// A package that passed every check.
#[derive(Debug, Clone)]
pub struct Verified {
    /// Its manifest.
    pub manifest: Manifest,
    /// Its manifest's text.
    pub manifest_text: String,
    /// Its component.
    pub component: Vec<u8>,
    /// Its digest, hex.
    pub digest: String,
    /// The trusted key that signed it.
    pub signed_by: TrustedKey,
    /// The world its component was built for.
    pub world: world::World,
}

/// What an upload did.
#[derive(Debug, Clone)]
pub struct Published {
    /// The stored version.
    pub record: VersionRecord,
    /// `false` when the very same package was stored already.
    pub created: bool,
}

/// Why the registry refused.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// The file is not a well-formed package.
    #[error("the package is malformed: {0}")]
    Malformed(#[source] PackageError),
    /// The manifest inside a correctly signed package is not valid.
    #[error("{0}")]
    Manifest(#[source] PackageError),
    /// No signature section.
    #[error(
        "the package is unsigned: sign it with `onething plugin sign PACKAGE --key DEPARTMENT.key`"
    )]
    Unsigned,
    /// A signature algorithm other than ed25519.
    #[error("the package is signed with `{0}`; only ed25519 is accepted")]
    Algorithm(String),
    /// The signing key is not trusted.
    #[error(
        "the package is signed by key `{key_id}`, which this host does not trust: an operator must trust the department's public key first"
    )]
    UntrustedKey {
        /// The key's id.
        key_id: String,
    },
    /// The signing key was revoked.
    #[error("the package is signed by key `{key_id}`, which was revoked at {revoked_at}")]
    RevokedKey {
        /// The key's id.
        key_id: String,
        /// When.
        revoked_at: DateTime<Utc>,
    },
    /// The signature does not match the content.
    #[error(
        "the signature does not match the package's content: the manifest or the component was changed after signing (tampered or corrupted)"
    )]
    Tampered,
    /// The key is trusted, but for another department.
    #[error(
        "the package belongs to department `{manifest_department}` but is signed by key `{key_id}`, which is trusted only for department `{key_department}`"
    )]
    WrongDepartment {
        /// The key's id.
        key_id: String,
        /// The department the key is trusted for.
        key_department: String,
        /// The department in the manifest.
        manifest_department: String,
    },
    /// A grant beyond the department's ceiling.
    #[error(
        "the manifest grants {kind} `{value}`, beyond what the operator allows department `{department}` (see GET /v1/admin/grants)"
    )]
    GrantBeyondCeiling {
        /// The department.
        department: String,
        /// `dataset` or `dispatch`.
        kind: &'static str,
        /// The grant.
        value: String,
    },
    /// The component does not fit the world.
    #[error("the component does not fit the onething:scenario world: {0}")]
    WrongWorld(#[source] WorldError),
    /// The version exists with different content.
    #[error(
        "{id} version {version} already exists with different content (digest {existing}): bump the version to publish a change"
    )]
    VersionExists {
        /// The plugin.
        id: String,
        /// The version.
        version: String,
        /// The stored digest.
        existing: String,
    },
    /// Something asked for is not there.
    #[error("{0}")]
    NotFound(String),
    /// An operation that does not fit the current state.
    #[error("{0}")]
    Conflict(String),
    /// A ceiling entry of the wrong shape.
    #[error(
        "grant ceiling entry `{0}` is not valid: use `*`, `DEPARTMENT/*`, `DEPARTMENT/DATASET` (datasets) or a department name (dispatch)"
    )]
    InvalidCeiling(String),
    /// A public key that cannot be trusted as given.
    #[error(transparent)]
    Key(#[from] keys::KeyError),
    /// A stored record is damaged.
    #[error("the registry store is damaged: {0}")]
    Corrupt(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl RegistryError {
    /// A stable, machine-readable code for the error.
    pub fn code(&self) -> &'static str {
        match self {
            RegistryError::Malformed(_) => "package_malformed",
            RegistryError::Manifest(_) => "manifest_invalid",
            RegistryError::Unsigned => "package_unsigned",
            RegistryError::Algorithm(_) => "signature_algorithm",
            RegistryError::UntrustedKey { .. } => "key_untrusted",
            RegistryError::RevokedKey { .. } => "key_revoked",
            RegistryError::Tampered => "package_tampered",
            RegistryError::WrongDepartment { .. } => "key_wrong_department",
            RegistryError::GrantBeyondCeiling { .. } => "grant_beyond_ceiling",
            RegistryError::WrongWorld(_) => "wrong_world",
            RegistryError::VersionExists { .. } => "version_exists",
            RegistryError::NotFound(_) => "not_found",
            RegistryError::Conflict(_) => "conflict",
            RegistryError::InvalidCeiling(_) => "invalid_ceiling",
            RegistryError::Key(_) => "invalid_key",
            RegistryError::Corrupt(_) => "registry_corrupt",
            RegistryError::Store(_) => "storage_unavailable",
        }
    }
}

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

    /// Trusts `key` for its department. Trusting a key again is a no-op; a
    /// key already trusted for another department, or revoked, is refused.
    pub async fn trust_key(
        &mut self,
        key: &PublicKeyFile,
        actor: &str,
        now: DateTime<Utc>,
    ) -> Result<(TrustedKey, bool), RegistryError> {
        let key = PublicKeyFile::parse(&key.to_toml())?;
        if let Some(existing) = self.keys.get(&key.key_id) {
            if let Some(revoked_at) = existing.revoked_at {
                return Err(RegistryError::Conflict(format!(
                    "key `{}` was revoked at {revoked_at} and cannot be trusted again: make a new key",
                    key.key_id
                )));
            }
            if existing.department != key.department {
                return Err(RegistryError::Conflict(format!(
                    "key `{}` is already trusted for department `{}`; one key signs for one department",
                    key.key_id, existing.department
                )));
            }
            return Ok((existing.clone(), false));
        }
        let trusted = TrustedKey {
            key_id: key.key_id.clone(),
            department: key.department.clone(),
            public_key: key.public_key.clone(),
            trusted_at: now,
            revoked_at: None,
        };
        self.store
            .apply(
                vec![(format!("key/{}", trusted.key_id), Some(json(&trusted)?))],
                action(
                    actor,
                    "key.trust",
                    trusted.key_id.clone(),
                    format!("department={}", trusted.department),
                ),
            )
            .await?;
        self.keys.insert(trusted.key_id.clone(), trusted.clone());
        Ok((trusted, true))
    }

    /// Revokes a key: packages it signed are refused from now on.
    pub async fn revoke_key(
        &mut self,
        key_id: &str,
        actor: &str,
        now: DateTime<Utc>,
    ) -> Result<TrustedKey, RegistryError> {
        let mut key = self
            .keys
            .get(key_id)
            .cloned()
            .ok_or_else(|| RegistryError::NotFound(format!("no trusted key `{key_id}`")))?;
        if key.revoked_at.is_some() {
            return Ok(key);
        }
        key.revoked_at = Some(now);
        self.store
            .apply(
                vec![(format!("key/{key_id}"), Some(json(&key)?))],
                action(
                    actor,
                    "key.revoke",
                    key_id.to_owned(),
                    format!("department={}", key.department),
                ),
            )
            .await?;
        self.keys.insert(key_id.to_owned(), key.clone());
        Ok(key)
    }

    /// Every key ever trusted, revoked ones included.
    pub fn keys(&self) -> Vec<TrustedKey> {
        self.keys.values().cloned().collect()
    }

    /// Sets a department's grant ceiling.
    pub async fn set_ceiling(
        &mut self,
        department: &str,
        ceiling: Ceiling,
        actor: &str,
    ) -> Result<(), RegistryError> {
        if !is_name(department) {
            return Err(RegistryError::Key(keys::KeyError::Department(
                department.to_owned(),
            )));
        }
        ceiling.validate()?;
        self.store
            .apply(
                vec![(format!("ceiling/{department}"), Some(json(&ceiling)?))],
                action(
                    actor,
                    "grants.set",
                    department.to_owned(),
                    format!(
                        "datasets=[{}] dispatch=[{}]",
                        ceiling.datasets.join(","),
                        ceiling.dispatch.join(",")
                    ),
                ),
            )
            .await?;
        self.ceilings.insert(department.to_owned(), ceiling);
        Ok(())
    }

    /// A department's grant ceiling (empty when none was set).
    pub fn ceiling(&self, department: &str) -> Ceiling {
        self.ceilings.get(department).cloned().unwrap_or_default()
    }

    /// Every department's ceiling.
    pub fn ceilings(&self) -> &BTreeMap<String, Ceiling> {
        &self.ceilings
    }

    /// Runs every check on a package file: framing, signature present,
    /// key trusted and not revoked, signature over the content, manifest,
    /// key's department = manifest's, grants within the ceiling, world.
    pub fn verify(&self, bytes: &[u8]) -> Result<Verified, RegistryError> {
        let sections = Sections::read(bytes).map_err(RegistryError::Malformed)?;
        let signature = sections.signature.clone().ok_or(RegistryError::Unsigned)?;
        if signature.algorithm != ALGORITHM {
            return Err(RegistryError::Algorithm(signature.algorithm));
        }
        let key = self
            .keys
            .get(&signature.key_id)
            .ok_or_else(|| RegistryError::UntrustedKey {
                key_id: signature.key_id.clone(),
            })?;
        if let Some(revoked_at) = key.revoked_at {
            return Err(RegistryError::RevokedKey {
                key_id: key.key_id.clone(),
                revoked_at,
            });
        }
        let public = keys::parse_public_key(&key.public_key)?;
        let digest = sections.digest();
        if !keys::verify(&public, &digest, &signature.signature) {
            return Err(RegistryError::Tampered);
        }
        let manifest_text = String::from_utf8(sections.manifest.to_vec())
            .map_err(|_| RegistryError::Manifest(PackageError::ManifestEncoding))?;
        let manifest = Manifest::parse(&manifest_text)
            .map_err(|e| RegistryError::Manifest(PackageError::Manifest(e)))?;
        if manifest.department != key.department {
            return Err(RegistryError::WrongDepartment {
                key_id: key.key_id.clone(),
                key_department: key.department.clone(),
                manifest_department: manifest.department,
            });
        }
        if let Some((kind, value)) = self.ceiling(&manifest.department).first_excess(&manifest) {
            return Err(RegistryError::GrantBeyondCeiling {
                department: manifest.department,
                kind,
                value,
            });
        }
        let world = world::check(sections.component).map_err(RegistryError::WrongWorld)?;
        Ok(Verified {
            world,
            manifest,
            manifest_text,
            component: sections.component.to_vec(),
            digest: hex::encode(digest),
            signed_by: key.clone(),
        })
    }

    /// Verifies a package and stores it as a new version (not active). The
    /// very same package again is accepted and changes nothing; the same
    /// version with other content is refused.
    pub async fn publish(
        &mut self,
        bytes: &[u8],
        actor: &str,
        now: DateTime<Utc>,
    ) -> Result<Published, RegistryError> {
        let verified = self.verify(bytes)?;
        self.store_verified(verified, actor, now).await
    }

    /// Stores a package that [`Registry::verify`] accepted.
    pub async fn store_verified(
        &mut self,
        verified: Verified,
        actor: &str,
        now: DateTime<Utc>,
    ) -> Result<Published, RegistryError> {
        let id = verified.manifest.id.clone();
        let version = verified.manifest.version.clone();
        if let Some(existing) = self.version(&id, &version) {
            if existing.digest == verified.digest {
                return Ok(Published {
                    record: existing.clone(),
                    created: false,
                });
            }
            return Err(RegistryError::VersionExists {
                id,
                version: version.to_string(),
                existing: existing.digest.clone(),
            });
        }
        let component_sha256 = hex::encode(Sha256::digest(&verified.component));
        let record = VersionRecord {
            id: id.clone(),
            version: version.clone(),
            department: verified.manifest.department.clone(),
            digest: verified.digest.clone(),
            component_sha256: component_sha256.clone(),
            component_bytes: verified.component.len() as u64,
            manifest_text: verified.manifest_text,
            signed_by: verified.signed_by.key_id.clone(),
            uploaded_at: now,
            uploaded_by: actor.to_owned(),
            world: verified.world.as_str().to_owned(),
        };
        let mut writes = vec![(version_key(&id, &version), Some(json(&record)?))];
        let blob_key = format!("blob/{component_sha256}");
        if self.store.get(&blob_key).await?.is_none() {
            writes.push((blob_key, Some(verified.component)));
        }
        self.store
            .apply(
                writes,
                action(
                    actor,
                    "plugin.upload",
                    format!("{id}@{version}"),
                    format!("digest={} signed_by={}", record.digest, record.signed_by),
                ),
            )
            .await?;
        self.versions
            .entry(id)
            .or_default()
            .insert(version, record.clone());
        Ok(Published {
            record,
            created: true,
        })
    }

    /// One stored version.
    pub fn version(&self, id: &str, version: &semver::Version) -> Option<&VersionRecord> {
        self.versions.get(id)?.get(version)
    }

    /// A plugin's stored versions, lowest first.
    pub fn versions(&self, id: &str) -> Vec<VersionRecord> {
        self.versions
            .get(id)
            .map(|v| v.values().cloned().collect())
            .unwrap_or_default()
    }

    /// Every plugin id with stored versions, and its state.
    pub fn plugins(&self) -> Vec<(String, PluginState)> {
        self.versions
            .keys()
            .map(|id| (id.clone(), self.state(id)))
            .collect()
    }

    /// A plugin's state.
    pub fn state(&self, id: &str) -> PluginState {
        self.plugins.get(id).cloned().unwrap_or_default()
    }

    /// A stored version's component, checked against its digest.
    pub async fn component(&self, record: &VersionRecord) -> Result<Vec<u8>, RegistryError> {
        let key = format!("blob/{}", record.component_sha256);
        let bytes = self.store.get(&key).await?.ok_or_else(|| {
            RegistryError::Corrupt(format!(
                "the component of {}@{} ({key}) is missing",
                record.id, record.version
            ))
        })?;
        if hex::encode(Sha256::digest(&bytes)) != record.component_sha256 {
            return Err(RegistryError::Corrupt(format!(
                "the component of {}@{} does not match its digest: the blob store was changed on disk",
                record.id, record.version
            )));
        }
        Ok(bytes)
    }

    /// Checks that `version` of `id` may become active: it is stored and its
    /// key is not revoked.
    pub fn can_activate(
        &self,
        id: &str,
        version: &semver::Version,
    ) -> Result<VersionRecord, RegistryError> {
        let record = self.version(id, version).ok_or_else(|| {
            RegistryError::NotFound(format!("{id} has no stored version {version}"))
        })?;
        if let Some(key) = self.keys.get(&record.signed_by)
            && let Some(revoked_at) = key.revoked_at
        {
            return Err(RegistryError::RevokedKey {
                key_id: key.key_id.clone(),
                revoked_at,
            });
        }
        Ok(record.clone())
    }

    /// Makes `version` the active version of `id`; the one before goes on
    /// the history for rollback. Returns the previous active version.
    pub async fn activate(
        &mut self,
        id: &str,
        version: &semver::Version,
        actor: &str,
    ) -> Result<Option<semver::Version>, RegistryError> {
        self.can_activate(id, version)?;
        let mut state = self.state(id);
        let previous = state.active.clone();
        if previous.as_ref() == Some(version) {
            return Ok(previous);
        }
        if let Some(previous) = &previous {
            state.history.push(previous.clone());
        }
        state.active = Some(version.clone());
        self.write_state(id, state, actor, "plugin.activate", version, &previous)
            .await?;
        Ok(previous)
    }

    /// Returns `id` to the version active before the current one. Returns
    /// (from, to).
    pub async fn rollback(
        &mut self,
        id: &str,
        actor: &str,
    ) -> Result<(Option<semver::Version>, semver::Version), RegistryError> {
        let mut state = self.state(id);
        let current = state.active.clone();
        let target = loop {
            let Some(candidate) = state.history.pop() else {
                return Err(RegistryError::Conflict(format!(
                    "{id} has no earlier version to roll back to"
                )));
            };
            if Some(&candidate) != current.as_ref() && self.can_activate(id, &candidate).is_ok() {
                break candidate;
            }
        };
        state.active = Some(target.clone());
        self.write_state(id, state, actor, "plugin.rollback", &target, &current)
            .await?;
        Ok((current, target))
    }

    /// Stops `id` from taking new cases (its open cases go on).
    pub async fn deactivate(
        &mut self,
        id: &str,
        actor: &str,
    ) -> Result<Option<semver::Version>, RegistryError> {
        if !self.versions.contains_key(id) {
            return Err(RegistryError::NotFound(format!("no plugin `{id}`")));
        }
        let mut state = self.state(id);
        let Some(previous) = state.active.take() else {
            return Ok(None);
        };
        state.history.push(previous.clone());
        let subject = format!("{id}@{previous}");
        let writes = vec![(format!("plugin/{id}"), Some(json(&state)?))];
        self.store
            .apply(
                writes,
                action(actor, "plugin.deactivate", subject, String::new()),
            )
            .await?;
        self.plugins.insert(id.to_owned(), state);
        Ok(Some(previous))
    }

    /// Removes a stored version that is not active. The caller checks that
    /// no open case is pinned to it. The component blob stays if another
    /// version shares it.
    pub async fn remove(
        &mut self,
        id: &str,
        version: &semver::Version,
        actor: &str,
    ) -> Result<(), RegistryError> {
        let record = self.version(id, version).cloned().ok_or_else(|| {
            RegistryError::NotFound(format!("{id} has no stored version {version}"))
        })?;
        let mut state = self.state(id);
        if state.active.as_ref() == Some(version) {
            return Err(RegistryError::Conflict(format!(
                "{id}@{version} is active: activate another version or deactivate {id} first"
            )));
        }
        state.history.retain(|v| v != version);
        let shared = self
            .versions
            .values()
            .flat_map(|v| v.values())
            .any(|r| r.component_sha256 == record.component_sha256 && r.version != *version);
        let mut writes = vec![
            (version_key(id, version), None),
            (format!("plugin/{id}"), Some(json(&state)?)),
        ];
        if !shared {
            writes.push((format!("blob/{}", record.component_sha256), None));
        }
        self.store
            .apply(
                writes,
                action(
                    actor,
                    "plugin.remove",
                    format!("{id}@{version}"),
                    format!("digest={}", record.digest),
                ),
            )
            .await?;
        if let Some(versions) = self.versions.get_mut(id) {
            versions.remove(version);
        }
        self.plugins.insert(id.to_owned(), state);
        Ok(())
    }

    async fn write_state(
        &mut self,
        id: &str,
        state: PluginState,
        actor: &str,
        what: &str,
        version: &semver::Version,
        previous: &Option<semver::Version>,
    ) -> Result<(), RegistryError> {
        let detail = match previous {
            Some(previous) => format!("previous={previous}"),
            None => "previous=none".into(),
        };
        self.store
            .apply(
                vec![(format!("plugin/{id}"), Some(json(&state)?))],
                action(actor, what, format!("{id}@{version}"), detail),
            )
            .await?;
        self.plugins.insert(id.to_owned(), state);
        Ok(())
    }
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
