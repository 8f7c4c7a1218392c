#!/usr/bin/env bash
# The microcontroller side (issue 14), on a clean machine. The cross builds (core crate for the
# four embedded targets, C library for the Thumb targets) and the Rust firmware of
# examples/qemu-cortex-m are .ci/mcu-rust.sh's; this script:
#  - installs the four embedded targets and the ARM toolchain when missing;
#  - proves that no panic path is linked: a firmware (Thumb-2) and a host program that reference
#    the FreeRTOS heap functions are linked with --gc-sections against the C library of every
#    scheme, and must contain no panic, bounds-check, unwrap or formatting symbol;
#  - builds the C test firmware (crates/rtos-heap-ffi/tests/mcu: the C tests' workload, newlib,
#    semihosting) against the Thumb-2 library of every scheme and runs it under QEMU;
#  - measures instructions per pvPortMalloc/vPortFree on the Cortex-M3 (QEMU -icount, SysTick) for
#    the `rtos` workload: rtos-heap's library and FreeRTOS's heap_4.c from ../shared, same firmware;
#  - prints the Thumb-2 code size of the heap (every function reachable from the FreeRTOS symbols)
#    per scheme and profile, beside FreeRTOS's own heap_4.c built with arm-none-eabi-gcc -Os from
#    ../shared/reference/freertos into the same program, and fails when heap_4 is above 1.15 x
#    heap_4.c (docs/c-abi.md, "Code size on a Cortex-M3");
#  - proves that the firmware keeps its own memset/memcpy (the recipe's objcopy step).
# Idempotent; run from anywhere: bash .ci/mcu.sh
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$root/target}"
targets=(thumbv6m-none-eabi thumbv7m-none-eabi thumbv7em-none-eabihf riscv32imac-unknown-none-elf)
ref="${RTOS_HEAP_SHARED:-$root/../shared}/reference/freertos"

installed=$(rustup target list --installed)
for t in "${targets[@]}"; do
    grep -qx "$t" <<<"$installed" || rustup target add "$t"
done
if ! command -v arm-none-eabi-gcc >/dev/null 2>&1 || ! command -v gcc >/dev/null 2>&1 \
    || ! command -v qemu-system-arm >/dev/null 2>&1 || ! command -v cmake >/dev/null 2>&1 \
    || ! command -v make >/dev/null 2>&1; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq gcc make cmake gcc-arm-none-eabi libnewlib-arm-none-eabi binutils \
        qemu-system-arm >/dev/null
fi

echo "mcu.sh: the C test firmware (workload + xPortCheckHeap) on a Cortex-M3, every scheme"
for n in 1 2 3 4 5; do
    make -s -C crates/rtos-heap-ffi/tests/mcu SCHEME=$n run 2>&1 \
        | { grep -v -e 'GNU-stack' -e 'NOTE' -e cdylib -e '^$' || true; }
    status=${PIPESTATUS[0]}
    if ((status != 0)); then
        echo "mcu.sh: the heap_$n C test firmware failed ($status)" >&2
        exit 1
    fi
done

echo "mcu.sh: the same firmware built with CMake (the recipe of docs/c-abi.md), heap_4"
cmake_dir="$CARGO_TARGET_DIR/mcu-cmake"
cmake -S crates/rtos-heap-ffi/tests/mcu -B "$cmake_dir" -DRTOS_HEAP_SCHEME=4 \
    -DCMAKE_TOOLCHAIN_FILE="$root/crates/rtos-heap-ffi/tests/mcu/arm-none-eabi.cmake" >/dev/null
cmake --build "$cmake_dir" 2>&1 | { grep -v -e 'GNU-stack' -e 'NOTE' -e '^\[' -e '^$' || true; }
timeout 300 qemu-system-arm -cpu cortex-m3 -machine mps2-an385 -nographic -monitor none \
    -semihosting-config enable=on,target=native -kernel "$cmake_dir/workload.elf"

echo "mcu.sh: instructions per operation on the Cortex-M3 (rtos workload, QEMU -icount shift=0)"
speed="$CARGO_TARGET_DIR/mcu-speed"
mkdir -p "$speed"
cargo run -q -p rtos-heap-workloads --example emit_c -- rtos >"$speed/rtos_workload.h"
mcu_dir=crates/rtos-heap-ffi/tests/mcu
fw_flags=(-mcpu=cortex-m3 -mthumb -ffunction-sections -fdata-sections --specs=rdimon.specs
    -I"$speed" -Wl,--gc-sections -Wl,--undefined=vectors -Wl,--section-start=.vectors=0x0)
run_speed() {
    timeout 300 qemu-system-arm -cpu cortex-m3 -machine mps2-an385 -nographic -monitor none \
        -semihosting-config enable=on,target=native -icount shift=0 -kernel "$1"
}
# speed_firmware NAME LABEL GCC_ARGS...: links startup.c and speed.c with the shared flags and
# GCC_ARGS (optimisation, defines, then the heap: rtos-heap's archive or a C file) into
# $speed/NAME.elf, and runs it, its result printed after "LABEL: ".
speed_firmware() {
    local name=$1 label=$2
    shift 2
    arm-none-eabi-gcc "${fw_flags[@]}" "$mcu_dir/startup.c" "$mcu_dir/speed.c" "$@" \
        -o "$speed/$name.elf" 2>&1 | { grep -v -e 'GNU-stack' -e 'NOTE' || true; }
    printf '%s: ' "$label"
    run_speed "$speed/$name.elf"
}
for profile in ffi-size ffi-release; do
    RTOS_HEAP_TOTAL_HEAP_SIZE=98304 CARGO_TARGET_DIR="$speed/lib" cargo build -q -p rtos-heap-ffi \
        --lib --profile $profile --target thumbv7m-none-eabi --no-default-features --features heap_4 \
        2>&1 | { grep -v -e cdylib -e '^$' || true; }
    # The recipe's objcopy step (docs/c-abi.md): the firmware keeps newlib's memcpy/memset.
    cp "$speed/lib/thumbv7m-none-eabi/$profile/librtos_heap_ffi.a" "$speed/lib.a"
    arm-none-eabi-objcopy -w -L 'mem*' -L '__aeabi_mem*' "$speed/lib.a"
    speed_firmware rust "rtos-heap heap_4, profile $profile" -O2 "$speed/lib.a"
done
if [[ -f "$ref/heap_4.c" ]]; then
    # FreeRTOS.h of the reference, and a task.h whose scheduler calls are functions, as in a
    # firmware (the size section below uses them too).
    mkdir -p "$speed/inc"
    cp "$ref/inc/FreeRTOS.h" "$speed/inc/"
    printf '%s\n' '#ifndef INC_TASK_H' '#define INC_TASK_H' 'void vTaskSuspendAll(void);' \
        'BaseType_t xTaskResumeAll(void);' '#define taskENTER_CRITICAL()' \
        '#define taskEXIT_CRITICAL()' '#endif' >"$speed/inc/task.h"
    for asserts in off on; do
        flag=""
        [[ $asserts == off ]] && flag=-DORACLE_NO_ASSERTS
        speed_firmware c "FreeRTOS heap_4.c -Os, asserts $asserts" -Os -DC_HEAP $flag \
            -DconfigTOTAL_HEAP_SIZE=98304 -I"$speed/inc" -I"$ref" "$ref/heap_4.c"
    done
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# A program that keeps every FreeRTOS heap function of the scheme reachable (and nothing else),
# with the application hooks of FreeRTOS's stub config (malloc-failed hook, assert handler).
fns_common="pvPortMalloc vPortFree vPortHeapResetState"
fns_1="$fns_common xPortGetFreeHeapSize vPortInitialiseBlocks"
fns_2="$fns_1 pvPortCalloc"
fns_4="$fns_2 xPortGetMinimumEverFreeHeapSize xPortResetHeapMinimumEverFreeHeapSize vPortGetHeapStats"
fns_5="$fns_common pvPortCalloc xPortGetFreeHeapSize xPortGetMinimumEverFreeHeapSize xPortResetHeapMinimumEverFreeHeapSize vPortGetHeapStats vPortDefineHeapRegions"
program() {
    local fns=$1 out=$2
    {
        echo '/* Keeps the FreeRTOS heap functions reachable, as a firmware that uses them does. */'
        for f in $fns; do echo "void $f(void);"; done
        echo 'void *volatile keep[] = {'
        for f in $fns; do echo "    (void *)$f,"; done
        echo '};'
        echo 'int main(void) { return keep[0] != 0; }'
        echo 'void vTaskSuspendAll(void) {}'
        echo 'long xTaskResumeAll(void) { return 0; }'
        echo 'void vApplicationMallocFailedHook(void) {}'
        echo 'void oracle_assert(const char *f, int l, const char *x) { (void)f; (void)l; (void)x; for (;;) {} }'
        echo 'unsigned long oracle_asserts;'
        # The hooks of the options (dropped by --gc-sections when the build does not call them).
        echo 'void vApplicationGetRandomHeapCanary(unsigned long *c) { *c = 0x5a5a5a5aUL; }'
        echo 'void vAssertCalled(const char *f, unsigned long l) { (void)f; (void)l; }'
        echo 'unsigned char _critical_section_1_0_acquire(void) { return 0; }'
        echo 'void _critical_section_1_0_release(unsigned char s) { (void)s; }'
    } >"$out"
}
panic_syms='panic|slice_index|unwrap_failed|expect_failed|bounds_check|core::fmt|gimli|addr2line|backtrace'
thumb_link=(arm-none-eabi-gcc -mcpu=cortex-m3 -mthumb -Os -ffunction-sections -fdata-sections
    -Wl,--gc-sections --specs=nosys.specs -Wno-builtin-declaration-mismatch)

# Links the keep-program of scheme $1 against the Thumb-2 archive of profile $2 (with the extra
# features $3, if any; objcopy'd as the
# recipes of docs/c-abi.md do), proves no panic path and the firmware's own memset/memcpy, and
# prints the heap's bytes of code and of RAM (the library's statics without the heap array).
thumb_size() {
    local n=$1 profile=$2 extra=${3:+,$3} fns_var="fns_$1"
    RTOS_HEAP_TOTAL_HEAP_SIZE=16384 cargo build -q -p rtos-heap-ffi --lib --profile "$profile" \
        --no-default-features --features "heap_$n,malloc-failed-hook$extra" --target thumbv7m-none-eabi \
        2>&1 | { grep -v -e cdylib -e '^$' || true; }
    cp "$CARGO_TARGET_DIR/thumbv7m-none-eabi/$profile/librtos_heap_ffi.a" "$work/lib.a"
    arm-none-eabi-objcopy -w -L 'mem*' -L '__aeabi_mem*' "$work/lib.a"
    program "${!fns_var}" "$work/main$n.c"
    "${thumb_link[@]}" -Wl,-Map="$work/fw.map" "$work/main$n.c" "$work/lib.a" -o "$work/fw.elf" 2>&1 \
        | { grep -v 'GNU-stack\|NOTE\|^$' || true; }
    if arm-none-eabi-nm -C "$work/fw.elf" | grep -iE "$panic_syms" >&2; then
        echo "mcu.sh: heap_$n, $profile (Thumb-2) links a panic path (above)" >&2
        exit 1
    fi
    if grep -A1 -E '^ \.text\.(memset|memcpy) ' "$work/fw.map" | grep -q 'librtos_heap_ffi\|lib\.a('; then
        echo "mcu.sh: heap_$n, $profile: memset/memcpy come from the archive, not the firmware" >&2
        exit 1
    fi
    printf '%s %s\n' "$(python3 "$root/.ci/heap_text.py" "$work/fw.elf" arm-none-eabi-nm)" \
        "$(python3 "$root/.ci/heap_text.py" "$work/fw.elf" arm-none-eabi-nm --ram)"
}

echo "mcu.sh: no panic path (firmware linked with --gc-sections, host and Thumb-2), code size"
printf '| scheme | Thumb-2, profile `ffi-size` (bytes) | Thumb-2, profile `ffi-release` | library RAM (bytes) | x86-64 host program `.text` |\n|---|---:|---:|---:|---:|\n' >"$work/table"
for n in 1 2 4 5; do
    read -r size ram < <(thumb_size $n ffi-size)
    read -r fast _ < <(thumb_size $n ffi-release)
    [[ $n == 4 ]] && heap4=$size
    # Host (x86-64), the release profile of the C library.
    fns_var="fns_$n"
    program "${!fns_var}" "$work/host$n.c"
    RTOS_HEAP_TOTAL_HEAP_SIZE=16384 cargo build -q -p rtos-heap-ffi --lib --profile ffi-release \
        --no-default-features --features "heap_$n"
    gcc -O2 -ffunction-sections -Wl,--gc-sections -Wno-builtin-declaration-mismatch \
        "$work/host$n.c" "$CARGO_TARGET_DIR/ffi-release/librtos_heap_ffi.a" \
        -o "$work/host$n" -lpthread -ldl -lm
    if nm -C "$work/host$n" | grep -iE "$panic_syms"; then
        echo "mcu.sh: heap_$n (host) links a panic path (above)" >&2
        exit 1
    fi
    host=$(size -A "$work/host$n" | awk '$1 == ".text" { print $2 }')
    printf '| heap_%s | %s | %s | %s | %s |\n' "$n" "$size" "$fast" "$ram" "$host" >>"$work/table"
done
cat "$work/table"

echo "mcu.sh: per option (Thumb-2, profile ffi-size; no panic path in any)"
printf '| scheme | option | heap code (bytes) | library RAM (bytes) |\n|---|---|---:|---:|\n'
for so in 4:critical-section 4:tree-index 4:heap-protector 4:clear-on-free 4:assert-hook \
    4:validate-cheap 4:validate-full 4:poison 2:validate-cheap 5:tree-index 5:heap-protector \
    5:validate-cheap; do
    n=${so%%:*} opt=${so#*:}
    read -r size ram < <(thumb_size "$n" ffi-size "$opt")
    printf '| heap_%s | `%s` | %s | %s |\n' "$n" "$opt" "$size" "$ram"
done

echo "mcu.sh: FreeRTOS's heap_4.c, arm-none-eabi-gcc -Os -mcpu=cortex-m3 (../shared/reference/freertos), same program"
if [[ -f "$ref/heap_4.c" ]]; then
    program "$fns_4" "$work/mainc.c"
    echo 'unsigned char ucHeap[16384];' >>"$work/mainc.c"
    for asserts in off on; do
        flag=""
        [[ $asserts == off ]] && flag=-DORACLE_NO_ASSERTS
        "${thumb_link[@]}" $flag -DconfigTOTAL_HEAP_SIZE=16384 -I"$speed/inc" -I"$ref" \
            "$work/mainc.c" "$ref/heap_4.c" -o "$work/c.elf" 2>&1 | { grep -v 'GNU-stack\|NOTE\|^$' || true; }
        c=$(python3 "$root/.ci/heap_text.py" "$work/c.elf" arm-none-eabi-nm)
        c_ram=$(arm-none-eabi-nm -S "$work/c.elf" | python3 -c 'import re, sys
print(sum(int(f[1], 16) for f in (l.split() for l in sys.stdin)
          if len(f) == 4 and f[2] in "bBdD"
          and re.fullmatch(r"xStart|pxEnd|x\w*(Remaining|Allocations|Frees)", f[3])))')
        printf 'heap_4.c (configASSERT %s): %s bytes of heap code, %s bytes of statics\n' "$asserts" "$c" "$c_ram"
        [[ $asserts == on ]] && c_on=$c
    done
    # The goal of issue 14: heap_4 within 1.15 x heap_4.c (-Os, configASSERT on as in FreeRTOS's
    # demos), the same keep-program and count for both.
    ratio=$(awk -v a="$heap4" -v b="$c_on" 'BEGIN { printf "%.3f", a / b }')
    echo "mcu.sh: heap_4 code ${heap4} B = ${ratio} x heap_4.c (${c_on} B); goal <= 1.15"
    if ((heap4 * 100 > c_on * 115)); then
        echo "mcu.sh: the size goal (<= 1.15 x heap_4.c) is missed" >&2
        exit 1
    fi
elif [[ -n "${RTOS_HEAP_REQUIRE_SHARED:-}" ]]; then
    echo "mcu.sh: $ref missing" >&2
    exit 1
fi
echo "mcu.sh: ok"
