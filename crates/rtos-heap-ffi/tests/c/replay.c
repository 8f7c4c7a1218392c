/*
 * replay.c - replays a trace of ../shared/vectors (README: trace language) through the C ABI and
 * prints the `a`, `c`, `s` and `w` lines the C original printed, so that they can be compared line
 * for line with vectors/a8_m0/NAME.heapN_64.out. Like the C harness, an ID keeps its pointer after
 * a free (a second free of it is a double free, refused here where FreeRTOS asserts). A final
 * `! rejected=N` line (ignored by the comparison, like the harness's `!` notes) reports the refusals.
 *
 * Library build: heap_N, malloc-failed-hook, application-allocated-heap (heap_1/2/4),
 * RTOS_HEAP_TOTAL_HEAP_SIZE=65536. Usage: replay TRACE
 */
#include <errno.h>
#include <ctype.h>

#include "harness.h"

#ifdef RTOS_HEAP_5
static uint8_t arena[65536] __attribute__((aligned(64)));
#define BASE arena
static void define_regions(void) {
    HeapRegion_t regions[] = {
        {arena + 0, 1000}, {arena + 1003, 2000}, {arena + 4096, 20000}, {arena + 30000, 35536},
        {NULL, 0},
    };
    vPortDefineHeapRegions(regions);
}
#else
#define BASE ucHeap
static void define_regions(void) {}
#endif

static void **ids;
static unsigned char *known;
static size_t nids;

static void remember(size_t id, void *p) {
    if (id >= nids) {
        size_t n = (id + 1) * 2;
        ids = realloc(ids, n * sizeof *ids);
        known = realloc(known, n);
        CHECK(ids && known);
        memset(ids + nids, 0, (n - nids) * sizeof *ids);
        memset(known + nids, 0, n - nids);
        nids = n;
    }
    ids[id] = p;
    known[id] = 1;
}

/* A number of the trace: decimal or 0x-hex; 0 when it does not fit size_t (*ok = 0). */
static size_t number(const char *s, int *ok) {
    errno = 0;
    char *end;
    unsigned long long v = strtoull(s, &end, 0);
    *ok = errno == 0 && end != s && v <= SIZE_MAX;
    return (size_t)v;
}

static long long offset(const void *p) { return p ? (long long)((const uint8_t *)p - BASE) : -1; }

static void walk(void) {
#ifdef RTOS_HEAP_1
    printf("w used=%zu\n", (size_t)(TOTAL_HEAP_SIZE - ALIGN) - xPortGetFreeHeapSize());
#else
    static HeapBlockInfo_t blocks[8192];
    size_t n = uxPortHeapWalk(blocks, 8192);
    CHECK(n <= 8192);
    printf("w");
    for (size_t i = 0; i < n; i++) {
        size_t off = blocks[i].uxAddress - (uintptr_t)BASE;
        switch (blocks[i].ulKind) {
        case heapWALK_ALLOCATED: printf(" %zu:%zu:A", off, blocks[i].xSize); break;
        case heapWALK_FREE: printf(" %zu:%zu:F", off, blocks[i].xSize); break;
        case heapWALK_END_MARKER: printf(" %zu:M", off); break;
        default: printf(" %zu:%zu:CORRUPT", off, blocks[i].xSize); break;
        }
    }
    printf("\n");
#endif
}

static void stats_line(void) {
    printf("s xPortGetFreeHeapSize=%zu", xPortGetFreeHeapSize());
#if defined(RTOS_HEAP_4) || defined(RTOS_HEAP_5)
    HeapStats_t s;
    vPortGetHeapStats(&s);
    printf(" xPortGetMinimumEverFreeHeapSize=%zu xAvailableHeapSpaceInBytes=%zu "
           "xSizeOfLargestFreeBlockInBytes=%zu xSizeOfSmallestFreeBlockInBytes=%zu "
           "xNumberOfFreeBlocks=%zu xMinimumEverFreeBytesRemaining=%zu "
           "xNumberOfSuccessfulAllocations=%zu xNumberOfSuccessfulFrees=%zu",
           xPortGetMinimumEverFreeHeapSize(), s.xAvailableHeapSpaceInBytes,
           s.xSizeOfLargestFreeBlockInBytes, s.xSizeOfSmallestFreeBlockInBytes,
           s.xNumberOfFreeBlocks, s.xMinimumEverFreeBytesRemaining,
           s.xNumberOfSuccessfulAllocations, s.xNumberOfSuccessfulFrees);
#endif
    printf(" mallocFailedHook=%lu\n", malloc_failed_calls);
}

int main(int argc, char **argv) {
    CHECK(argc == 2);
    FILE *f = fopen(argv[1], "r");
    CHECK(f != NULL);
    kernel_init();
    define_regions();
    char line[512];
    unsigned long lineno = 0;
    while (fgets(line, sizeof line, f)) {
        lineno++;
        char op[8] = "", a1[64] = "", a2[64] = "", a3[64] = "";
        int n = sscanf(line, " %7s %63s %63s %63s", op, a1, a2, a3);
        if (n < 1 || op[0] == '#') continue;
        int ok1 = 1, ok2 = 1;
        (void)ok2;
        size_t id = (size_t)strtoull(a1, NULL, 10);
        switch (op[0]) {
        case 'a': {
            size_t size = number(a2, &ok1);
            if (!ok1) break; /* the harness prints an `e` line */
            void *p = pvPortMalloc(size);
            printf("a %s %lld\n", a1, offset(p));
            remember(id, p);
            break;
        }
        case 'c': {
#if defined(RTOS_HEAP_2) || defined(RTOS_HEAP_4) || defined(RTOS_HEAP_5)
            size_t num = number(a2, &ok1), size = number(a3, &ok2);
            if (!ok1 || !ok2) break;
            uint8_t *p = pvPortCalloc(num, size);
            if (p) CHECK(all_bytes(p, 0, num * size));
            printf("c %s %lld\n", a1, offset(p));
            remember(id, p);
#endif
            break;
        }
        case 'f':
            if (id < nids && known[id]) vPortFree(ids[id]);
            break;
        case 's': stats_line(); break;
        case 'w': walk(); break;
        case 'r':
#if defined(RTOS_HEAP_4) || defined(RTOS_HEAP_5)
            xPortResetHeapMinimumEverFreeHeapSize();
#endif
            break;
        case 'i':
#if defined(RTOS_HEAP_1) || defined(RTOS_HEAP_2) || defined(RTOS_HEAP_4)
            vPortInitialiseBlocks();
#endif
            break;
        case 'R':
            vPortHeapResetState();
            memset(known, 0, nids);
            define_regions();
            break;
        default:
            fprintf(stderr, "line %lu: unknown operation %s\n", lineno, op);
            return 1;
        }
        uintptr_t where;
        int32_t code = xPortCheckHeap(&where);
        if (code != heapCHECK_OK) {
            fprintf(stderr, "line %lu: xPortCheckHeap %d at %#lx\n", lineno, code, (unsigned long)where);
            return 1;
        }
    }
    fclose(f);
    printf("! rejected=%zu\n", xPortGetRejectedFreeCount());
    CHECK_EQ(suspend_depth, 0);
    free(ids);
    free(known);
    return 0;
}
