#!/usr/bin/env bash
# Extra checks of the C ABI crate (crates/rtos-heap-ffi), beyond `cargo test --workspace`:
#  - installs valgrind (and gcc) when missing, then re-runs the C tests with
#    RTOS_HEAP_REQUIRE_VALGRIND=1 (the memcheck runs may not be skipped) and
#    RTOS_HEAP_REQUIRE_SHARED=1 (the replay of ../shared/vectors through the C ABI may not be skipped);
#  - clippy of every scheme and option feature (the workspace run sees only the default build);
#  - prints the size report of docs/c-abi.md (.text of the heap code of each scheme's static library).
# Idempotent; run from anywhere: bash .ci/ffi.sh
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v valgrind >/dev/null 2>&1 || need+=(valgrind)
command -v gcc >/dev/null 2>&1 || need+=(gcc)
command -v size >/dev/null 2>&1 || need+=(binutils)
if ((${#need[@]})); then
    echo "ffi.sh: installing ${need[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${need[@]}" >/dev/null
fi

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
export RTOS_HEAP_REQUIRE_VALGRIND=1 RTOS_HEAP_REQUIRE_SHARED=1

echo "ffi.sh: C tests (gcc + valgrind memcheck), vector replay through the C ABI, header"
cargo test -p rtos-heap-ffi --test c_abi --test vectors --test header --test default_build

echo "ffi.sh: clippy of every scheme and option"
for features in heap_1 heap_2 heap_3 heap_5 \
    "heap_4,critical-section" "heap_4,small" \
    "heap_4,malloc-failed-hook,assert-hook,clear-on-free,heap-protector,application-allocated-heap" \
    "heap_5,malloc-failed-hook,assert-hook,clear-on-free,heap-protector" \
    "heap_2,malloc-failed-hook,assert-hook,clear-on-free,application-allocated-heap"; do
    cargo clippy -q -p rtos-heap-ffi --no-deps --lib --no-default-features --features "$features" -- -D warnings
done

echo "ffi.sh: size report (.text bytes of the rtos-heap objects in librtos_heap_ffi.a, x86-64, ffi-release)"
size_dir="$CARGO_TARGET_DIR/ffi-size"
printf '| scheme | .text of the heap code (bytes) | exported functions |\n|---|---|---|\n'
for n in 1 2 3 4 5; do
    RTOS_HEAP_TOTAL_HEAP_SIZE=65536 cargo build -q -p rtos-heap-ffi --lib --profile ffi-release \
        --no-default-features --features "heap_$n" --target-dir "$size_dir"
    lib="$size_dir/ffi-release/librtos_heap_ffi.a"
    members=$(ar t "$lib" | grep -E '^rtos_heap' || true)
    tmp=$(mktemp -d)
    (cd "$tmp" && ar x "$lib" $members)
    text=$(cd "$tmp" && size -A $members | awk '$1 ~ /^\.text/ { s += $2 } END { print s + 0 }')
    exports=$(nm -g --defined-only "$lib" 2>/dev/null | awk '$2 == "T" && $3 ~ /^(pv|v|x|ux)(Port|Pool)/ { print $3 }' | sort -u | wc -l)
    rm -rf "$tmp"
    printf '| heap_%s | %s | %s |\n' "$n" "$text" "$exports"
done
echo "ffi.sh: ok"
