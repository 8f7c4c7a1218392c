/*
 * test_heap1.c - a heap_1 build: bump allocation against the semantics document (aligned ucHeap
 * of 65536: 65528 adjusted, the strict `<` keeps the last 8 bytes), bad inputs, extras.
 * Library features: heap_1, malloc-failed-hook, assert-hook, application-allocated-heap.
 */
#include "harness.h"

int main(void) {
    kernel_init();
    const size_t adjusted = TOTAL_HEAP_SIZE - ALIGN;

    CHECK_EQ(xPortGetFreeHeapSize(), adjusted); /* valid before the first malloc */
    uint8_t *a = pvPortMalloc(10);               /* rounded to 16, no header */
    CHECK(a == ucHeap);
    uint8_t *b = pvPortMalloc(1);
    CHECK(b == ucHeap + 16);
    CHECK_EQ(xPortGetFreeHeapSize(), adjusted - 24);
    /* next + wanted must stay strictly below ADJUSTED: 24 + 65504 = 65528 fails, 65496 fits. */
    CHECK(pvPortMalloc(adjusted - 24) == NULL);
    CHECK_EQ(malloc_failed_calls, 1);
    uint8_t *c = pvPortMalloc(adjusted - 32);
    CHECK(c == ucHeap + 24);
    CHECK_EQ(xPortGetFreeHeapSize(), 8);
    CHECK(pvPortMalloc(1) == NULL);
    CHECK(pvPortMalloc(0) == NULL);
    CHECK_EQ(malloc_failed_calls, 3);

    /* Frees: NULL and own pointers accepted (nothing freed), foreign ones refused. */
    vPortFree(NULL);
    vPortFree(a);
    CHECK_EQ(assert_calls, 0);
    CHECK_EQ(xPortGetFreeHeapSize(), 8);
    static uint64_t foreign[2];
    vPortFree(foreign);
    CHECK_EQ(assert_calls, 1);
    CHECK_EQ(last_assert_line, heapFAULT_OUTSIDE_HEAP);
    HeapStatsEx_t x = stats_ex();
    CHECK_EQ(x.xNumberOfRejectedFrees, 1);
    CHECK_EQ(x.xNumberOfSuccessfulAllocations, 3);
    CHECK_EQ(x.xNumberOfFailedAllocations, 3);
    CHECK_EQ(xPortCheckHeap(NULL), heapCHECK_OK);

    /* vPortInitialiseBlocks and vPortHeapResetState free everything. */
    vPortInitialiseBlocks();
    CHECK_EQ(xPortGetFreeHeapSize(), adjusted);
    CHECK(pvPortMalloc(8) == ucHeap);
    vPortHeapResetState();
    CHECK_EQ(xPortGetFreeHeapSize(), adjusted);
    CHECK_EQ(stats_ex().xNumberOfSuccessfulAllocations, 0);
    CHECK_EQ(suspend_depth, 0);
    (void)b;
    printf("heap_1 C API test passed\n");
    return 0;
}
