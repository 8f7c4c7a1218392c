/*
 * test_pool.c - fixed-block pools from C over a caller's buffer: create, allocate until exhausted,
 * free, counts, refused frees, integrity check; with the heap's fault handler.
 * Library features: as the heap_4 test build (the pool works with every scheme).
 */
#include "harness.h"

static uint8_t buffer[4096] __attribute__((aligned(8)));

int main(void) {
    kernel_init();
    CHECK(xPoolCreate(NULL, sizeof buffer, 32) == NULL);
    CHECK(xPoolCreate(buffer, sizeof buffer, 0) == NULL);
    CHECK(xPoolCreate(buffer, uxPoolControlSize(), 32) == NULL); /* no room for a block */

    PoolHandle_t pool = xPoolCreate(buffer, sizeof buffer, 30); /* rounded up to 32 */
    CHECK(pool != NULL);
    size_t cap = uxPoolGetCapacity(pool);
    CHECK_EQ(uxPoolGetBlockSize(pool), 32);
    /* Control block, a bitmap of cap/8 bytes, then the blocks: all inside the buffer. */
    CHECK(cap * 32 + cap / 8 + uxPoolControlSize() <= sizeof buffer);
    CHECK(cap * 32 + cap / 8 + uxPoolControlSize() + 32 + 8 + 8 > sizeof buffer);
    CHECK_EQ(uxPoolGetFreeBlocks(pool), cap);

    uint8_t *blocks[256];
    CHECK(cap <= 256);
    for (size_t i = 0; i < cap; i++) {
        blocks[i] = pvPoolAlloc(pool);
        CHECK(blocks[i] != NULL);
        CHECK((uintptr_t)blocks[i] % 8 == 0);
        CHECK(blocks[i] >= buffer && blocks[i] + 32 <= buffer + sizeof buffer);
        memset(blocks[i], (int)i, 32);
    }
    CHECK(pvPoolAlloc(pool) == NULL); /* exhausted */
    CHECK_EQ(malloc_failed_calls, 0);
    CHECK_EQ(uxPoolGetFreeBlocks(pool), 0);
    for (size_t i = 0; i < cap; i++) CHECK(all_bytes(blocks[i], (int)i, 32)); /* no overlap */

    vPoolFree(pool, blocks[3]);
    vPoolFree(pool, blocks[5]);
    CHECK_EQ(uxPoolGetFreeBlocks(pool), 2);
    CHECK_EQ(uxPoolGetMinimumEverFreeBlocks(pool), 0);
    CHECK(pvPoolAlloc(pool) == blocks[5]); /* LIFO */

    /* Bad frees: refused, counted, reported. */
    vPoolFree(pool, NULL);
    vPoolFree(pool, blocks[3]);
    CHECK_EQ(last_assert_line, heapFAULT_DOUBLE_FREE);
    vPoolFree(pool, blocks[7] + 4);
    CHECK_EQ(last_assert_line, heapFAULT_MISALIGNED);
    static uint64_t foreign[4];
    vPoolFree(pool, foreign);
    CHECK_EQ(last_assert_line, heapFAULT_OUTSIDE_HEAP);
    CHECK_EQ(assert_calls, 3);
    CHECK_EQ(uxPoolGetRejectedFreeCount(pool), 3);
    CHECK_EQ(uxPoolGetFreeBlocks(pool), 1);
    CHECK_EQ(xPoolCheck(pool, NULL), heapCHECK_OK);

    /* A write after free over the free list is found by the check. */
    uintptr_t where = 0;
    memset(blocks[3], 0x11, 32); /* its link now points nowhere */
    CHECK(xPoolCheck(pool, &where) != heapCHECK_OK);
    CHECK(where != 0);

    /* Two pools side by side in one buffer's halves stay apart. */
    static uint8_t two[2][1024] __attribute__((aligned(8)));
    PoolHandle_t p1 = xPoolCreate(two[0], sizeof two[0], 16);
    PoolHandle_t p2 = xPoolCreate(two[1], sizeof two[1], 64);
    uint8_t *x = pvPoolAlloc(p1), *y = pvPoolAlloc(p2);
    CHECK(x >= two[0] && x < two[1] && y >= two[1]);
    vPoolFree(p2, x); /* x belongs to p1 */
    CHECK_EQ(last_assert_line, heapFAULT_OUTSIDE_HEAP);
    vPoolFree(p1, x);
    vPoolFree(p2, y);
    CHECK_EQ(uxPoolGetFreeBlocks(p1), uxPoolGetCapacity(p1));
    CHECK_EQ(suspend_depth, 0);
    printf("pool C API test passed\n");
    return 0;
}
