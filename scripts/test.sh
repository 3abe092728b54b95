#!/usr/bin/env bash
# Runs every test: installs what the tests need (the wasm32-wasip2 target),
# builds the plugins and test fixtures, then runs the whole workspace's
# tests (unit tests and the end-to-end tests against the real host).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build-plugins.sh
cargo test --workspace --locked "$@"
