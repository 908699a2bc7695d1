/* SPDX-License-Identifier: MIT */
/* realloc across the tiers: growth 1 B -> 4 MiB and back and big jumps between tiers keep the content;
 * realloc(p, 0) gives a freeable block; a size within the usable size returns p itself; walks from 1 B to
 * 64 MiB and back by factors of 1.5 with +1/-1 steps around the tier and class edges, on the default heap
 * and on a private one (also through hak_realloc), checking content, tier, heap and usable size at every
 * step; sizes in the same class stay in place; realloc to 0 and realloc(NULL) in every tier. (Large-block
 * realloc, mremap and LARGE_FAR: bigcache/test_large_blocks.c.) */
#include "hakmem_test.h"
#include <sys/mman.h>

/* Continues the fill pattern of p (tag) over bytes [from, to) (nothing if to <= from). */
static void extend_pattern(unsigned char *p, size_t from, size_t to, uint64_t tag) {
    if (to <= from)
        return;
    unsigned char *tmp = malloc(to);
    assert_non_null(tmp);
    ht_fill(tmp, to, tag);
    memcpy(p + from, tmp + from, to - from);
    free(tmp);
}

/* realloc growth 1 B -> 4 MiB and back, through tiny, pool and large, keeps content. */
static void test_realloc_walk(void **state) {
    (void)state;
    const uint64_t tag = 777;
    size_t cur = 1;
    unsigned char *p = hak_alloc(cur);
    assert_non_null(p);
    ht_fill(p, cur, tag);
    size_t steps[200];
    size_t ns = 0;
    for (size_t n = 1; n <= 4 * HT_MIB && ns < 200; n = n * 5 / 4 + 7)
        steps[ns++] = n;
    for (size_t i = 0; i < ns; i++) {
        size_t n = steps[i];
        unsigned char *q = hak_realloc(p, n);
        if (!q)
            fail_msg("hak_realloc(%p, %zu) = NULL", (void *)p, n);
        if (hak_usable_size(q) < n)
            fail_msg("usable %zu < %zu after realloc", hak_usable_size(q), n);
        size_t keep = cur < n ? cur : n;
        size_t bad = ht_check(q, keep, tag);
        if (bad != (size_t)-1)
            fail_msg("grow %zu -> %zu: byte %zu lost", cur, n, bad);
        assert_ptr_equal(hak_heap_of(q), hak_heap_default());
        extend_pattern(q, keep, n, tag);
        p = q;
        cur = n;
    }
    for (size_t i = ns; i-- > 0;) {
        size_t n = steps[i] / 2 + 1;
        unsigned char *q = hak_realloc(p, n);
        if (!q)
            fail_msg("hak_realloc(%p, %zu) = NULL", (void *)p, n);
        if (hak_usable_size(q) < n)
            fail_msg("usable %zu < %zu after realloc", hak_usable_size(q), n);
        size_t bad = ht_check(q, n < cur ? n : cur, tag);
        if (bad != (size_t)-1)
            fail_msg("shrink %zu -> %zu: byte %zu lost", cur, n, bad);
        extend_pattern(q, cur, n, tag);
        p = q;
        cur = n;
    }
    hak_free(p);
}

/* Big jumps between tiers in both directions. */
static void test_realloc_jumps(void **state) {
    (void)state;
    static const size_t seq[] = {24, 6000, 40, 200000, 100, 5 << 20, 16, 3 << 20, 9 << 20, 70000, 8};
    size_t cur = 10;
    unsigned char *p = hak_alloc(cur);
    assert_non_null(p);
    ht_fill(p, cur, 5);
    for (size_t i = 0; i < sizeof seq / sizeof seq[0]; i++) {
        size_t n = seq[i];
        unsigned char *q = hak_realloc(p, n);
        assert_non_null(q);
        assert_true(hak_usable_size(q) >= n);
        size_t keep = cur < n ? cur : n;
        size_t bad = ht_check(q, keep, 5);
        if (bad != (size_t)-1)
            fail_msg("realloc %zu -> %zu: byte %zu lost", cur, n, bad);
        ht_fill(q, n, 5);
        p = q;
        cur = n;
    }
    hak_free(p);
}

static void test_realloc_zero(void **state) {
    (void)state;
    static const size_t sizes[] = {1, 100, 5000, 100000, 2 << 20};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        void *p = hak_alloc(sizes[i]);
        assert_non_null(p);
        void *q = hak_realloc(p, 0);
        assert_non_null(q);
        assert_ptr_equal(hak_heap_of(q), hak_heap_default());
        hak_free(q);
    }
}

/* A new size within the usable size (and not far below it) returns p itself. */
static void test_realloc_in_place(void **state) {
    (void)state;
    static const size_t sizes[] = {1,     24,     100,    500,     1000,          3000,    8000,
                                   20000, 100000, 200000, 1 << 20, (5 << 20) + 3, 12 << 20};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        size_t n = sizes[i];
        void *p = hak_alloc(n);
        assert_non_null(p);
        size_t u = hak_usable_size(p);
        ht_fill(p, n, n);
        void *q = hak_realloc(p, u);
        if (q != p)
            fail_msg("hak_realloc(p, usable=%zu) of a %zu B block moved it", u, n);
        q = hak_realloc(p, n);
        if (q != p)
            fail_msg("hak_realloc(p, %zu) of a %zu B block (usable %zu) moved it", n, n, u);
        if (u > 1) {
            q = hak_realloc(p, u - 1);
            if (q != p)
                fail_msg("hak_realloc(p, %zu) of a %zu B block (usable %zu) moved it", u - 1, n, u);
        }
        assert_int_equal(ht_check(p, n, n), (size_t)-1);
        hak_free(p);
    }
}

/* One realloc step with the checks of ht_realloc_step (kept content, tier, heap, alignment, usable size). */
static hak_heap_t *g_owner; /* expected heap of the blocks when step() is called with heap == NULL */

static unsigned char *step(hak_heap_t *heap, unsigned char *p, size_t *n, size_t m, uint64_t tag) {
    return ht_realloc_step(heap, g_owner, p, n, m, tag);
}

static void walk(hak_heap_t *heap) {
    hak_heap_t *owner = heap ? heap : hak_heap_default();
    hak_stats_t before = ht_stats(owner);
    const uint64_t tag = 0x1234;
    size_t n = 1;
    unsigned char *p = heap ? hak_heap_alloc(heap, 1) : hak_alloc(1);
    assert_non_null(p);
    ht_fill_range(p, 0, 1, tag);
    /* up by *1.5 to 64 MiB */
    for (size_t m = 2; m <= 64 * HT_MIB; m = m + m / 2 + 1)
        p = step(heap, p, &n, m, tag);
    p = step(heap, p, &n, 64 * HT_MIB, tag);
    /* and back down */
    for (size_t m = 64 * HT_MIB; m >= 1; m = m * 2 / 3)
        p = step(heap, p, &n, m, tag);
    /* +1/-1 around the tier edges, both directions, entering each edge from afar */
    static const size_t edges[] = {HAK_TINY_MAX_SIZE, HAK_SLAB_MAX_SIZE, 2 * HT_MIB - HT_LARGE_HEADER,
                                   2 * HT_MIB, 16 * HT_MIB};
    for (size_t e = 0; e < sizeof edges / sizeof edges[0]; e++) {
        size_t x = edges[e];
        static const ptrdiff_t seq[] = {-1, 0, 1, 0, -1, 1, -1, 2, -2};
        p = step(heap, p, &n, x / 4, tag);
        for (size_t i = 0; i < sizeof seq / sizeof seq[0]; i++)
            p = step(heap, p, &n, (size_t)((ptrdiff_t)x + seq[i]), tag);
        p = step(heap, p, &n, x * 4, tag);
        for (size_t i = 0; i < sizeof seq / sizeof seq[0]; i++)
            p = step(heap, p, &n, (size_t)((ptrdiff_t)x - seq[i]), tag);
    }
    hak_free(p);
    hak_stats_t after = ht_stats(owner);
    assert_int_equal(after.live_blocks, before.live_blocks);
    assert_int_equal(after.large_blocks, before.large_blocks);
}

static void test_realloc_walk_default(void **state) {
    (void)state;
    walk(NULL);
}

static void test_realloc_walk_private(void **state) {
    (void)state;
    hak_heap_options_t o = {0, "tiers-realloc"};
    hak_heap_t *h = hak_heap_create(&o);
    assert_non_null(h);
    walk(h);
    /* hak_realloc (default-heap entry point) on a private block keeps the private heap too */
    unsigned char *p = hak_heap_alloc(h, 100);
    assert_non_null(p);
    size_t n = 100;
    ht_fill_range(p, 0, n, 9);
    g_owner = h;
    static const size_t to[] = {20000, 300000, 5 * HT_MIB, 100, 1};
    for (size_t i = 0; i < sizeof to / sizeof to[0]; i++) {
        p = step(NULL, p, &n, to[i], 9);
        if (hak_heap_of(p) != h)
            fail_msg("hak_realloc moved a private block to another heap (size %zu)", to[i]);
    }
    g_owner = NULL;
    hak_free(p);
    hak_heap_destroy(h);
}

/* A new size in the same class (slab tiers), or within the usable size (large), returns p itself. */
static void test_realloc_same_class_in_place(void **state) {
    (void)state;
    ht_build_classes();
    for (unsigned i = 0; i < ht_class_count; i++) {
        size_t s = ht_classes[i], prev = i ? ht_classes[i - 1] : 0;
        unsigned char *p = hak_alloc(s);
        assert_non_null(p);
        ht_fill(p, s, s);
        size_t news[] = {s, s - 1, prev + 1, (s + prev) / 2 + 1};
        for (size_t j = 0; j < 4; j++) {
            size_t m = news[j];
            if (m < s / 2 && s > 32)
                continue; /* "not far below": not required to stay */
            unsigned char *q = hak_realloc(p, m);
            if (q != p)
                fail_msg("realloc(hak_alloc(%zu), %zu) moved the block (%p -> %p)", s, m, (void *)p,
                         (void *)q);
            assert_int_equal(hak_usable_size(q), s);
        }
        HT_ASSERT_PATTERN(p, 0, s, s, "class %zu after in-place reallocs", s);
        hak_free(p);
    }
    static const size_t large[] = {HAK_SLAB_MAX_SIZE + 1, HT_MIB, 3 * HT_MIB + 7, 40 * HT_MIB};
    for (size_t i = 0; i < sizeof large / sizeof large[0]; i++) {
        size_t n = large[i];
        unsigned char *p = hak_alloc(n);
        assert_non_null(p);
        size_t u = hak_usable_size(p);
        ht_fill_range(p, 0, 4096, n);
        size_t news[] = {u, u - 1, n, n - 1, n / 2 + n / 4};
        for (size_t j = 0; j < sizeof news / sizeof news[0]; j++) {
            unsigned char *q = hak_realloc(p, news[j]);
            if (q != p)
                fail_msg("realloc(hak_alloc(%zu) [usable %zu], %zu) moved the block", n, u, news[j]);
            assert_true(hak_usable_size(q) >= news[j]);
        }
        HT_ASSERT_PATTERN(p, 0, 4096, n, "large block %zu after in-place reallocs", n);
        hak_free(p);
    }
}

/* realloc(p, 0) returns a freeable non-NULL block and releases p (when it moves). */
static void test_realloc_zero_every_tier(void **state) {
    (void)state;
    static const size_t sizes[] = {1, 16, 100, 8192, 8193, 100000, 262144, 262145, 5 * HT_MIB};
    hak_stats_t before = ht_stats(hak_heap_default());
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        unsigned char *p = hak_alloc(sizes[i]);
        assert_non_null(p);
        memset(p, 1, sizes[i]);
        unsigned char *q = hak_realloc(p, 0);
        if (q == NULL)
            fail_msg("realloc(hak_alloc(%zu), 0) returned NULL", sizes[i]);
        if (q != p && sizes[i] > HAK_SLAB_MAX_SIZE && hak_heap_of(p) != NULL)
            fail_msg("realloc(large %zu, 0) moved but left the old block live", sizes[i]);
        if (q != p && hak_usable_size(q) > 64)
            fail_msg("realloc(hak_alloc(%zu), 0) gave a new block of %zu bytes", sizes[i],
                     hak_usable_size(q));
        hak_stats_t mid = ht_stats(hak_heap_default());
        if (mid.live_blocks != before.live_blocks + 1)
            fail_msg("realloc(hak_alloc(%zu), 0): %llu live blocks, expected %llu", sizes[i],
                     (unsigned long long)mid.live_blocks, (unsigned long long)before.live_blocks + 1);
        hak_free(q);
    }
    hak_stats_t after = ht_stats(hak_heap_default());
    assert_int_equal(after.live_blocks, before.live_blocks);
    /* realloc(NULL, n) in every tier */
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        unsigned char *p = hak_realloc(NULL, sizes[i]);
        assert_non_null(p);
        assert_int_equal(ht_tier_of(p), ht_expected_tier(sizes[i]));
        hak_free(p);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_realloc_walk),
        cmocka_unit_test(test_realloc_jumps),
        cmocka_unit_test(test_realloc_zero),
        cmocka_unit_test(test_realloc_in_place),
        cmocka_unit_test(test_realloc_walk_default),
        cmocka_unit_test(test_realloc_walk_private),
        cmocka_unit_test(test_realloc_same_class_in_place),
        cmocka_unit_test(test_realloc_zero_every_tier),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
