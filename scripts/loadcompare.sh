#!/usr/bin/env bash
# One bounded load comparison on loopback, all targets in the same run:
# raw hyper hello-world, onething taking trivial (echo) applications,
# onething taking newborn applications (each durable before its 201), and
# `wasmtime serve` with a hello-world wasi:http component when a `wasmtime`
# CLI is on PATH (cargo install wasmtime-cli --version 48.0.8 --locked).
# Installs wrk (Debian) if missing. Extra arguments go to loadcompare:
#   --seconds N (10)  --connections N (64)  --threads N (2)  --max-requests N (2000000)
#   --baseline PATH  (an earlier onething binary: its echo and newborn rounds
#                     run first, and the figures are compared as ratios)
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v wrk >/dev/null 2>&1; then
  echo "installing wrk" >&2
  apt-get update -qq && apt-get install -y -qq wrk
fi
scripts/build-plugins.sh
cargo build --release --locked -p onething-cli -p onething-bench
exec target/release/loadcompare "$@"
