/* SPDX-License-Identifier: MIT */
/* Aligned allocation: alignments 1 B .. 2 MiB times sizes of every tier (aligned, usable >= size, owned by
 * the default heap, intact, realloc'd with the content kept); many small aligned blocks live at once; the
 * matrix of alignments 16 B .. 4 MiB times sizes from every tier (0, 1, small, the 8 KiB edge, mid, the
 * 256 KiB edge, large): aligned, usable >= size (exact for large blocks), writable in full, owned by the
 * right heap, freed, and realloc'd with the content kept, on the default heap and on a private one; aligned
 * and plain blocks mixed in the same slabs, freed in shuffled order. (Invalid alignments: test_errors.c.) */
#include "hakmem_test.h"

/* Aligned allocation for alignments 1..2 MiB and sizes through every tier. */
static void test_aligned_alloc(void **state) {
    (void)state;
    static const size_t sizes[] = {0, 1, 16, 33, 100, 1000, 4096, 10000, 70000, 300000, 2 << 20, 3 << 20};
    enum { NS = sizeof sizes / sizeof sizes[0] };
    void *p[NS];
    for (size_t align = 1; align <= ((size_t)1 << 21); align *= 2) {
        for (size_t i = 0; i < NS; i++) {
            size_t n = sizes[i];
            p[i] = hak_aligned_alloc(align, n);
            if (!p[i])
                fail_msg("hak_aligned_alloc(%zu, %zu) = NULL", align, n);
            size_t need = align < 16 ? 16 : align;
            if ((uintptr_t)p[i] % need)
                fail_msg("hak_aligned_alloc(%zu, %zu) = %p misaligned", align, n, p[i]);
            if (hak_usable_size(p[i]) < n)
                fail_msg("hak_aligned_alloc(%zu, %zu): usable %zu", align, n, hak_usable_size(p[i]));
            assert_ptr_equal(hak_heap_of(p[i]), hak_heap_default());
            ht_fill(p[i], n, align * 100 + i);
        }
        for (size_t i = 0; i < NS; i++) {
            size_t bad = ht_check(p[i], sizes[i], align * 100 + i);
            if (bad != (size_t)-1)
                fail_msg("aligned block (align %zu, size %zu) overwritten at %zu", align, sizes[i], bad);
        }
        /* an aligned block is a valid block: realloc keeps content, free works */
        size_t n = sizes[4];
        void *q = hak_realloc(p[4], 5000);
        assert_non_null(q);
        assert_int_equal(ht_check(q, n, align * 100 + 4), (size_t)-1);
        p[4] = q;
        for (size_t i = 0; i < NS; i++)
            hak_free(p[i]);
    }
}

/* Many small aligned blocks live at once: distinct, aligned, intact. */
static void test_aligned_many(void **state) {
    (void)state;
    enum { N = 2000 };
    static void *p[N];
    for (int i = 0; i < N; i++) {
        size_t align = (size_t)16 << (i % 9); /* 16 .. 4096 */
        size_t n = 8 + (size_t)(i * 37 % 700);
        p[i] = hak_aligned_alloc(align, n);
        assert_non_null(p[i]);
        assert_int_equal((uintptr_t)p[i] % align, 0);
        ht_fill(p[i], n, (uint64_t)i);
    }
    for (int i = 0; i < N; i++) {
        size_t n = 8 + (size_t)(i * 37 % 700);
        if (ht_check(p[i], n, (uint64_t)i) != (size_t)-1)
            fail_msg("aligned block %d overwritten", i);
        hak_free(p[i]);
    }
}

static const size_t sizes[] = {0, 1, 100, 8191, 8192, 8193, 100000, 262143, 262144, 262145, 3 * HT_MIB + 5};
#define NSIZES (sizeof sizes / sizeof sizes[0])
#define MAX_ALIGN_SHIFT 22 /* 4 MiB */
#define K 3                /* blocks of each combination live at once */

/* Realloc target for a block of n bytes: another tier where possible. */
static size_t realloc_target(size_t n, int step) {
    if (step == 0)
        return n * 2 + 1000;         /* grow (small ones stay slab, large ones mremap) */
    return n > 2000 ? n / 3 : n + 1; /* shrink (or a tiny nudge) */
}

static void run_matrix(hak_heap_t *heap) {
    hak_heap_t *owner = heap ? heap : hak_heap_default();
    hak_stats_t before = ht_stats(owner);
    for (unsigned shift = 4; shift <= MAX_ALIGN_SHIFT; shift++) {
        size_t a = (size_t)1 << shift;
        for (size_t si = 0; si < NSIZES; si++) {
            size_t n = sizes[si];
            unsigned char *p[K];
            size_t u[K];
            for (int k = 0; k < K; k++) {
                p[k] = heap ? hak_heap_aligned_alloc(heap, a, n) : hak_aligned_alloc(a, n);
                if (p[k] == NULL)
                    fail_msg("aligned_alloc(%zu, %zu) returned NULL", a, n);
                if ((uintptr_t)p[k] % a)
                    fail_msg("aligned_alloc(%zu, %zu) = %p: misaligned", a, n, (void *)p[k]);
                u[k] = hak_usable_size(p[k]);
                if (u[k] < n || u[k] == 0)
                    fail_msg("aligned_alloc(%zu, %zu): usable %zu", a, n, u[k]);
                if (hak_heap_of(p[k]) != owner)
                    fail_msg("aligned_alloc(%zu, %zu): hak_heap_of is wrong", a, n);
                ht_tier_t t = ht_tier_of(p[k]);
                if (t == HT_TIER_NONE)
                    fail_msg("aligned_alloc(%zu, %zu): no tier owns %p", a, n, (void *)p[k]);
                if (n > HAK_SLAB_MAX_SIZE && t != HT_TIER_LARGE)
                    fail_msg("aligned_alloc(%zu, %zu): large size served by tier %s", a, n, ht_tier_names[t]);
                if (a >= HT_CHUNK && hak_region_kind(p[k]) != HAK_REGION_LARGE_FAR)
                    fail_msg("aligned_alloc(%zu, %zu): region kind %u, expected LARGE_FAR", a, n,
                             hak_region_kind(p[k]));
                if (t == HT_TIER_LARGE) {
                    /* exact and tight: the block starts `off` into its mapping (the 64-byte header, the
                     * alignment below 2 MiB, a page for LARGE_FAR) and ends on the page after off + n */
                    size_t off = a >= HT_CHUNK ? HT_PAGE : a > HT_LARGE_HEADER ? a : HT_LARGE_HEADER;
                    size_t tight = ((off + (n ? n : 1) + HT_PAGE - 1) & ~(HT_PAGE - 1)) - off;
                    if (u[k] != tight)
                        fail_msg("aligned_alloc(%zu, %zu): large usable %zu, expected exactly %zu", a, n,
                                 u[k], tight);
                }
                ht_fill(p[k], u[k], shift * 1000 + si * 10 + (size_t)k);
            }
            /* no overlap: every block still holds its own pattern */
            for (int k = 0; k < K; k++)
                HT_ASSERT_PATTERN(p[k], 0, u[k], shift * 1000 + si * 10 + (size_t)k,
                                  "aligned_alloc(%zu, %zu)", a, n);
            /* block 0: freed directly; blocks 1 and 2: realloc'd up / down, then freed */
            hak_free(p[0]);
            for (int k = 1; k < K; k++) {
                size_t m = realloc_target(n, k - 1);
                unsigned char *q = heap ? hak_heap_realloc(heap, p[k], m) : hak_realloc(p[k], m);
                if (q == NULL)
                    fail_msg("realloc(aligned_alloc(%zu, %zu), %zu) returned NULL", a, n, m);
                if ((uintptr_t)q % 16)
                    fail_msg("realloc of an aligned block: %p not 16-byte aligned", (void *)q);
                size_t uq = hak_usable_size(q);
                if (uq < m)
                    fail_msg("realloc(aligned_alloc(%zu, %zu), %zu): usable %zu", a, n, m, uq);
                if (hak_heap_of(q) != owner)
                    fail_msg("realloc(aligned_alloc(%zu, %zu), %zu): heap changed", a, n, m);
                size_t keep = u[k] < m ? u[k] : m;
                HT_ASSERT_PATTERN(q, 0, keep, shift * 1000 + si * 10 + (size_t)k,
                                  "realloc(aligned_alloc(%zu, %zu), %zu) lost content", a, n, m);
                memset(q, 0x77, uq); /* and the new block is writable in full */
                hak_free(q);
            }
        }
    }
    hak_stats_t after = ht_stats(owner);
    assert_int_equal(after.live_blocks, before.live_blocks);
    assert_int_equal(after.large_blocks, before.large_blocks);
}

static void test_aligned_matrix_default(void **state) {
    (void)state;
    run_matrix(NULL);
}

static void test_aligned_matrix_private(void **state) {
    (void)state;
    hak_heap_options_t o = {0, "tiers-aligned"};
    hak_heap_t *h = hak_heap_create(&o);
    assert_non_null(h);
    run_matrix(h);
    hak_heap_destroy(h);
}

/* Many aligned blocks of one combination at once, interleaved with plain ones: aligned interior pointers and
 * ordinary blocks share slabs; every block keeps its content and frees (in shuffled order) cleanly. */
static void test_aligned_mixed_population(void **state) {
    (void)state;
    enum { N = 3000 };
    static unsigned char *p[N];
    static size_t u[N];
    static uint64_t tag[N];
    ht_rng_t r;
    ht_seed(&r, 7);
    hak_stats_t before = ht_stats(hak_heap_default());
    for (int i = 0; i < N; i++) {
        uint64_t x = ht_next(&r);
        size_t a = (size_t)16 << (x % 9); /* 16 .. 4096 */
        size_t n = (size_t)((x >> 8) % (i % 10 == 0 ? 70000 : 3000));
        p[i] = (i & 1) ? hak_aligned_alloc(a, n) : hak_alloc(n);
        assert_non_null(p[i]);
        if ((i & 1) && (uintptr_t)p[i] % a)
            fail_msg("aligned_alloc(%zu, %zu) misaligned", a, n);
        u[i] = hak_usable_size(p[i]);
        assert_true(u[i] >= n);
        tag[i] = (uint64_t)i * 31 + 5;
        ht_fill(p[i], u[i], tag[i]);
    }
    for (int i = N - 1; i > 0; i--) { /* shuffle */
        int j = (int)(ht_next(&r) % (uint64_t)(i + 1));
        unsigned char *tp = p[i];
        size_t tu = u[i];
        uint64_t tt = tag[i];
        p[i] = p[j], u[i] = u[j], tag[i] = tag[j], p[j] = tp, u[j] = tu, tag[j] = tt;
    }
    for (int i = 0; i < N; i++) {
        HT_ASSERT_PATTERN(p[i], 0, u[i], tag[i], "block %d of the mixed population", i);
        hak_free(p[i]);
        if (i + 1 < N) /* the frees so far harmed none of the others */
            HT_ASSERT_PATTERN(p[i + 1], 0, u[i + 1], tag[i + 1], "block %d after freeing block %d", i + 1, i);
    }
    hak_stats_t after = ht_stats(hak_heap_default());
    assert_int_equal(after.live_blocks, before.live_blocks);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_aligned_alloc),
        cmocka_unit_test(test_aligned_many),
        cmocka_unit_test(test_aligned_matrix_default),
        cmocka_unit_test(test_aligned_matrix_private),
        cmocka_unit_test(test_aligned_mixed_population),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
