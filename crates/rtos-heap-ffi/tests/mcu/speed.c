/*
 * speed.c - instructions per pvPortMalloc / vPortFree on a Cortex-M3 (QEMU mps2-an385 with
 * `-icount shift=0`: one instruction is one nanosecond of virtual time, and SysTick counts the
 * 25 MHz CPU clock, so a tick is 40 instructions; the firmware measures that ratio itself on a loop
 * of known length). The workload of rtos_workload.h (generated: emit_c) is replayed twice, through
 * the heap and through calls that do nothing; the difference, per operation, is the heap's cost.
 * Linked with rtos-heap's static library or with FreeRTOS's heap_4.c, the same file measures both.
 */
#include <stdint.h>
#include <stdio.h>
#include <stddef.h>

#include "rtos_workload.h"

void *pvPortMalloc(size_t);
void vPortFree(void *);

/* Kernel and application stand-ins (heap_4.c and the library call them). */
void vTaskSuspendAll(void) {}
long xTaskResumeAll(void) { return 0; }
void vApplicationMallocFailedHook(void) {}
unsigned long oracle_asserts;
void oracle_assert(const char *file, int line, const char *expr) {
    (void)file; (void)line; (void)expr;
    oracle_asserts++;
}
#ifdef C_HEAP
/* configAPPLICATION_ALLOCATED_HEAP in the reference's FreeRTOS.h stub. */
uint8_t ucHeap[WORKLOAD_HEAP_SIZE] __attribute__((aligned(64)));
#endif

#define SYST_CSR (*(volatile uint32_t *)0xE000E010u)
#define SYST_RVR (*(volatile uint32_t *)0xE000E014u)
#define SYST_CVR (*(volatile uint32_t *)0xE000E018u)

static void *slots[WORKLOAD_IDS];
static unsigned long failed;

__attribute__((noinline)) static void *nop_malloc(size_t n) {
    __asm__ volatile("" ::"r"(n));
    return (void *)slots;
}
__attribute__((noinline)) static void nop_free(void *p) { __asm__ volatile("" ::"r"(p)); }

typedef void *(*malloc_fn)(size_t);
typedef void (*free_fn)(void *);

/* Replays operations [from, to) and returns the SysTick ticks they took. */
__attribute__((noinline)) static uint32_t replay(uint32_t from, uint32_t to, malloc_fn m, free_fn f) {
    uint32_t t0 = SYST_CVR;
    for (uint32_t i = from; i < to; i++) {
        uint32_t id = workload[i][0], size = workload[i][1];
        if (size != 0xFFFFFFFFu) {
            void *p = m(size);
            failed += (p == NULL);
            slots[id] = p;
        } else if (slots[id] != NULL) {
            f(slots[id]);
            slots[id] = NULL;
        }
    }
    uint32_t t1 = SYST_CVR;
    return (t0 - t1) & 0xFFFFFFu; /* SysTick counts down, 24 bits */
}

/* Instructions per tick: a loop of a known number of instructions (subs + bne = 2 a turn). */
__attribute__((noinline)) static uint32_t calibrate(void) {
    uint32_t n = 1000000u;
    uint32_t t0 = SYST_CVR;
    __asm__ volatile("1: subs %0, %0, #1\n bne 1b" : "+r"(n));
    uint32_t t1 = SYST_CVR;
    return (t0 - t1) & 0xFFFFFFu;
}

int main(void) {
    SYST_RVR = 0xFFFFFFu;
    SYST_CVR = 0;
    SYST_CSR = 5u; /* enabled, CPU clock, no interrupt */
    uint32_t cal = calibrate();
    replay(0, WORKLOAD_SETUP, pvPortMalloc, vPortFree);
    uint32_t heap = replay(WORKLOAD_SETUP, WORKLOAD_OPS, pvPortMalloc, vPortFree);
    uint32_t base = replay(WORKLOAD_SETUP, WORKLOAD_OPS, nop_malloc, nop_free);
    uint32_t ops = WORKLOAD_OPS - WORKLOAD_SETUP;
    /* instructions = ticks * 2,000,000 / cal; per operation, in hundredths. */
    uint64_t centi = ((uint64_t)(heap - base) * 2000000u * 100u) / cal / ops;
    printf("speed %s: %lu operations, %lu failed, %lu.%02lu instructions per operation "
           "(calibration: %lu ticks per 2,000,000 instructions)\n",
           WORKLOAD_NAME, (unsigned long)ops, failed, (unsigned long)(centi / 100),
           (unsigned long)(centi % 100), (unsigned long)cal);
    return failed != 0;
}
