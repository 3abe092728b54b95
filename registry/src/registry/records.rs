//! The records the registry keeps: trusted keys, grant ceilings, versions
//! and each plugin's state, and what a verification or publication returns.

use super::*;

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
