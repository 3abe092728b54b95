//! End-to-end tests of the `onething` binary: the real binary as an
//! operator and a department run it (import, serve, sign, deploy, verify the
//! audit log, survive kill -9), against the real compiled plugins.
//! One test binary (wasmtime's layout) keeps link time down.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

/// The host's test harness and the registry's test host, shared with
/// `host/tests/all`; these tests use a part of them.
#[allow(dead_code)]
#[path = "../../../tests/all/admin_host.rs"]
mod admin_host;
#[allow(dead_code)]
#[path = "../../../tests/all/support.rs"]
mod support;

mod audit;
mod cli;
mod crash;
mod data;
mod ops;
mod places;
mod tokens;
