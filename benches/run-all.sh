#!/usr/bin/env bash
# The one command that regenerates every benchmark figure, table and chart:
#   results/*.json (machine-readable), the tables of docs/BENCHMARKS.md, docs/ladder*.svg.
# Needs valgrind (callgrind_annotate comes with it) and binutils (nm, objdump).
# Takes about 10 minutes on a 2-core machine; callgrind counts do not depend on the load,
# timings (criterion, cycle-counter latencies) do.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
target="${CARGO_TARGET_DIR:-$root/target}"
export CARGO_TARGET_DIR="$target"

for tool in valgrind callgrind_annotate nm objdump; do
    command -v "$tool" >/dev/null || { echo "run-all.sh: $tool is required" >&2; exit 1; }
done

cargo build --release -p rtos-heap-bench --bins
driver="$target/release/bench-driver"

"$driver" machine                 # results/machine.json
"$driver" callgrind               # results/instructions.json (headline + ladder)
"$driver" outcomes                # results/outcomes.json (failed allocations, peak live bytes)
"$driver" efficiency              # results/efficiency.json (50 seeds)
"$driver" index-work              # results/index_work.json (what heap_4's free-block index does)
"$driver" memory                  # results/memory.json (footprint, minimum block, fixed costs)
"$driver" codesize                # results/codesize.json (allocate + free path bytes)
"$driver" latency                 # results/latency.json (cycle counter percentiles)
cargo bench -p rtos-heap-bench --bench workloads -- --noplot
"$driver" criterion-collect --dir "$target/criterion"   # results/cpu_time.json
"$driver" report                  # docs/BENCHMARKS.md tables, docs/ladder.svg, docs/ladder-worst.svg
rm -rf results/tmp
echo "run-all.sh: results/ and docs/BENCHMARKS.md regenerated"
