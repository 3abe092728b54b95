//! End-to-end tests: the real host over HTTP on loopback, with the real
//! compiled plugins, real wasmtime and real sled in a temporary directory.
//! One test binary (wasmtime's layout) keeps link time down.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod admin_host;
mod support;

mod bounds;
mod bounds_property;
mod compile_cache;
mod connections;
mod datasets;
mod deadlines;
mod describe;
mod ebike;
mod escalation;
mod fuzz_http;
mod hostile;
mod http_errors;
mod idempotency;
mod identity;
mod mandates;
mod metrics;
mod newborn;
mod newborn_places;
mod officers;
mod ops_stream;
mod overdue;
mod overview;
mod places;
mod queue;
mod registry;
mod registry_guards;
mod report_step;
mod routing;
mod startup;
mod task_lists;
mod transfer;
mod whistle;
mod world_0_1;
