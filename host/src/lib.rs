//! The onething host: runs department scenario plugins (WebAssembly
//! components) for "one thing, done once" government services.
//!
//! A citizen's request flows one way through the rooms of this crate:
//! [`http`] (the JSON API) → [`service`] (cases, items, ordering, atomic
//! commits) → [`runtime`] (a fresh sandboxed instance per call, with the
//! host side of the WIT interfaces `data`, `dispatch` and `log`) → [`storage`]
//! (the seam behind which sled keeps everything). [`server`] wires them
//! together, and [`overdue`] runs the deadline loop; the `onething` binary
//! (the `onething-cli` crate, `host/cli/`) parses the command line.
//!
//! The cargo feature `server` (on by default) brings the HTTP server side:
//! [`http`], [`server`] and [`connections`], with hyper. Without it
//! (`default-features = false`, what the test kit uses) the crate is the
//! runtime, the service layer and storage.

#![deny(missing_docs)]

pub mod audit;
pub mod calendar;
pub mod config;
#[cfg(feature = "server")]
pub mod connections;
pub mod datasets;
pub mod deploy;
#[cfg(feature = "server")]
pub mod http;
pub mod identity;
pub mod limits;
pub mod locks;
pub mod metrics;
pub mod model;
pub mod ops;
pub mod overdue;
pub mod places;
pub mod plugins;
pub mod runtime;
#[cfg(feature = "server")]
pub mod server;
pub mod service;
pub mod storage;
