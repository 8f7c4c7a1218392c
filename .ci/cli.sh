#!/usr/bin/env bash
# Checks of the rtos-heap command-line tool that need more than `cargo test`:
#   1. the HTML report opened in headless Chromium (Debian's `chromium`, installed if missing);
#   2. 30 s of fuzzing the trace parser (cargo-fuzz on nightly, installed if missing).
# Idempotent; called by .ci/run. `.ci/cli.sh --update-screenshot` also rewrites
# docs/report-screenshot.png (needs ../shared/traces).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

if ! command -v chromium >/dev/null 2>&1; then
    echo "cli.sh: installing chromium"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi
chromium --version

# 1. The report in headless Chromium (the test fails instead of skipping now that it is installed).
RTOS_HEAP_REQUIRE_CHROMIUM=1 cargo test --release -p rtos-heap-cli --test report

if [[ "${1:-}" == "--update-screenshot" ]]; then
    cargo build --release -p rtos-heap-cli
    bin="${CARGO_TARGET_DIR:-$root/target}/release/rtos-heap"
    shared="${RTOS_HEAP_SHARED:-$root/../shared}"
    tmp=$(mktemp -d)
    (cd "$shared/traces" && "$bin" replay churn_60s.trace.txt --target x86-64 --scheme heap4 \
        --report "$tmp/report.html" >/dev/null)
    chromium --headless --no-sandbox --disable-gpu --hide-scrollbars --window-size=1040,800 \
        --screenshot="$root/docs/report-screenshot.png" "file://$tmp/report.html" 2>/dev/null
    rm -rf "$tmp"
    echo "cli.sh: docs/report-screenshot.png updated"
fi

# 2. Fuzz the trace parser.
if ! rustup toolchain list | grep -q '^nightly'; then
    echo "cli.sh: the nightly toolchain is needed for cargo-fuzz" >&2
    exit 1
fi
if ! cargo fuzz --help >/dev/null 2>&1; then
    echo "cli.sh: installing cargo-fuzz"
    cargo install cargo-fuzz
fi
(
    cd fuzz
    # Its own target directory: the fuzz build uses nightly and sanitizer flags.
    unset CARGO_TARGET_DIR
    mkdir -p corpus/trace_parser
    cargo +nightly fuzz run trace_parser corpus/trace_parser seeds/trace_parser -- -max_total_time=30
)
echo "cli.sh: ok"
