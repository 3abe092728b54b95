//! Why the registry refused or failed, each with its stable code.

use super::*;

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
