#!/usr/bin/env bash
# Runs every cargo-fuzz target (fuzz/fuzz_targets) for a bounded time each:
#   scripts/fuzz.sh [SECONDS] [TARGET...]     (default 60 s, every target)
# Installs cargo-fuzz if it is missing. cargo-fuzz asks for nightly-only
# flags (sanitizers, coverage instrumentation); the stable toolchain takes
# them with RUSTC_BOOTSTRAP=1, set here for the fuzz build only.
# Each target starts from its checked-in seeds (fuzz/seeds/TARGET) and the
# corpus earlier runs grew (fuzz/corpus/TARGET, not checked in). A crash
# fails the run and leaves the input in fuzz/artifacts/TARGET/.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-60}"
shift || true
if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --version 0.13.2 --locked
fi
export RUSTC_BOOTSTRAP=1
cd fuzz
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    mapfile -t targets < <(cargo fuzz list)
fi
cargo fuzz build
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
for target in "${targets[@]}"; do
    mkdir -p "corpus/$target" "seeds/$target"
    echo "fuzzing $target for ${seconds}s"
    if ! cargo fuzz run "$target" "corpus/$target" "seeds/$target" -- \
        -max_total_time="$seconds" -timeout=10 -print_final_stats=1 >"$log" 2>&1; then
        tail -n 60 "$log"
        echo "fuzz target $target failed: the input is in fuzz/artifacts/$target/" >&2
        exit 1
    fi
    grep -E '^(Done|stat::number_of_executed_runs|stat::peak_rss_mb)' "$log" || true
done
