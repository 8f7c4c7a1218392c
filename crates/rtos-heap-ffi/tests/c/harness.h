/*
 * harness.h - what the C tests of rtos-heap-ffi share: checks, the kernel and application hooks
 * the library calls (counted), and the heap array for configAPPLICATION_ALLOCATED_HEAP builds.
 *
 * Build macros: RTOS_HEAP_1..5 (the scheme of the library), APP_HEAP (the library was built with
 * application-allocated-heap: define ucHeap here), NO_KERNEL (built with critical-section: no
 * vTaskSuspendAll here, proving the library does not need it), THREADS (the kernel stand-ins use a
 * recursive pthread mutex so that several threads may share the heap).
 */
#ifndef HARNESS_H
#define HARNESS_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rtos_heap.h"

#ifndef TOTAL_HEAP_SIZE
#define TOTAL_HEAP_SIZE 65536
#endif
/* 64-bit host, portBYTE_ALIGNMENT 8: the block header is 16 bytes (semantics doc, section 0). */
#define ALIGN 8u
#define HS (((2u * sizeof(void *)) + ALIGN - 1u) / ALIGN * ALIGN)

#define CHECK(cond)                                                                    \
    do {                                                                               \
        if (!(cond)) {                                                                 \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);   \
            exit(1);                                                                   \
        }                                                                              \
    } while (0)

#define CHECK_EQ(a, b)                                                                 \
    do {                                                                               \
        unsigned long long va_ = (unsigned long long)(a), vb_ = (unsigned long long)(b); \
        if (va_ != vb_) {                                                              \
            fprintf(stderr, "%s:%d: check failed: %s == %s (%llu != %llu)\n", __FILE__,  \
                    __LINE__, #a, #b, va_, vb_);                                        \
            exit(1);                                                                   \
        }                                                                              \
    } while (0)

#ifdef APP_HEAP
/* configAPPLICATION_ALLOCATED_HEAP: the application's array, 64-byte aligned like the vectors'. */
uint8_t ucHeap[TOTAL_HEAP_SIZE] __attribute__((aligned(64)));
#endif

/* ---- kernel stand-ins: scheduler suspension, counted and checked for balance ---- */
static volatile long suspend_depth;
static volatile unsigned long suspend_calls;
#ifdef THREADS
#include <pthread.h>
#endif
#ifndef NO_KERNEL
#if defined(THREADS)
static pthread_mutex_t kernel_lock;
static void kernel_init(void) {
    pthread_mutexattr_t a;
    pthread_mutexattr_init(&a);
    pthread_mutexattr_settype(&a, PTHREAD_MUTEX_RECURSIVE);
    pthread_mutex_init(&kernel_lock, &a);
}
void vTaskSuspendAll(void) {
    pthread_mutex_lock(&kernel_lock);
    suspend_depth++;
    suspend_calls++;
}
long xTaskResumeAll(void) {
    CHECK(suspend_depth > 0);
    suspend_depth--;
    pthread_mutex_unlock(&kernel_lock);
    return 0;
}
#else
static void kernel_init(void) {}
void vTaskSuspendAll(void) {
    suspend_depth++;
    suspend_calls++;
}
long xTaskResumeAll(void) {
    CHECK(suspend_depth > 0);
    suspend_depth--;
    return 0;
}
#endif
#else
static void kernel_init(void) {}
#endif

/* ---- application hooks ---- */
static volatile unsigned long malloc_failed_calls;
void vApplicationMallocFailedHook(void) {
#if !defined(THREADS)
    CHECK(suspend_depth == 0); /* called after the scheduler resumed */
#endif
    malloc_failed_calls++;
}

static unsigned long assert_calls;
static unsigned long last_assert_line;
void vAssertCalled(const char *file, unsigned long line) {
    CHECK(file != NULL);
#if !defined(THREADS)
    CHECK(suspend_depth == 0);
#endif
    assert_calls++;
    last_assert_line = line;
}

static unsigned long canary_calls;
#define TEST_CANARY ((uintptr_t)0x5EC0DE5A17C0FFEEull)
void vApplicationGetRandomHeapCanary(uintptr_t *canary) {
    canary_calls++;
    *canary = TEST_CANARY;
}

/* A fault handler for vPortSetHeapFaultHandler. */
static unsigned long handler_calls;
static void *handler_address;
static int32_t handler_reason;
static __attribute__((unused)) void fault_handler(void *address, int32_t reason) {
    handler_calls++;
    handler_address = address;
    handler_reason = reason;
}

static __attribute__((unused)) HeapStatsEx_t stats_ex(void) {
    HeapStatsEx_t s;
    memset(&s, 0xEE, sizeof s);
    vPortGetHeapStatsEx(&s);
    return s;
}

static __attribute__((unused)) int all_bytes(const void *p, int value, size_t n) {
    const uint8_t *b = (const uint8_t *)p;
    for (size_t i = 0; i < n; i++)
        if (b[i] != (uint8_t)value) return 0;
    return 1;
}

#endif
