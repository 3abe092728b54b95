#!/usr/bin/env bash
# Runs every test: installs what the tests need (the wasm32-wasip2 target),
# builds the plugins and test fixtures, then runs the whole workspace's
# tests (unit tests and the end-to-end tests against the real host), then
# the fuzz targets for a bounded time (scripts/fuzz.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build-plugins.sh
cargo test --workspace --locked "$@"
# Then every cargo-fuzz target for FUZZ_SECONDS each (default 60; 0 skips).
if [ "${FUZZ_SECONDS:-60}" != 0 ]; then
    scripts/fuzz.sh "${FUZZ_SECONDS:-60}"
fi
