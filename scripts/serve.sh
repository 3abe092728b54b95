#!/usr/bin/env bash
# Builds everything (the example plugins for wasm32-wasip2, then the host in
# release mode) and runs `onething serve` on 127.0.0.1:8080 with the demo
# datasets and the example plugins. Extra arguments go to `onething serve`,
# e.g. scripts/serve.sh --data-dir /tmp/onething-data
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build-plugins.sh
cargo build --release -p onething-cli
exec target/release/onething serve "$@"
