/*
 * test_heap3.c - a heap_3 build: the C library's malloc behind the FreeRTOS API. Only the functions
 * FreeRTOS's heap_3 has are declared (RTOS_HEAP_3): no xPortGetFreeHeapSize, calloc or stats.
 * Library features: heap_3, malloc-failed-hook, assert-hook. Argument "valgrind": skip the double
 * free (detecting it reads the freed block's tag, which memcheck rightly reports).
 */
#include "harness.h"

int main(int argc, char **argv) {
    int under_valgrind = argc > 1 && strcmp(argv[1], "valgrind") == 0;
    kernel_init();
    uint8_t *p[64];
    for (int i = 0; i < 64; i++) {
        p[i] = pvPortMalloc((size_t)(i * 37 + 1));
        CHECK(p[i] != NULL);
        memset(p[i], i, (size_t)(i * 37 + 1));
    }
    for (int i = 0; i < 64; i += 2) {
        CHECK(all_bytes(p[i], i, (size_t)(i * 37 + 1)));
        vPortFree(p[i]);
    }
    HeapStatsEx_t x = stats_ex();
    CHECK_EQ(x.xNumberOfSuccessfulAllocations, 64);
    CHECK_EQ(x.xNumberOfSuccessfulFrees, 32);
    CHECK(pvPortMalloc(0) == NULL); /* rtos-heap: NULL and the hook (libc may return a pointer) */
    CHECK(pvPortMalloc(SIZE_MAX) == NULL);
    CHECK_EQ(malloc_failed_calls, 2);
    vPortFree(NULL);
    CHECK_EQ(assert_calls, 0);
    static uint64_t foreign[8] __attribute__((aligned(16)));
    vPortFree(&foreign[4]);
    CHECK_EQ(assert_calls, 1);
    CHECK_EQ(last_assert_line, heapFAULT_NOT_A_BLOCK);
    if (!under_valgrind) {
        uint8_t *q = pvPortMalloc(64);
        vPortFree(q);
        vPortFree(q);
        /* Refused either way: DOUBLE_FREE while the freed block's tag survives; glibc's tcache
         * overwrites it at once, and the tag then reads as NOT_A_BLOCK. */
        CHECK(last_assert_line == heapFAULT_DOUBLE_FREE || last_assert_line == heapFAULT_NOT_A_BLOCK);
        CHECK_EQ(xPortGetRejectedFreeCount(), 2);
    }
    for (int i = 1; i < 64; i += 2) vPortFree(p[i]);
    vPortHeapResetState(); /* no-op */
    CHECK_EQ(xPortCheckHeap(NULL), heapCHECK_OK);
    CHECK_EQ(suspend_depth, 0);
    printf("heap_3 C API test passed\n");
    return 0;
}
