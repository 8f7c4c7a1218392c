/*
 * workload.c - a FreeRTOS-style application in C over the library: tasks (stack + TCB, allocated
 * in that order as FreeRTOS does with a downward-growing stack), queues (one block: structure and
 * storage), software timers, and short-lived message buffers (resized with pvPortRealloc where the
 * scheme has it), created and deleted at random. Every object is filled with its own tag and checked
 * before it is deleted (any overlap between blocks shows); xPortCheckHeap runs after every phase
 * and the statistics are checked against the objects alive.
 *
 * Usage: workload [operations=120000] [threads=1]. With THREADS, the threads share the heap through
 * the kernel stand-ins (a recursive mutex) or, with NO_KERNEL, the library's critical section.
 * heap_5: the regions are defined first. heap_1: memory never comes back, so when it is full the
 * application "restarts" (vPortInitialiseBlocks) and forgets its objects.
 */
#include "harness.h"

#ifdef RTOS_HEAP_5
static uint8_t arena[TOTAL_HEAP_SIZE] __attribute__((aligned(64)));
#endif

enum kind { TASK, QUEUE, TIMER, BUFFER, KINDS };
#define TCB_SIZE 360
#define TIMER_SIZE 80
#define QUEUE_HEADER 160
#define MAX_LIVE 512

struct object {
    enum kind kind;
    uint8_t *a, *b; /* task: stack, TCB; others: a only */
    size_t na, nb;
    uint8_t tag;
};

struct world {
    struct object live[MAX_LIVE];
    int n;
    uint64_t rng;
    unsigned long ops, failures, restarts, tag;
};

static uint64_t next(struct world *w) {
    uint64_t x = w->rng;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    w->rng = x;
    return x * 0x2545F4914F6CDD1Dull;
}
static size_t below(struct world *w, size_t n) { return (size_t)(next(w) % n); }

static void fill(uint8_t *p, size_t n, uint8_t tag) { memset(p, tag, n); }
static void verify(const uint8_t *p, size_t n, uint8_t tag) { CHECK(all_bytes(p, tag, n)); }

static void delete_at(struct world *w, int i) {
    struct object *o = &w->live[i];
    verify(o->a, o->na, o->tag);
    if (o->b) {
        verify(o->b, o->nb, (uint8_t)~o->tag);
        vPortFree(o->b); /* TCB first, then the stack, as vTaskDelete's cleanup does */
        w->ops++;
    }
    vPortFree(o->a);
    w->ops++;
    w->live[i] = w->live[--w->n];
}

static void out_of_memory(struct world *w) {
    w->failures++;
#ifdef RTOS_HEAP_1
    if (w->n > 0 || xPortGetFreeHeapSize() < 4096) {
        /* heap_1 never frees: the application restarts. */
        for (int i = 0; i < w->n; i++) verify(w->live[i].a, w->live[i].na, w->live[i].tag);
        w->n = 0;
        vPortInitialiseBlocks();
        w->restarts++;
    }
#else
    /* Delete a third of the objects. */
    for (int k = w->n / 3; k > 0 && w->n > 0; k--) delete_at(w, (int)below(w, (size_t)w->n));
#endif
}

static void create(struct world *w, enum kind kind) {
    if (w->n == MAX_LIVE) {
        delete_at(w, (int)below(w, (size_t)w->n));
        return;
    }
    struct object o = {kind, NULL, NULL, 0, 0, (uint8_t)(++w->tag | 1)};
    switch (kind) {
    case TASK:
        o.na = 256 + 8 * below(w, 256); /* stack: 256 .. 2296 bytes */
        o.nb = TCB_SIZE;
        break;
    case QUEUE:
        o.na = QUEUE_HEADER + (1 + below(w, 16)) * (4 + below(w, 60));
        break;
    case TIMER:
        o.na = TIMER_SIZE;
        break;
    default:
        o.na = 1 + below(w, 700);
        break;
    }
    o.a = pvPortMalloc(o.na);
    w->ops++;
    if (!o.a) {
        out_of_memory(w);
        return;
    }
    fill(o.a, o.na, o.tag);
    if (o.nb) {
        o.b = pvPortMalloc(o.nb);
        w->ops++;
        if (!o.b) {
            vPortFree(o.a); /* as xTaskCreate does when the TCB cannot be allocated */
            w->ops++;
            out_of_memory(w);
            return;
        }
        fill(o.b, o.nb, (uint8_t)~o.tag);
    }
    w->live[w->n++] = o;
}

#if defined(RTOS_HEAP_2) || defined(RTOS_HEAP_4) || defined(RTOS_HEAP_5)
static void resize_buffer(struct world *w) {
    for (int i = 0; i < w->n; i++) {
        struct object *o = &w->live[i];
        if (o->kind != BUFFER) continue;
        size_t n = 1 + below(w, 1200);
        uint8_t *p = pvPortRealloc(o->a, n);
        w->ops++;
        if (!p) { /* the old block is untouched */
            verify(o->a, o->na, o->tag);
            out_of_memory(w);
            return;
        }
        verify(p, n < o->na ? n : o->na, o->tag);
        fill(p, n, o->tag);
        o->a = p;
        o->na = n;
        return;
    }
}
#endif

static void step(struct world *w) {
    size_t r = below(w, 100);
    if (r < 12) create(w, TASK);
    else if (r < 20) create(w, QUEUE);
    else if (r < 28) create(w, TIMER);
    else if (r < 55) create(w, BUFFER);
#if defined(RTOS_HEAP_2) || defined(RTOS_HEAP_4) || defined(RTOS_HEAP_5)
    else if (r < 60) resize_buffer(w);
#endif
#ifndef RTOS_HEAP_1
    else if (w->n > 0) delete_at(w, (int)below(w, (size_t)w->n));
#endif
}

static void check_phase(struct world *w, int threads) {
    uintptr_t where = 0;
    int32_t code = xPortCheckHeap(&where);
    if (code != heapCHECK_OK) {
        fprintf(stderr, "xPortCheckHeap: %d at %#lx\n", code, (unsigned long)where);
        exit(1);
    }
    for (int i = 0; i < w->n; i++) verify(w->live[i].a, w->live[i].na, w->live[i].tag);
#if !defined(RTOS_HEAP_1) && !defined(RTOS_HEAP_3)
    if (threads == 1) {
        /* Each live object holds its blocks: allocations - frees = blocks alive. */
        HeapStatsEx_t s = stats_ex();
        size_t blocks = 0;
        for (int i = 0; i < w->n; i++) blocks += w->live[i].b ? 2 : 1;
        CHECK_EQ(s.xNumberOfSuccessfulAllocations - s.xNumberOfSuccessfulFrees, blocks);
        CHECK_EQ(s.xNumberOfRejectedFrees, 0);
        CHECK(s.xMinimumEverFreeBytesRemaining <= s.xAvailableHeapSpaceInBytes);
    }
#else
    (void)threads;
#endif
}

struct job {
    struct world w;
    unsigned long target;
    int threads;
};

static void *run(void *arg) {
    struct job *j = arg;
    for (int phase = 0; phase < 10; phase++) {
        unsigned long end = j->target * (unsigned long)(phase + 1) / 10;
        while (j->w.ops < end) step(&j->w);
        check_phase(&j->w, j->threads);
    }
    while (j->w.n > 0) delete_at(&j->w, j->w.n - 1);
    check_phase(&j->w, j->threads);
    return NULL;
}

int main(int argc, char **argv) {
    unsigned long ops = argc > 1 ? strtoul(argv[1], NULL, 10) : 120000;
    int threads = argc > 2 ? atoi(argv[2]) : 1;
    kernel_init();
#ifdef RTOS_HEAP_5
    HeapRegion_t regions[] = {{arena, 9000}, {arena + 9216, 24000}, {arena + 36000, TOTAL_HEAP_SIZE - 36000}, {NULL, 0}};
    vPortDefineHeapRegions(regions);
#endif
    static struct job jobs[8];
    if (threads < 1 || threads > 8) threads = 1;
    for (int t = 0; t < threads; t++) {
        jobs[t].w.rng = 0x9E3779B97F4A7C15ull * (uint64_t)(t + 1);
        jobs[t].target = ops / (unsigned long)threads;
        jobs[t].threads = threads;
    }
    if (threads == 1) {
        run(&jobs[0]);
    } else {
#ifdef THREADS
        pthread_t tid[8];
        for (int t = 0; t < threads; t++) CHECK(pthread_create(&tid[t], NULL, run, &jobs[t]) == 0);
        for (int t = 0; t < threads; t++) pthread_join(tid[t], NULL);
#else
        fprintf(stderr, "built without THREADS\n");
        return 2;
#endif
    }
    unsigned long total = 0, failures = 0, restarts = 0;
    for (int t = 0; t < threads; t++) {
        total += jobs[t].w.ops;
        failures += jobs[t].w.failures;
        restarts += jobs[t].w.restarts;
    }
    CHECK(total >= ops);
    CHECK_EQ(suspend_depth, 0);
    HeapStatsEx_t s = stats_ex();
    CHECK_EQ(s.xNumberOfRejectedFrees, 0);
#if !defined(RTOS_HEAP_1) && !defined(RTOS_HEAP_3)
    CHECK_EQ(s.xNumberOfSuccessfulAllocations, s.xNumberOfSuccessfulFrees); /* all deleted */
#endif
#if defined(RTOS_HEAP_4)
    CHECK_EQ(xPortGetFreeHeapSize(), TOTAL_HEAP_SIZE - HS); /* merged back into one block */
#endif
    printf("workload: %lu heap operations in %d thread(s), %lu allocation failures, %lu restarts\n",
           total, threads, failures, restarts);
    return 0;
}
