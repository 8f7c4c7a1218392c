/*
 * test_heap5.c - a heap_5 build: region definition (and its refusals), statistics against the
 * semantics document (64-bit: header 16; the vectors' four regions), bad inputs, extras.
 * Library features: heap_5, malloc-failed-hook, assert-hook, heap-protector, clear-on-free.
 */
#include "harness.h"

/* With the `tree-index` build the free block keeps its tree node in its first payload bytes
 * (8 for a minimum-size block, 12 otherwise): the payload is cleared, then the node written. */
#ifdef TREE_INDEX
#define TREE_NODE 12
#else
#define TREE_NODE 0
#endif

static uint8_t arena[65536] __attribute__((aligned(64)));

static HeapStats_t stats(void) {
    HeapStats_t s;
    memset(&s, 0xEE, sizeof s);
    vPortGetHeapStats(&s);
    return s;
}

static void define_vector_regions(void) {
    HeapRegion_t regions[] = {
        {arena + 0, 1000}, {arena + 1003, 2000}, {arena + 4096, 20000}, {arena + 30000, 35536},
        {NULL, 0},
    };
    vPortDefineHeapRegions(regions);
}

int main(void) {
    kernel_init();

    /* No memory before vPortDefineHeapRegions: NULL and the hook (s. 5). */
    CHECK(pvPortMalloc(16) == NULL);
    CHECK_EQ(malloc_failed_calls, 1);
    CHECK_EQ(xPortGetFreeHeapSize(), 0);
    CHECK_EQ(canary_calls, 0);

    /* Refused region lists: overlapping (the 64-bit quirk of s. 5), unordered, too many. */
    HeapRegion_t overlap[] = {{arena, 1000}, {arena + 992, 1000}, {NULL, 0}};
    vPortDefineHeapRegions(overlap);
    CHECK_EQ(assert_calls, 1);
    CHECK_EQ(last_assert_line, heapFAULT_BAD_REGIONS);
    CHECK(pvPortMalloc(16) == NULL);
    CHECK(vPortSetHeapFaultHandler(fault_handler) == NULL);
    HeapRegion_t unordered[] = {{arena + 4096, 1000}, {arena, 1000}, {NULL, 0}};
    vPortDefineHeapRegions(unordered);
    CHECK_EQ(handler_calls, 1);
    CHECK(handler_address == arena);
    CHECK_EQ(handler_reason, heapFAULT_BAD_REGIONS);
    HeapRegion_t many[10];
    for (int i = 0; i < 9; i++) many[i] = (HeapRegion_t){arena + 1024 * i, 512};
    many[9] = (HeapRegion_t){NULL, 0};
    vPortDefineHeapRegions(many); /* RTOS_HEAP_MAX_REGIONS is 8 */
    CHECK_EQ(handler_calls, 2);
    CHECK(handler_address == arena + 8 * 1024);
    vPortSetHeapFaultHandler(NULL);
    CHECK_EQ(xPortGetFreeHeapSize(), 0);

    /* The vectors' regions: 984 + 1976 + 19984 + 35520 = 58464 free, 7 list nodes (s. 5). */
    define_vector_regions();
    CHECK_EQ(canary_calls, 4); /* fetched at the start of each call on an undefined heap */
    CHECK_EQ(xPortGetFreeHeapSize(), 58464);
    HeapStats_t s = stats();
    CHECK_EQ(s.xNumberOfFreeBlocks, 7);
    CHECK_EQ(s.xSizeOfLargestFreeBlockInBytes, 35520);
    CHECK_EQ(s.xSizeOfSmallestFreeBlockInBytes, 984);
    CHECK_EQ(s.xMinimumEverFreeBytesRemaining, 58464);
    define_vector_regions(); /* a second call is refused */
    CHECK_EQ(assert_calls, 2);
    CHECK_EQ(xPortGetFreeHeapSize(), 58464);

    /* First fit across regions: 1000 bytes (1016) skip region 0 (984) and 1 (1976 fits). */
    uint8_t *a = pvPortMalloc(100);
    CHECK(a == arena + HS);
    uint8_t *b = pvPortMalloc(1000);
    CHECK(b == arena + 1008 + HS);
    uint8_t *c = pvPortCalloc(1, 3000);
    CHECK(c == arena + 4096 + HS);
    CHECK(all_bytes(c, 0, 3000));
    CHECK_EQ(xPortGetFreeHeapSize(), 58464 - 120 - 1016 - 3016);
    memset(b, 0x42, 1000);
    vPortFree(b);
    CHECK(all_bytes(b + TREE_NODE, 0, 1000 - TREE_NODE)); /* clear-on-free */
    s = stats();
    CHECK_EQ(s.xNumberOfSuccessfulAllocations, 3);
    CHECK_EQ(s.xNumberOfSuccessfulFrees, 1);
    CHECK_EQ(s.xMinimumEverFreeBytesRemaining, 58464 - 120 - 1016 - 3016);
    xPortResetHeapMinimumEverFreeHeapSize();
    CHECK_EQ(xPortGetMinimumEverFreeHeapSize(), xPortGetFreeHeapSize());

    /* Bad frees. */
    vPortFree(b);
    CHECK_EQ(last_assert_line, heapFAULT_DOUBLE_FREE);
    vPortFree(arena + 3500); /* between regions 1 and 2: not heap memory */
    CHECK_EQ(last_assert_line, heapFAULT_OUTSIDE_HEAP);
    CHECK_EQ(xPortGetRejectedFreeCount(), 2);
    CHECK_EQ(xPortCheckHeap(NULL), heapCHECK_OK);

    /* A second definition with blocks out: refused, the first regions and their blocks stay. */
    HeapStats_t held = stats();
    size_t free_before = xPortGetFreeHeapSize();
    static uint8_t other[4096] __attribute__((aligned(8)));
    HeapRegion_t again[] = {{other, sizeof other}, {NULL, 0}};
    unsigned long calls = handler_calls;
    vPortSetHeapFaultHandler(fault_handler);
    vPortDefineHeapRegions(again);
    CHECK_EQ(handler_calls, calls + 1);
    CHECK_EQ(handler_reason, heapFAULT_BAD_REGIONS);
    CHECK(handler_address == (void *)again);
    vPortSetHeapFaultHandler(NULL);
    CHECK_EQ(xPortGetFreeHeapSize(), free_before);
    HeapStats_t still = stats();
    CHECK_EQ(still.xNumberOfFreeBlocks, held.xNumberOfFreeBlocks);
    CHECK_EQ(still.xNumberOfSuccessfulAllocations, held.xNumberOfSuccessfulAllocations);
    CHECK_EQ(xPortCheckHeap(NULL), heapCHECK_OK);
    CHECK(all_bytes(c, 0, 3000)); /* the calloc block is untouched */

    /* Walk: region 0: a, free, marker; region 1: free, marker; ... */
    HeapBlockInfo_t w[16];
    size_t n = uxPortHeapWalk(w, 16);
    CHECK_EQ(n, 10);
    CHECK(w[0].uxAddress == (uintptr_t)arena && w[0].xSize == 120 && w[0].ulKind == heapWALK_ALLOCATED);
    CHECK(w[2].ulKind == heapWALK_END_MARKER && w[2].ulRegion == 0);
    CHECK(w[3].uxAddress == (uintptr_t)arena + 1008 && w[3].ulRegion == 1);
    CHECK(w[5].uxAddress == (uintptr_t)arena + 4096 && w[5].xSize == 3016);

    /* Realloc grows in place into the free block above. */
    uint8_t *r = pvPortRealloc(c, 5000);
    CHECK(r == c);
    CHECK(all_bytes(r, 0, 3000));
    vPortFree(r);
    vPortFree(a);
    CHECK_EQ(xPortCheckHeap(NULL), heapCHECK_OK);

    /* Reset: the regions are forgotten until defined again (s. 5). */
    vPortHeapResetState();
    CHECK_EQ(xPortGetFreeHeapSize(), 0);
    CHECK(pvPortMalloc(8) == NULL);
    define_vector_regions();
    CHECK_EQ(canary_calls, 5);
    CHECK_EQ(xPortGetFreeHeapSize(), 58464);
    CHECK(pvPortMalloc(100) == arena + HS);
    CHECK_EQ(suspend_depth, 0);
    printf("heap_5 C API test passed\n");
    return 0;
}
