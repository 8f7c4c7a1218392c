#!/bin/sh
# Runs every heap fuzz target for 30 s (FUZZ_SECONDS to change) with the nightly toolchain, first
# with the default features (and the heap-image reader of `rtos-heap inspect`), then heap_4 with the
# hardening features. Installs cargo-fuzz if
# missing. trace_parser is fuzzed by .ci/cli.sh.
set -eu
cd "$(dirname "$0")/../fuzz"
SECS="${FUZZ_SECONDS:-30}"
# Builds go to fuzz/target (or $CARGO_TARGET_DIR when set).
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
    cargo +nightly install cargo-fuzz --locked
fi
for t in heap1 heap2 heap2_tree heap4 heap4_tree heap5 pool c_abi inspect; do
    echo "== fuzz $t (${SECS}s)"
    cargo +nightly fuzz run -O "$t" -- -max_total_time="$SECS"
done
echo "== fuzz heap4 --features hardened (${SECS}s)"
cargo +nightly fuzz run -O --features hardened heap4 -- -max_total_time="$SECS"
