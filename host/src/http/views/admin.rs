//! What the operators' API (`/v1/admin/…`) answers: the views of the
//! deployer's outcomes (an upload, a switch, the plugins with their
//! versions), of keys and of grant ceilings.

use onething_registry::{Ceiling, TrustedKey};
use serde::Serialize;

use crate::deploy::{PluginOverview, Switched, Uploaded, VersionOverview, duration_ms};
use crate::runtime::{LoadedPlugin, Quarantine};

/// What an upload did.
#[derive(Serialize)]
pub struct UploadedView<'a> {
    id: &'a str,
    version: String,
    digest: &'a str,
    department: &'a str,
    signed_by: &'a str,
    created: bool,
    active: bool,
    compile_cache: &'a str,
}

impl<'a> From<&'a Uploaded> for UploadedView<'a> {
    fn from(u: &'a Uploaded) -> Self {
        UploadedView {
            id: &u.record.id,
            version: u.record.version.to_string(),
            digest: &u.record.digest,
            department: &u.record.department,
            signed_by: &u.record.signed_by,
            created: u.created,
            active: u.active,
            compile_cache: &u.compile_cache,
        }
    }
}

/// What an activation, rollback or deactivation did.
#[derive(Serialize)]
pub struct SwitchedView<'a> {
    id: &'a str,
    /// The version active now (none after a deactivation).
    active: Option<String>,
    /// The version active before.
    previous: Option<String>,
    /// Time spent compiling (or reading the cache) before the swap, ms.
    load_ms: u64,
}

impl<'a> From<&'a Switched> for SwitchedView<'a> {
    fn from(s: &'a Switched) -> Self {
        SwitchedView {
            id: &s.id,
            active: s.active.as_ref().map(ToString::to_string),
            previous: s.previous.as_ref().map(ToString::to_string),
            load_ms: duration_ms(s.load),
        }
    }
}

/// One version as operators see it.
#[derive(Serialize)]
pub struct VersionView<'a> {
    version: String,
    active: bool,
    /// Whether it is loaded (compiled and ready).
    loaded: bool,
    open_cases: u64,
    digest: &'a str,
    signed_by: &'a str,
    uploaded_at: String,
    uploaded_by: &'a str,
    component_bytes: u64,
    /// The `onething:scenario` world it was built for (`0.1.0`, `0.2.0`).
    world: &'a str,
    /// How it was loaded: `hit` (from the compile cache) or `compiled`.
    compile_cache: Option<String>,
    /// Why it takes no new cases, if quarantined.
    quarantine: Option<Quarantine>,
    /// Failed calls in a row.
    failures_in_a_row: u32,
}

impl<'a> From<&'a VersionOverview> for VersionView<'a> {
    fn from(v: &'a VersionOverview) -> Self {
        let loaded = v.loaded.as_deref();
        VersionView {
            version: v.record.version.to_string(),
            active: v.active,
            loaded: loaded.is_some(),
            open_cases: v.open_cases,
            digest: &v.record.digest,
            signed_by: &v.record.signed_by,
            uploaded_at: v.record.uploaded_at.to_rfc3339(),
            uploaded_by: &v.record.uploaded_by,
            component_bytes: v.record.component_bytes,
            world: &v.record.world,
            compile_cache: loaded.map(|p| format!("{:?}", p.cache_outcome()).to_lowercase()),
            quarantine: loaded.and_then(LoadedPlugin::quarantine),
            failures_in_a_row: loaded.map_or(0, LoadedPlugin::failures_in_a_row),
        }
    }
}

/// One plugin as operators see it.
#[derive(Serialize)]
pub struct PluginView<'a> {
    id: &'a str,
    department: &'a str,
    /// The active version, if any.
    active_version: Option<String>,
    /// Versions active before, oldest first (rollback goes to the last).
    history: Vec<String>,
    /// Every stored version, lowest first.
    versions: Vec<VersionView<'a>>,
}

impl<'a> From<&'a PluginOverview> for PluginView<'a> {
    fn from(p: &'a PluginOverview) -> Self {
        PluginView {
            id: &p.id,
            department: &p.department,
            active_version: p.state.active.as_ref().map(ToString::to_string),
            history: p.state.history.iter().map(ToString::to_string).collect(),
            versions: p.versions.iter().map(VersionView::from).collect(),
        }
    }
}

/// `GET /v1/admin/plugins`.
#[derive(Serialize)]
pub struct PluginsView<'a> {
    /// Every stored plugin.
    pub plugins: Vec<PluginView<'a>>,
}

/// A removed version.
#[derive(Serialize)]
pub struct RemovedView<'a> {
    /// The plugin.
    pub id: &'a str,
    /// The version removed.
    pub removed: String,
}

/// A reactivated version.
#[derive(Serialize)]
pub struct ReactivatedView<'a> {
    /// The plugin.
    pub id: &'a str,
    /// The active version.
    pub version: &'a str,
    /// Whether it was quarantined.
    pub was_quarantined: bool,
}

/// `GET /v1/admin/keys`.
#[derive(Serialize)]
pub struct KeysView<'a> {
    /// Every key ever trusted.
    pub keys: &'a [TrustedKey],
}

/// A revoked key, and the active versions it signed (they keep running).
#[derive(Serialize)]
pub struct RevokedView<'a> {
    /// The key.
    #[serde(flatten)]
    pub key: &'a TrustedKey,
    /// The active versions it signed, `id@version`.
    pub still_active: &'a [String],
}

/// `GET /v1/admin/grants`.
#[derive(Serialize)]
pub struct GrantsView<'a, C: Serialize> {
    /// Every department's grant ceiling.
    pub grants: &'a C,
}

/// A department's grant ceiling, as set.
#[derive(Serialize)]
pub struct GrantView<'a> {
    /// The department.
    pub department: &'a str,
    /// Its ceiling.
    pub grants: &'a Ceiling,
}

/// What a dataset refresh did: the dataset now holds exactly `records`.
#[derive(Serialize)]
pub struct DatasetReplacedView<'a> {
    /// `DEPARTMENT/NAME`.
    pub dataset: &'a str,
    /// The key field of its records.
    pub key: &'a str,
    /// How many records it holds now.
    pub records: usize,
}
