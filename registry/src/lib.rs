//! The plugin registry of onething: what a plugin package is, who may sign
//! one, and which versions are stored and active.
//!
//! - [`manifest`]: `onething.toml`, what a plugin is, may touch and may use.
//! - [`package`]: the package file (manifest + component + signature).
//! - [`keys`]: department ed25519 keys and their files.
//! - [`world`]: whether a component fits the `onething:scenario` world.
//! - [`registry`]: trusted keys, grant ceilings, versions in a
//!   content-addressed store, activation and rollback, and the checks that
//!   refuse a package.
//!
//! This crate knows nothing of HTTP or of wasmtime instances: it parses,
//! checks and keeps records, behind the [`RegistryStore`] trait that the
//! host implements on its own storage.

#![deny(missing_docs)]

pub mod keys;
pub mod manifest;
pub mod package;
pub mod registry;
pub mod world;

pub use keys::{PublicKeyFile, SigningKeyFile};
pub use manifest::{ApplicantRole, Grants, Limits, Manifest, ManifestError, is_name};
pub use package::{Package, PackageError};
pub use registry::{
    AdminAction, Ceiling, MemoryStore, PluginState, Published, Registry, RegistryError,
    RegistryStore, StoreError, TrustedKey, Verified, VersionRecord,
};
