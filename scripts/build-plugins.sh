#!/usr/bin/env bash
# Builds every plugin (plugins/<name>) and test fixture (plugins/fixtures/<name>)
# as a WebAssembly component for wasm32-wasip2, and lays them out for the host:
#   dist/plugins/<dir>/{onething.toml,plugin.wasm}    the example scenarios
#   dist/fixtures/<dir>/{onething.toml,plugin.wasm}   the test fixtures
# (<dir> is the crate's directory name: the plugin id, except for fixtures
# that build two versions of one id, like versioned-v1 and versioned-v2)
#   dist/bench/hello-http.wasm                       the wasi:http peer for loadcompare
# Installs the wasm32-wasip2 target with rustup when it is missing.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

if ! rustup target list --installed | grep -qx wasm32-wasip2; then
  echo "installing the wasm32-wasip2 target" >&2
  rustup target add wasm32-wasip2
fi

cargo build --release --locked --target wasm32-wasip2 --manifest-path plugins/Cargo.toml

out="plugins/target/wasm32-wasip2/release"
place() { # place SOURCE_DIR DEST_ROOT
  local src="$1" dest_root="$2"
  local crate id wasm dest
  crate="$(sed -n 's/^name = "\(.*\)"/\1/p' "$src/Cargo.toml" | head -n 1)"
  id="$(basename "$src")"
  wasm="$out/${crate//-/_}.wasm"
  dest="$dest_root/$id"
  mkdir -p "$dest"
  # Copy only what changed, so timestamps stay stable.
  cmp -s "$wasm" "$dest/plugin.wasm" || cp "$wasm" "$dest/plugin.wasm"
  cmp -s "$src/onething.toml" "$dest/onething.toml" || cp "$src/onething.toml" "$dest/onething.toml"
  echo "built $id ($(wc -c < "$dest/plugin.wasm") bytes) -> $dest" >&2
}

for dir in plugins/*/; do
  [ -f "$dir/onething.toml" ] && place "${dir%/}" dist/plugins
done
for dir in plugins/fixtures/*/; do
  [ -f "$dir/onething.toml" ] && place "${dir%/}" dist/fixtures
done
mkdir -p dist/bench
cmp -s "$out/onething_peer_hello_http.wasm" dist/bench/hello-http.wasm \
  || cp "$out/onething_peer_hello_http.wasm" dist/bench/hello-http.wasm
