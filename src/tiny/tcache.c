/* SPDX-License-Identifier: MIT */
/* Thread cache: its per-class limits and how they adapt, and the flush that returns cached blocks to their
 * spans. */
#include "tiny/tcache.h"

#include "tiny/tiny.h"

/* Tiny classes start with room for 64 blocks, and at most 64 KiB of them (but at least 16 blocks): the
 * fixed sizes of the first design, so a thread that never refills often keeps today's footprint. A free and
 * an allocation in random order move the count like a random walk; with room for C blocks about one
 * operation in C reaches the spans. Pool classes have no cache: their blocks are big and each one would pin
 * a span. */
#define TC_BYTES 65536u
#define TC(b) ((TC_BYTES / (b)) > 64u ? 64u : (TC_BYTES / (b)) < 16u ? 16u : (TC_BYTES / (b)))
#define TCQ(b) TC((b) + (b) / 4), TC((b) + (b) / 2), TC((b) + 3 * (b) / 4), TC(2 * (b))
const uint16_t hak_tcache_initial[HAK_CLASS_COUNT] = {
    TC(16),  TC(32),   TC(48),   TC(64),   TC(80),    TC(96),    TC(112),
    TC(128), TCQ(128), TCQ(256), TCQ(512), TCQ(1024), TCQ(2048), TCQ(4096),
};

/* A cache grows up to 2048 blocks and 64 KiB (never below its starting size): one slab's worth, the bound
 * the classes of 1 KiB and up had already, so growth gives no class more than 64 KiB of cached blocks (the
 * 5-8 KiB classes keep their 16 blocks) and a thread at most 64 KiB per tiny class. */
#define TC_MAX_BLOCKS 2048u
#define TCM_(b, t)                                                                                           \
    ((TC_BYTES / (b)) > TC_MAX_BLOCKS ? TC_MAX_BLOCKS : (TC_BYTES / (b)) < (t) ? (t) : (TC_BYTES / (b)))
#define TCM(b) TCM_((b), TC(b))
#define TCMQ(b) TCM((b) + (b) / 4), TCM((b) + (b) / 2), TCM((b) + 3 * (b) / 4), TCM(2 * (b))
const uint16_t hak_tcache_max[HAK_CLASS_COUNT] = {
    TCM(16),  TCM(32),   TCM(48),   TCM(64),   TCM(80),    TCM(96),    TCM(112),
    TCM(128), TCMQ(128), TCMQ(256), TCMQ(512), TCMQ(1024), TCMQ(2048), TCMQ(4096),
};
#define TC_FLOOR 16u

/* The smallest capacity of class cls: 16 blocks, 0 for a class without cache. */
static uint32_t tc_floor(unsigned cls) {
    return hak_tcache_initial[cls] < TC_FLOOR ? hak_tcache_initial[cls] : TC_FLOOR;
}

/* Growth: two refills from spans other than the current one (blocks freed there because the cache was
 * full; not fresh spans nor carving) with the cache empty since the class's last change double it. Idle
 * shrink, without a timer: the thread's slow allocations are the clock; a class grown beyond its starting
 * size that did not refill during one epoch of them halves (not below its starting size). A flush
 * (hak_collect, memory pressure) halves every cache, down to 16 blocks. */
#define TC_GROW_MISSES 2u
#define TC_IDLE_EPOCH 1024u

void hak_tcache_init(hak_theap_t *th) {
    for (unsigned c = 0; c < HAK_CLASS_COUNT; c++) {
        th->tc_head[c] = NULL;
        th->tc_misses[c] = 0;
        hak_store_relaxed(&th->tc_limit[c], hak_tcache_initial[c]);
        hak_store_relaxed(&th->tc_room[c], (uintptr_t)hak_tcache_initial[c]);
    }
    th->tc_active = 0;
}

/* Test hook, called after each run a flush returns (tests define it to look at statistics mid-flush). */
__attribute__((weak)) void hak_test_hook_tcache_flush_run(void) {}

/* Returns the cached blocks of class cls to their spans. Consecutive blocks of one span (the usual case: a
 * thread's blocks of a class come from few spans) go back as one run, with one update of the span's list and
 * count. The cache's room grows run by run, after the span's count has dropped, so a statistics walk (which
 * reads the room before the spans, tiny/tcache.h) never counts a block both as used in its span and as not
 * cached: it may count a returning run as neither for a moment, never as live. */
static void tcache_release(hak_theap_t *th, unsigned cls, hak_block_t *b) {
    while (b != NULL) {
        hak_superslab_t *ss = hak_ss_of(b);
        hak_span_t *s = hak_span_of(ss, b);
        uintptr_t start = (uintptr_t)s->start, carved = (uintptr_t)s->capacity * s->block_size;
        hak_block_t *first = b, *last = b;
        uint32_t n = 1;
        for (b = hak_block_peek_next(b, "thread cache"); b != NULL && (uintptr_t)b - start < carved;
             b = hak_block_peek_next(b, "thread cache")) {
            last = b;
            n++;
        }
        hak_span_push_local(th, ss, s, first, last, n);
        __atomic_thread_fence(__ATOMIC_RELEASE);
        hak_tcache_room_add(&th->tc_room[cls], n);
        hak_test_hook_tcache_flush_run();
    }
}

/* Empties the cache of class cls (owner thread). */
static void tcache_empty(hak_theap_t *th, unsigned cls) {
    hak_block_t *b = th->tc_head[cls];
    if (b == NULL)
        return;
    th->tc_head[cls] = NULL;
    tcache_release(th, cls, b);
    /* a list cut short by a corrupted link leaves blocks that can never come back: room for all again */
    hak_store_relaxed(&th->tc_room[cls], (uintptr_t)th->tc_limit[cls]);
}

/* Changes the limit of the empty cache of class cls (room == limit). Readers (hak_tcache_count) read the
 * limit, room, then the limit again. Growth raises room first, then the limit (release): a reader that saw
 * the new limit sees the new room, and one that saw the old limit twice may see the new room, which counts 0.
 * Shrinking lowers the limit first, then room (release): a reader that saw the new room sees the new limit
 * after it, and the old room above the new limit counts 0. Either way the empty cache counts 0. */
/* Test hook, called between the two stores of a change of limit (tests look at statistics there). */
__attribute__((weak)) void hak_test_hook_tcache_resize(void) {}

static void tcache_resize(hak_theap_t *th, unsigned cls, uint32_t limit) {
    uint32_t old = th->tc_limit[cls];
    th->tc_misses[cls] = 0;
    if (limit > old) {
        __atomic_thread_fence(__ATOMIC_RELEASE);
        hak_tcache_room_add(&th->tc_room[cls], limit - old);
        hak_test_hook_tcache_resize();
        __atomic_store_n(&th->tc_limit[cls], (uint16_t)limit, __ATOMIC_RELEASE);
    } else if (limit < old) {
        tcache_empty(th, cls);
        hak_store_relaxed(&th->tc_limit[cls], (uint16_t)limit);
        hak_test_hook_tcache_resize();
        __atomic_store_n(&th->tc_room[cls], (uintptr_t)limit, __ATOMIC_RELEASE);
    }
}

static void tcache_halve(hak_theap_t *th, unsigned cls) {
    uint32_t half = th->tc_limit[cls] / 2u;
    tcache_resize(th, cls, half > tc_floor(cls) ? half : tc_floor(cls));
}

void hak_tcache_flush(hak_theap_t *th) {
    for (unsigned c = 0; c < HAK_CLASS_COUNT; c++) {
        tcache_empty(th, c);
        if (th->tc_limit[c] > tc_floor(c))
            tcache_halve(th, c);
    }
}

void hak_tcache_on_miss(hak_theap_t *th, unsigned cls) {
    /* the fast path comes here only with the cache empty */
    if (th->tc_head[cls] == NULL && th->tc_limit[cls] < hak_tcache_max[cls] &&
        ++th->tc_misses[cls] >= TC_GROW_MISSES) {
        uint32_t twice = 2u * th->tc_limit[cls];
        tcache_resize(th, cls, twice < hak_tcache_max[cls] ? twice : hak_tcache_max[cls]);
    }
}

void hak_tcache_on_slow(hak_theap_t *th, unsigned cls) {
    _Static_assert(HAK_CLASS_COUNT <= 64, "tc_active has a bit per class");
    th->tc_active |= 1ull << cls;
    if (th->counts.alloc_slow % TC_IDLE_EPOCH != 0)
        return;
    for (unsigned c = 0; c < HAK_CLASS_COUNT; c++)
        if (!(th->tc_active & (1ull << c)) && th->tc_limit[c] > hak_tcache_initial[c]) {
            uint32_t half = th->tc_limit[c] / 2u; /* idle: back towards the starting size, not below */
            tcache_resize(th, c, half > hak_tcache_initial[c] ? half : hak_tcache_initial[c]);
        }
    th->tc_active = 0;
}
