//! The plugin package format of onething.
//!
//! A plugin package is a WebAssembly component plus a manifest,
//! `onething.toml`, that says what the plugin is (id, version, owning
//! department), what it may touch (its grants: datasets it may read,
//! departments it may dispatch to) and how it is limited (memory, deadline).
//!
//! This crate knows nothing of HTTP or of wasmtime instances: it parses and
//! checks. Signing, versions and the content-addressed store come with the
//! registry work and will live here too.

#![deny(missing_docs)]

mod manifest;

pub use manifest::{Grants, Limits, Manifest, ManifestError, is_name};
