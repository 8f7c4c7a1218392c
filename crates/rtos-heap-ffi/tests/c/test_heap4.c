/*
 * test_heap4.c - every exported function of a heap_4 build, statistics after a scripted sequence
 * against the values freertos-heap-semantics.md predicts (64-bit, portBYTE_ALIGNMENT 8: header 16,
 * aligned 65536-byte ucHeap), the bad inputs, and the extras.
 * Library features: heap_4, malloc-failed-hook, assert-hook, application-allocated-heap,
 * clear-on-free, heap-protector.
 */
#include "harness.h"

/* With the `tree-index` build the free block keeps its tree node in its first payload bytes
 * (8 for a minimum-size block, 12 otherwise): the payload is cleared, then the node written. */
#ifdef TREE_INDEX
#define TREE_NODE 8
#else
#define TREE_NODE 0
#endif

static HeapStats_t stats(void) {
    HeapStats_t s;
    memset(&s, 0xEE, sizeof s);
    vPortGetHeapStats(&s);
    return s;
}

int main(void) {
    kernel_init();
    const size_t usable = TOTAL_HEAP_SIZE - HS; /* heap_4: the end marker costs one header */

    /* Before the first allocation: free and min-ever read 0, no blocks, smallest SIZE_MAX (s. 4). */
    CHECK_EQ(xPortGetFreeHeapSize(), 0);
    CHECK_EQ(xPortGetMinimumEverFreeHeapSize(), 0);
    HeapStats_t s = stats();
    CHECK_EQ(s.xNumberOfFreeBlocks, 0);
    CHECK_EQ(s.xSizeOfLargestFreeBlockInBytes, 0);
    CHECK_EQ(s.xSizeOfSmallestFreeBlockInBytes, SIZE_MAX);
    CHECK_EQ(s.xNumberOfSuccessfulAllocations, 0);
    CHECK_EQ(canary_calls, 0);
    CHECK_EQ(uxPortHeapWalk(NULL, 0), 0);

    /* Scripted sequence. wanted = round_up(n + 16, 8): 100 -> 120, 1 -> 24, 4*25 -> 120. */
    uint8_t *a = pvPortMalloc(100);
    CHECK(a == ucHeap + HS);
    CHECK_EQ(canary_calls, 1); /* fetched once, at the lazy initialisation */
    CHECK_EQ(xPortGetFreeHeapSize(), usable - 120);
    uint8_t *b = pvPortMalloc(1);
    CHECK(b == ucHeap + 120 + HS);
    uint8_t *c = pvPortCalloc(4, 25);
    CHECK(c == ucHeap + 144 + HS);
    CHECK(all_bytes(c, 0, 100));
    CHECK_EQ(xPortGetFreeHeapSize(), usable - 264);
    CHECK_EQ(xPortGetMinimumEverFreeHeapSize(), usable - 264);
    memset(a, 0x41, 100);
    memset(b, 0x42, 1);
    memset(c, 0x43, 100);

    vPortFree(b); /* hole of 24 between a and c */
    CHECK(all_bytes(b + TREE_NODE, 0, 24 - HS - TREE_NODE)); /* configHEAP_CLEAR_MEMORY_ON_FREE */
    s = stats();
    CHECK_EQ(s.xAvailableHeapSpaceInBytes, usable - 240);
    CHECK_EQ(s.xNumberOfFreeBlocks, 2);
    CHECK_EQ(s.xSizeOfSmallestFreeBlockInBytes, 24);
    CHECK_EQ(s.xSizeOfLargestFreeBlockInBytes, usable - 264);
    CHECK_EQ(s.xMinimumEverFreeBytesRemaining, usable - 264);
    CHECK_EQ(s.xNumberOfSuccessfulAllocations, 3);
    CHECK_EQ(s.xNumberOfSuccessfulFrees, 1);
    CHECK(all_bytes(a, 0x41, 100) && all_bytes(c, 0x43, 100));

    /* First fit by address: an 8-byte request takes the 24-byte hole. */
    uint8_t *d = pvPortMalloc(8);
    CHECK(d == b);
    vPortFree(d);

    /* Calloc zeroes: a block dirtied and freed comes back zeroed. */
    uint8_t *e = pvPortMalloc(200);
    memset(e, 0xFF, 200);
    vPortFree(e);
    e = pvPortCalloc(2, 100);
    CHECK(all_bytes(e, 0, 200));
    vPortFree(e);

    /* Bad inputs: refused, counted, reported through vAssertCalled; the heap is unchanged. */
    HeapStatsEx_t x0 = stats_ex();
    size_t free_before = xPortGetFreeHeapSize();
    vPortFree(NULL);
    CHECK_EQ(assert_calls, 0);
    vPortFree(b); /* double free */
    CHECK_EQ(assert_calls, 1);
    CHECK_EQ(last_assert_line, heapFAULT_DOUBLE_FREE);
    static uint64_t foreign[4];
    vPortFree(&foreign[2]);
    CHECK_EQ(assert_calls, 2);
    CHECK_EQ(last_assert_line, heapFAULT_OUTSIDE_HEAP);
    vPortFree(a + 16); /* interior pointer: the "header" is payload bytes 0x41... */
    CHECK_EQ(assert_calls, 3);
    CHECK_EQ(last_assert_line, heapFAULT_NOT_A_BLOCK);
    vPortFree(a + 3);
    CHECK_EQ(assert_calls, 4);
    CHECK_EQ(last_assert_line, heapFAULT_MISALIGNED);
    CHECK_EQ(xPortGetRejectedFreeCount(), x0.xNumberOfRejectedFrees + 4);
    CHECK_EQ(xPortGetFreeHeapSize(), free_before);
    CHECK_EQ(stats().xNumberOfSuccessfulFrees, x0.xNumberOfSuccessfulFrees);
    CHECK_EQ(xPortCheckHeap(NULL), heapCHECK_OK);

    /* A registered handler takes the faults instead of vAssertCalled. */
    CHECK(vPortSetHeapFaultHandler(fault_handler) == NULL);
    vPortFree(b);
    CHECK_EQ(handler_calls, 1);
    CHECK(handler_address == b);
    CHECK_EQ(handler_reason, heapFAULT_DOUBLE_FREE);
    CHECK_EQ(assert_calls, 4);
    CHECK(vPortSetHeapFaultHandler(NULL) == fault_handler);

    /* Failed allocations: NULL and the hook, except calloc's overflow (s. 0). */
    unsigned long hooks0 = malloc_failed_calls;
    size_t failed0 = xPortGetFailedAllocationCount();
    CHECK(pvPortMalloc(0) == NULL);
    CHECK(pvPortMalloc(SIZE_MAX) == NULL);
    CHECK(pvPortMalloc(SIZE_MAX - 8) == NULL);
    CHECK(pvPortMalloc(TOTAL_HEAP_SIZE) == NULL);
    CHECK(pvPortCalloc(0, 8) == NULL);
    CHECK_EQ(malloc_failed_calls, hooks0 + 5);
    CHECK(pvPortCalloc(SIZE_MAX / 2, 3) == NULL); /* overflow: no hook */
    CHECK_EQ(malloc_failed_calls, hooks0 + 5);
    CHECK_EQ(xPortGetFailedAllocationCount(), failed0 + 5);

    /* Min-ever reset. */
    xPortResetHeapMinimumEverFreeHeapSize();
    CHECK_EQ(xPortGetMinimumEverFreeHeapSize(), xPortGetFreeHeapSize());

    /* Walk: a(120) hole(24) c(120) rest, end marker at usable. */
    HeapBlockInfo_t w[8];
    size_t n = uxPortHeapWalk(w, 8);
    CHECK_EQ(n, 5);
    CHECK(w[0].uxAddress == (uintptr_t)ucHeap && w[0].xSize == 120 && w[0].ulKind == heapWALK_ALLOCATED);
    CHECK(w[1].xSize == 24 && w[1].ulKind == heapWALK_FREE);
    CHECK(w[2].xSize == 120 && w[2].ulKind == heapWALK_ALLOCATED);
    CHECK(w[3].xSize == usable - 264 && w[3].ulKind == heapWALK_FREE);
    CHECK(w[4].uxAddress == (uintptr_t)ucHeap + usable && w[4].xSize == 0 &&
          w[4].ulKind == heapWALK_END_MARKER);
    CHECK_EQ(uxPortHeapWalk(w, 2), 5); /* a short buffer still reports the total */

    /* Integrity check: a smashed header is found, with its address. */
    uintptr_t where = 1;
    CHECK_EQ(xPortCheckHeap(&where), heapCHECK_OK);
    CHECK_EQ(where, 0);
    uint8_t saved[16];
    memcpy(saved, c - HS, HS);
    memset(c - HS, 0x5A, HS);
    int32_t code = xPortCheckHeap(&where);
    CHECK(code != heapCHECK_OK);
    CHECK(where == (uintptr_t)(c - HS));
    memcpy(c - HS, saved, HS);
    CHECK_EQ(xPortCheckHeap(&where), heapCHECK_OK);

    /* Realloc: shrink in place, grow in place into the free block above, move when boxed in. */
    uint8_t *r = pvPortRealloc(c, 40);
    CHECK(r == c);
    CHECK(all_bytes(r, 0x43, 40));
    r = pvPortRealloc(r, 300); /* the block above c is free: grows in place */
    CHECK(r == c);
    CHECK(all_bytes(r, 0x43, 40));
    uint8_t *blocker = pvPortMalloc(16);
    CHECK(blocker == ucHeap + 144 + 320 + HS); /* c's block is now round_up(300 + 16, 8) = 320 */
    memset(r, 0x44, 300);
    uint8_t *moved = pvPortRealloc(r, 600);
    CHECK(moved != NULL && moved != r);
    CHECK(all_bytes(moved, 0x44, 300));
    r = pvPortRealloc(NULL, 10); /* = malloc */
    CHECK(r != NULL);
    CHECK(pvPortRealloc(r, 0) == NULL); /* frees */
    size_t rejected0 = xPortGetRejectedFreeCount();
    CHECK(pvPortRealloc(b, 10) == NULL); /* b is free: refused, counted, asserted */
    CHECK_EQ(xPortGetRejectedFreeCount(), rejected0 + 1);
    CHECK_EQ(last_assert_line, heapFAULT_DOUBLE_FREE);
    hooks0 = malloc_failed_calls;
    CHECK(pvPortRealloc(moved, TOTAL_HEAP_SIZE) == NULL); /* too big: old block kept */
    CHECK_EQ(malloc_failed_calls, hooks0 + 1);
    CHECK(all_bytes(moved, 0x44, 300));
    vPortFree(moved);
    vPortFree(blocker);
    vPortFree(a);
    CHECK_EQ(xPortCheckHeap(NULL), heapCHECK_OK);
    CHECK_EQ(xPortGetFreeHeapSize(), usable);
    CHECK_EQ(stats().xNumberOfFreeBlocks, 1);

    /* vPortInitialiseBlocks does nothing on heap_4. */
    uint8_t *keep = pvPortMalloc(64);
    size_t f = xPortGetFreeHeapSize();
    vPortInitialiseBlocks();
    CHECK_EQ(xPortGetFreeHeapSize(), f);
    (void)keep;

    /* vPortHeapResetState: counters to 0, laid out again at the next malloc, canary fetched again. */
    vPortHeapResetState();
    CHECK_EQ(xPortGetFreeHeapSize(), 0);
    CHECK_EQ(xPortGetMinimumEverFreeHeapSize(), 0);
    s = stats();
    CHECK_EQ(s.xNumberOfSuccessfulAllocations, 0);
    CHECK_EQ(s.xSizeOfSmallestFreeBlockInBytes, 0); /* FreeRTOS's stale-list quirk (s. 4) */
    uint8_t *again = pvPortMalloc(100);
    CHECK(again == ucHeap + HS);
    CHECK_EQ(canary_calls, 2);
    CHECK_EQ(xPortGetFreeHeapSize(), usable - 120);
    CHECK_EQ(stats().xNumberOfSuccessfulAllocations, 1);

    /* The lock: every heap call suspended and resumed the scheduler, balanced. */
    CHECK(suspend_calls > 0);
    CHECK_EQ(suspend_depth, 0);
    printf("heap_4 C API test passed (%lu scheduler suspensions)\n", suspend_calls);
    return 0;
}
