/* SPDX-License-Identifier: MIT */
/* The adaptive thread cache: a class that keeps refilling from its spans grows its cache (doubling) up to
 * 2048 blocks and 64 KiB, never beyond; hak_collect halves it, down to 16 blocks; the statistics count the
 * cached blocks right at every size. Seen through hak_stats_t.tcache_capacity, in a private heap of this
 * thread only. */
#include "hakmem_test.h"

enum {
    ROUNDS = 6,
    MAX_ROUNDS = 64,
    BLOCKS = 12000,
    TC_CAP_BLOCKS = 2048,
    TC_CAP_BYTES = 65536,
    TC_FLOOR = 16
};

void hak_test_hook_tcache_resize(void); /* the library's weak no-op, replaced here */

static hak_heap_t *hooked_heap; /* set while a test looks at resizes */
static int hooked_cls;
static uint64_t held_now; /* blocks of the class the test holds at this moment */
static uint64_t resizes, miscounts;

/* Mid-change of a capacity (between its two stores): the statistics must count exactly the blocks held. */
void hak_test_hook_tcache_resize(void) {
    if (hooked_heap == NULL)
        return;
    hak_stats_t st;
    ht_get_stats(hooked_heap, &st);
    resizes++;
    if (st.classes[hooked_cls].live_blocks != held_now)
        miscounts++;
}

static const size_t sizes[] = {16, 32, 64, 128, 256, 1024, 4096};

static uint32_t capacity(hak_heap_t *h, int cls) { return ht_stats(h).tcache_capacity[cls]; }

/* Makes this thread's heap for h exist (its caches at their starting size) and returns the class of bs. */
static int start_class(hak_heap_t *h, size_t bs) {
    hak_free(hak_heap_alloc(h, bs));
    hak_stats_t st = ht_stats(h);
    int cls = ht_class_index(&st, bs);
    assert_true(cls >= 0);
    return cls;
}

/* The largest capacity a class may reach: 2048 blocks and 64 KiB, or its starting size if that is more. */
static uint32_t bound(uint32_t start, size_t bs) {
    uint32_t by_bytes = (uint32_t)(TC_CAP_BYTES / bs);
    uint32_t b = by_bytes < TC_CAP_BLOCKS ? by_bytes : TC_CAP_BLOCKS;
    return b > start ? b : start;
}

/* Allocates BLOCKS blocks and frees them, round after round (the cache overflows into the spans, and the
 * next round's allocations empty it and refill from those spans), until the capacity reaches its bound or
 * MAX_ROUNDS, checking after each round that it stays within the bound. */
static void refill_heavy(hak_heap_t *h, size_t bs, int cls, uint32_t start, void **blocks) {
    for (int r = 0; r < MAX_ROUNDS && capacity(h, cls) < bound(start, bs); r++) {
        for (int i = 0; i < BLOCKS; i++) {
            blocks[i] = hak_heap_alloc(h, bs);
            assert_non_null(blocks[i]);
        }
        uint32_t cap = capacity(h, cls);
        assert_true(cap <= bound(start, bs));
        for (int i = 0; i < BLOCKS; i++)
            hak_free(blocks[i]);
    }
}

static void test_grows_to_its_bound_and_halves_at_collect(void **state) {
    (void)state;
    void **blocks = calloc(BLOCKS, sizeof *blocks);
    assert_non_null(blocks);
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        size_t bs = sizes[k];
        hak_heap_t *h = hak_heap_create(NULL);
        assert_non_null(h);
        int cls = start_class(h, bs);
        uint32_t start = capacity(h, cls);
        assert_true(start >= TC_FLOOR);
        refill_heavy(h, bs, cls, start, blocks);
        uint32_t grown = capacity(h, cls);
        print_message("%zu B: capacity %u -> %u blocks\n", bs, start, grown);
        assert_int_equal(grown, bound(start, bs));
        assert_true(grown <= TC_CAP_BLOCKS || grown == start);
        /* each collect halves it, down to the floor, never below */
        uint32_t prev = grown;
        for (int i = 0; i < 12; i++) {
            hak_collect(0);
            uint32_t now = capacity(h, cls);
            uint32_t want = prev / 2 > TC_FLOOR ? prev / 2 : TC_FLOOR;
            assert_int_equal(now, prev > TC_FLOOR ? want : prev);
            prev = now;
        }
        assert_int_equal(prev, TC_FLOOR);
        hak_heap_destroy(h);
    }
    free(blocks);
}

/* While a cache grows, the class's live blocks in the statistics stay exactly the blocks held. */
static void test_stats_count_cached_blocks_while_growing(void **state) {
    (void)state;
    enum { HELD = 100 };
    void **blocks = calloc(BLOCKS, sizeof *blocks);
    assert_non_null(blocks);
    hak_heap_t *h = hak_heap_create(NULL);
    assert_non_null(h);
    size_t bs = 32;
    int cls = start_class(h, bs);
    uint32_t start = capacity(h, cls), last = start;
    hak_stats_t st;
    for (int r = 0; r < ROUNDS; r++) {
        for (int i = 0; i < BLOCKS; i++)
            blocks[i] = hak_heap_alloc(h, bs);
        st = ht_stats(h);
        assert_int_equal(st.classes[cls].live_blocks, BLOCKS);
        for (int i = HELD; i < BLOCKS; i++) /* the cache fills up to its capacity, the rest to the spans */
            hak_free(blocks[i]);
        st = ht_stats(h);
        assert_int_equal(st.classes[cls].live_blocks, HELD);
        assert_int_equal(st.live_blocks, HELD);
        assert_true(st.tcache_capacity[cls] >= last);
        last = st.tcache_capacity[cls];
        for (int i = 0; i < HELD; i++)
            hak_free(blocks[i]);
        assert_int_equal(ht_stats(h).classes[cls].live_blocks, 0);
    }
    print_message("capacity of the 32 B class after the rounds: %u\n", last);
    assert_true(last > start);
    hak_heap_destroy(h);
    free(blocks);
}

/* A walk in the middle of a growth or a shrink (forced there by the resize hook) counts the class right. */
static void test_stats_mid_resize_count_right(void **state) {
    (void)state;
    void **blocks = calloc(BLOCKS, sizeof *blocks);
    assert_non_null(blocks);
    hak_heap_t *h = hak_heap_create(NULL);
    assert_non_null(h);
    size_t bs = 16;
    hooked_cls = start_class(h, bs);
    hooked_heap = h;
    for (int r = 0; r < ROUNDS; r++) {
        for (int i = 0; i < BLOCKS; i++) {
            blocks[i] = hak_heap_alloc(h, bs);
            held_now++;
        }
        for (int i = 0; i < BLOCKS; i++) {
            hak_free(blocks[i]);
            held_now--;
        }
    }
    uint64_t grows = resizes;
    for (int i = 0; i < 8; i++)
        hak_collect(0); /* shrinks, each between two stores too */
    hooked_heap = NULL;
    print_message("%llu resizes (%llu growths), %llu miscounted\n", (unsigned long long)resizes,
                  (unsigned long long)grows, (unsigned long long)miscounts);
    assert_true(grows >= 2 && resizes > grows);
    assert_int_equal(miscounts, 0);
    hak_heap_destroy(h);
    free(blocks);
}

/* A grown class that sits idle while the thread's other classes reach the slow path halves back towards its
 * starting size, and no further. */
static void test_idle_class_shrinks_to_its_start(void **state) {
    (void)state;
    enum { IDLE_EPOCH = 1024, BIG = 1024, BIG_MAX = 20000 };
    void **blocks = calloc((size_t)BIG_MAX + BLOCKS, sizeof *blocks);
    assert_non_null(blocks);
    hak_heap_t *h = hak_heap_create(NULL);
    assert_non_null(h);
    size_t bs = 32;
    int cls = start_class(h, bs);
    uint32_t start = capacity(h, cls);
    refill_heavy(h, bs, cls, start, blocks);
    uint32_t grown = capacity(h, cls);
    assert_true(grown > start);
    /* slow allocations of another class only: fresh 1 KiB blocks, a page carved every few of them */
    uint64_t slow0 = ht_stats(h).alloc_slow;
    int n = 0;
    while (n < BIG_MAX && ht_stats(h).alloc_slow - slow0 < 4 * IDLE_EPOCH) {
        for (int i = 0; i < 64 && n < BIG_MAX; i++)
            blocks[n++] = hak_heap_alloc(h, BIG);
    }
    uint32_t idle = capacity(h, cls);
    print_message("32 B class: %u -> %u (start %u) after %llu slow allocations of another class\n", grown,
                  idle, start, (unsigned long long)(ht_stats(h).alloc_slow - slow0));
    assert_true(ht_stats(h).alloc_slow - slow0 >= 4 * IDLE_EPOCH);
    assert_true(idle < grown);
    assert_true(idle >= start);
    for (int i = 0; i < n; i++)
        hak_free(blocks[i]);
    hak_heap_destroy(h);
    free(blocks);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_grows_to_its_bound_and_halves_at_collect),
        cmocka_unit_test(test_stats_count_cached_blocks_while_growing),
        cmocka_unit_test(test_stats_mid_resize_count_right),
        cmocka_unit_test(test_idle_class_shrinks_to_its_start),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
