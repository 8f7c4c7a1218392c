#!/bin/sh
# Differential test against the unmodified C heaps of ../shared/reference/freertos (built by the
# test with gcc, 32- and 64-bit): 1,000,000 seeded random operations per configuration (heap_2,
# heap_4, heap_5 x 32/64-bit x list/tree index), release build. Installs gcc-multilib when missing.
set -eu
cd "$(dirname "$0")/.."
if ! echo 'int main(void){return 0;}' | gcc -m32 -x c - -o /tmp/rtos-heap-m32-check 2>/dev/null; then
    apt-get install -y gcc-multilib
fi
rm -f /tmp/rtos-heap-m32-check
RTOS_HEAP_REQUIRE_SHARED=1 RTOS_HEAP_ORACLE_OPS=1000000 \
    cargo test --release -p rtos-heap --test conformance c_oracle_random_traces -- --nocapture
