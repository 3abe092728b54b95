//! The onething host: runs department scenario plugins (WebAssembly
//! components) for "one thing, done once" government services.
//!
//! A citizen's request flows one way through the rooms of this crate:
//! [`http`] (the JSON API) → [`service`] (cases, items, ordering, atomic
//! commits) → [`runtime`] (a fresh sandboxed instance per call, with the
//! host side of the WIT interfaces `data`, `dispatch` and `log`) → [`storage`]
//! (the seam behind which sled keeps everything). [`server`] wires them
//! together, and [`overdue`] runs the deadline loop; the `onething` binary
//! only parses the command line.

#![deny(missing_docs)]

pub mod audit;
pub mod calendar;
pub mod config;
pub mod connections;
pub mod datasets;
pub mod deploy;
pub mod http;
pub mod identity;
pub mod limits;
pub mod locks;
pub mod metrics;
pub mod model;
pub mod overdue;
pub mod plugins;
pub mod runtime;
pub mod server;
pub mod service;
pub mod storage;
