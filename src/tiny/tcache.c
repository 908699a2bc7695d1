/* SPDX-License-Identifier: MIT */
/* Thread cache: its per-class limits, and the flush that returns cached blocks to their spans. */
#include "tiny/tcache.h"

#include "tiny/tiny.h"

/* Tiny classes keep up to 64 blocks, and at most 64 KiB of them (but at least 16 blocks). A free and an
 * allocation in random order move the count like a random walk; with room for C blocks about one operation
 * in C reaches the spans. Pool classes have no cache: their blocks are big and each one would pin a span. */
#define TC_BYTES 65536u
#define TC(b) ((TC_BYTES / (b)) > 64u ? 64u : (TC_BYTES / (b)) < 16u ? 16u : (TC_BYTES / (b)))
#define TCQ(b) TC((b) + (b) / 4), TC((b) + (b) / 2), TC((b) + 3 * (b) / 4), TC(2 * (b))
const uint16_t hak_tcache_limit[HAK_CLASS_COUNT] = {
    TC(16),  TC(32),   TC(48),   TC(64),   TC(80),    TC(96),    TC(112),
    TC(128), TCQ(128), TCQ(256), TCQ(512), TCQ(1024), TCQ(2048), TCQ(4096),
};

void hak_tcache_init(hak_theap_t *th) {
    for (unsigned c = 0; c < HAK_CLASS_COUNT; c++) {
        th->tc_head[c] = NULL;
        hak_store_relaxed(&th->tc_room[c], (uintptr_t)hak_tcache_limit[c]);
    }
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

void hak_tcache_flush(hak_theap_t *th) {
    for (unsigned c = 0; c < HAK_CLASS_COUNT; c++) {
        hak_block_t *b = th->tc_head[c];
        if (b == NULL)
            continue;
        th->tc_head[c] = NULL;
        tcache_release(th, c, b);
        /* a list cut short by a corrupted link leaves blocks that can never come back: room for all again */
        hak_store_relaxed(&th->tc_room[c], (uintptr_t)hak_tcache_limit[c]);
    }
}
