#!/usr/bin/env bash
# The Rust side of the microcontroller work (issue 14), on a clean Debian machine (as root):
#  - installs the four embedded targets and qemu-system-arm when missing;
#  - builds the core crate for thumbv6m (Armv6-M: no compare-and-swap atomics, so critical-section
#    only), thumbv7m, thumbv7em and riscv32imac, with every feature set that changes code;
#  - builds the C library (crates/rtos-heap-ffi, profile ffi-size) for the four targets, every
#    scheme: heap_1 … heap_5, heap_4 with critical-section and with tree-index. heap_3 on bare
#    metal calls the firmware's own C library (`malloc`/`free`: newlib, picolibc …); the archive
#    builds without one and the C firmware of .ci/mcu.sh links it with newlib;
#  - examples/qemu-cortex-m: rustfmt and clippy (-D warnings), then the firmware built for
#    thumbv7m and for thumbv6m, each run on a Cortex-M3 (QEMU mps2-an385) with a timeout: the
#    global allocator, heap_5 over two regions, a pool, and every 32-bit conformance vector of
#    the C original (../shared/vectors) replayed at real target addresses; every output line
#    must equal the C original's (compare.py), and every run must be there;
#  - prints a summary: vector runs, operations and lines checked on the target, firmware size.
# Fails loudly when ../shared (or $RTOS_HEAP_SHARED) is missing. Idempotent; run from anywhere:
#   bash .ci/mcu-rust.sh
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$root/target}"
shared="${RTOS_HEAP_SHARED:-$root/../shared}"
targets=(thumbv6m-none-eabi thumbv7m-none-eabi thumbv7em-none-eabihf riscv32imac-unknown-none-elf)

if [[ ! -d "$shared/vectors/traces" ]]; then
    echo "mcu-rust.sh: $shared/vectors/traces is missing: the C original's conformance vectors" \
        "are needed (put the shared data beside the repository or set RTOS_HEAP_SHARED)" >&2
    exit 1
fi
shared=$(cd "$shared" && pwd)
export RTOS_HEAP_SHARED="$shared"

installed=$(rustup target list --installed)
for t in "${targets[@]}"; do
    grep -qx "$t" <<<"$installed" || rustup target add "$t"
done
if ! command -v qemu-system-arm >/dev/null 2>&1 || ! command -v python3 >/dev/null 2>&1 \
    || ! command -v size >/dev/null 2>&1; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq qemu-system-arm python3 binutils >/dev/null
fi

# cargo's note that a staticlib/rlib crate cannot also be a cdylib on bare metal, and blank lines.
quiet() { { grep -v -e 'cdylib' -e '^$' || true; }; }

echo "mcu-rust.sh: core crate for ${targets[*]}"
core_sets=("" heap-protector validate-cheap "validate-full,poison" small "defmt,serde"
    "heap-protector,validate-full,poison,small")
core_builds=0
for t in "${targets[@]}"; do
    for f in "${core_sets[@]}"; do
        cargo build -q -p rtos-heap --no-default-features ${f:+--features "$f"} --target "$t"
        core_builds=$((core_builds + 1))
    done
done

echo "mcu-rust.sh: C library for ${targets[*]}"
ffi_sets=(heap_1 heap_2 heap_3 heap_4 heap_5 "heap_4,critical-section" "heap_4,tree-index")
ffi_builds=0
for t in "${targets[@]}"; do
    for f in "${ffi_sets[@]}"; do
        RTOS_HEAP_TOTAL_HEAP_SIZE=16384 cargo build -q -p rtos-heap-ffi --lib --profile ffi-size \
            --no-default-features --features "$f" --target "$t" 2>&1 | quiet
        ffi_builds=$((ffi_builds + 1))
    done
done

echo "mcu-rust.sh: examples/qemu-cortex-m (rustfmt, clippy, the firmware under qemu-system-arm)"
cd examples/qemu-cortex-m
export CARGO_TARGET_DIR="$CARGO_TARGET_DIR/qemu-cortex-m"
cargo fmt --check
summary=()
for t in thumbv7m-none-eabi thumbv6m-none-eabi; do
    cargo clippy -q --locked --target "$t" -- -D warnings
    cargo build -q --locked --release --target "$t"
    fw="$CARGO_TARGET_DIR/$t/release/rtos-heap-qemu-cortex-m"
    out="$CARGO_TARGET_DIR/$t/qemu.out"
    status=0
    timeout 900 qemu-system-arm -cpu cortex-m3 -machine mps2-an385 -nographic -monitor none \
        -semihosting-config enable=on,target=native -kernel "$fw" >"$out" || status=$?
    if ((status != 0)); then
        tail -n 5 "$out" >&2
        echo "mcu-rust.sh: the $t firmware exited with status $status" >&2
        exit 1
    fi
    result=$(python3 compare.py "$shared" "$out") || {
        echo "$result" | head -n 20 >&2
        echo "mcu-rust.sh: the $t firmware's output differs from the C original's" >&2
        exit 1
    }
    echo "$t: $result"
    # .text (code), .rodata (the embedded traces, mostly), RAM (.data + .bss: the heaps' arrays).
    sizes=$(size -A "$fw" | awk '$1 == ".text" { t = $2 } $1 == ".rodata" { r = $2 }
        $1 == ".data" || $1 == ".bss" { m += $2 } END { printf "%d %d %d", t, r, m }')
    read -r text rodata ram <<<"$sizes"
    checked=$(sed -e 's/^compare.py: //' -e 's/: every one.*//' <<<"$result")
    summary+=("$t: $checked; firmware $text bytes of code + $rodata bytes of read-only data (the traces), $ram bytes of RAM")
done

echo "mcu-rust.sh: summary"
echo "  core crate: $core_builds builds (${#targets[@]} targets x ${#core_sets[@]} feature sets)"
echo "  C library: $ffi_builds builds (${#targets[@]} targets x ${#ffi_sets[@]} scheme/option sets)"
for s in "${summary[@]}"; do
    echo "  on a Cortex-M3 under QEMU, $s: every line as the C original's"
done
echo "mcu-rust.sh: ok"
