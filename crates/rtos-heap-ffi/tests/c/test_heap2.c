/*
 * test_heap2.c - a heap_2 build: best fit, no merging, statistics against the semantics document
 * (64-bit, header 16, aligned ucHeap of 65536: 65528 usable), bad inputs, extras.
 * Library features: heap_2, malloc-failed-hook, assert-hook, application-allocated-heap,
 * clear-on-free.
 */
#include "harness.h"

int main(void) {
    kernel_init();
    const size_t adjusted = TOTAL_HEAP_SIZE - ALIGN; /* heap_2 always gives up portBYTE_ALIGNMENT */

    CHECK_EQ(xPortGetFreeHeapSize(), adjusted); /* valid before the first malloc (s. 2) */
    uint8_t *a = pvPortMalloc(100);
    CHECK(a == ucHeap + HS);
    CHECK_EQ(xPortGetFreeHeapSize(), adjusted - 120);
    uint8_t *b = pvPortMalloc(8);  /* 24 */
    uint8_t *c = pvPortMalloc(8);  /* 24 */
    uint8_t *g = pvPortMalloc(40); /* 56, keeps c away from the rest */
    CHECK(b == a + 120 && c == b + 24 && g == c + 24);
    memset(c, 0x43, 8);
    vPortFree(b);
    vPortFree(c);
    CHECK(all_bytes(c, 0, 8)); /* clear-on-free */
    /* Never merged: two 24-byte blocks and the rest. */
    HeapBlockInfo_t w[8];
    CHECK_EQ(uxPortHeapWalk(w, 8), 5);
    CHECK(w[1].xSize == 24 && w[1].ulKind == heapWALK_FREE);
    CHECK(w[2].xSize == 24 && w[2].ulKind == heapWALK_FREE);
    HeapStatsEx_t x = stats_ex();
    CHECK_EQ(x.xNumberOfFreeBlocks, 3);
    CHECK_EQ(x.xAvailableHeapSpaceInBytes, adjusted - 120 - 56);
    /* Best fit, newest first among equal sizes: c was freed last. */
    uint8_t *d = pvPortMalloc(8);
    CHECK(d == c);
    /* Best fit: the other 24-byte block, not the large rest. */
    uint8_t *e = pvPortMalloc(8);
    CHECK(e == b);

    /* Calloc and its overflow. */
    uint8_t *z = pvPortCalloc(10, 10);
    CHECK(z != NULL && all_bytes(z, 0, 100));
    unsigned long hooks0 = malloc_failed_calls;
    CHECK(pvPortCalloc(SIZE_MAX, 2) == NULL);
    CHECK_EQ(malloc_failed_calls, hooks0);
    CHECK(pvPortMalloc(0) == NULL);
    CHECK(pvPortMalloc(adjusted) == NULL);
    CHECK_EQ(malloc_failed_calls, hooks0 + 2);

    /* Bad frees. */
    vPortFree(NULL);
    CHECK_EQ(assert_calls, 0);
    vPortFree(z);
    vPortFree(z);
    CHECK_EQ(assert_calls, 1);
    CHECK_EQ(last_assert_line, heapFAULT_DOUBLE_FREE);
    static uint64_t foreign[4];
    vPortFree(&foreign[2]);
    CHECK_EQ(last_assert_line, heapFAULT_OUTSIDE_HEAP);
    CHECK_EQ(xPortGetRejectedFreeCount(), 2);
    CHECK_EQ(xPortCheckHeap(NULL), heapCHECK_OK);

    /* Realloc: shrinking stays in place; heap_2 never grows in place. */
    uint8_t *r = pvPortMalloc(400);
    memset(r, 0x52, 400);
    CHECK(pvPortRealloc(r, 200) == r);
    uint8_t *m = pvPortRealloc(r, 1000);
    CHECK(m != NULL && m != r && all_bytes(m, 0x52, 200));
    vPortFree(m);

    vPortInitialiseBlocks(); /* no-op on heap_2 */
    CHECK_EQ(xPortCheckHeap(NULL), heapCHECK_OK);
    vPortHeapResetState();
    CHECK_EQ(xPortGetFreeHeapSize(), adjusted);
    CHECK(pvPortMalloc(100) == ucHeap + HS);
    CHECK_EQ(stats_ex().xNumberOfSuccessfulAllocations, 1);
    CHECK_EQ(suspend_depth, 0);
    (void)d; (void)e; (void)g;
    printf("heap_2 C API test passed\n");
    return 0;
}
