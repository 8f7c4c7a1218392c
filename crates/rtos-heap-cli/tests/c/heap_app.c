/* A small "firmware" for the ELF tests of `rtos-heap inspect`: FreeRTOS's own heap_4.c (compiled
 * from ../shared/reference/freertos at test time, never copied here) serves a seeded random
 * sequence of allocations and frees; the program then writes what the heap itself reports and a
 * raw dump of ucHeap, and stops in dump_point() where the test takes a core file with gdb.
 *
 *   heap_app STATS_FILE RAW_DUMP_FILE
 */
#include <stdio.h>
#include <stdint.h>
#include "FreeRTOS.h"

uint8_t ucHeap[configTOTAL_HEAP_SIZE] __attribute__((aligned(64)));
unsigned long oracle_asserts;
void oracle_assert(const char *file, int line, const char *expr) { (void)file; (void)line; (void)expr; oracle_asserts++; }
void vApplicationMallocFailedHook(void) {}

/* gdb stops here: the heap is as the files describe it. */
void __attribute__((noinline)) dump_point(void) { __asm__ volatile("" ::: "memory"); }

static uint64_t state = 0x9e3779b97f4a7c15u;
static uint64_t next(void) { /* xorshift64* */
    state ^= state >> 12; state ^= state << 25; state ^= state >> 27;
    return state * 0x2545f4914f6cdd1du;
}

int main(int argc, char **argv) {
    static void *live[64];
    if (argc != 3) { fprintf(stderr, "usage: heap_app STATS RAW\n"); return 2; }
    for (int i = 0; i < 3000; i++) {
        unsigned k = (unsigned)(next() % 64);
        if (live[k]) { vPortFree(live[k]); live[k] = NULL; }
        else live[k] = pvPortMalloc((size_t)(next() % 400) + 1);
    }
    HeapStats_t s;
    vPortGetHeapStats(&s);
    FILE *f = fopen(argv[1], "w");
    if (!f) return 1;
    fprintf(f, "xPortGetFreeHeapSize=%zu xPortGetMinimumEverFreeHeapSize=%zu xAvailableHeapSpaceInBytes=%zu "
               "xSizeOfLargestFreeBlockInBytes=%zu xSizeOfSmallestFreeBlockInBytes=%zu xNumberOfFreeBlocks=%zu "
               "xMinimumEverFreeBytesRemaining=%zu xNumberOfSuccessfulAllocations=%zu xNumberOfSuccessfulFrees=%zu\n",
            xPortGetFreeHeapSize(), xPortGetMinimumEverFreeHeapSize(), s.xAvailableHeapSpaceInBytes,
            s.xSizeOfLargestFreeBlockInBytes, s.xSizeOfSmallestFreeBlockInBytes, s.xNumberOfFreeBlocks,
            s.xMinimumEverFreeBytesRemaining, s.xNumberOfSuccessfulAllocations, s.xNumberOfSuccessfulFrees);
    for (int k = 0; k < 64; k++)
        if (live[k]) fprintf(f, "live %lu\n", (unsigned long)((uint8_t *)live[k] - ucHeap));
    fclose(f);
    f = fopen(argv[2], "wb");
    if (!f) return 1;
    fwrite(ucHeap, 1, sizeof ucHeap, f);
    fclose(f);
    dump_point();
    return 0;
}
