/* SPDX-License-Identifier: MIT */
/* Slab-served sizes (tiny up to 8 KiB, pool up to 256 KiB): hak_usable_size(hak_alloc(n)) is exactly the
 * class size of n, for every size and with many blocks live; at every class edge (P+1, S-1, S, S+1 for each
 * class S after P) a block is 16-byte aligned, in the tier of its size, described by its span (block size,
 * slab count), owned by the default heap, writable in full without touching its neighbours, and freed
 * cleanly. */
#include "hakmem_test.h"

/* hak_alloc(n), checked to have exactly the class size of n as usable size. */
static void *alloc_of_class_size(size_t n) {
    void *p = hak_alloc(n);
    assert_non_null(p);
    size_t u = hak_usable_size(p);
    size_t cs = hak_class_size(hak_size_class(n));
    if (u != cs)
        fail_msg("hak_usable_size(hak_alloc(%zu)) = %zu, class size %zu", n, u, cs);
    return p;
}

/* hak_usable_size(hak_alloc(n)) is the class size of n for every tiny size. */
static void test_usable_size_tiny(void **state) {
    (void)state;
    for (size_t n = 1; n <= HAK_TINY_MAX_SIZE; n++) {
        hak_free(alloc_of_class_size(n));
    }
}

/* Same while blocks stay live (so blocks come from many slabs, not one reused slot). */
static void test_usable_size_tiny_live(void **state) {
    (void)state;
    enum { N = 8192 / 7 + 1 };
    static void *ptr[N];
    for (size_t i = 0; i < N; i++) {
        size_t n = 1 + i * 7;
        ptr[i] = alloc_of_class_size(n);
    }
    for (size_t i = 0; i < N; i++)
        hak_free(ptr[i]);
}

/* Pool sizes (above 8 KiB up to HAK_SLAB_MAX_SIZE) map to their class size too. */
static void test_usable_size_pool(void **state) {
    (void)state;
    for (size_t n = HAK_TINY_MAX_SIZE + 1; n <= HAK_SLAB_MAX_SIZE; n += 997) {
        size_t sizes[3] = {n, hak_class_size(hak_size_class(n)), hak_class_size(hak_size_class(n)) + 1};
        for (int k = 0; k < 3; k++) {
            size_t m = sizes[k];
            if (m > HAK_SLAB_MAX_SIZE)
                continue;
            hak_free(alloc_of_class_size(m));
        }
    }
}

/* Allocates n bytes and checks everything test 1 asks for; returns the block (still live). */
static void *check_slab_alloc(size_t n, uint64_t tag) {
    void *p = hak_alloc(n);
    if (p == NULL)
        fail_msg("hak_alloc(%zu) returned NULL", n);
    if ((uintptr_t)p % 16)
        fail_msg("hak_alloc(%zu) = %p: not 16-byte aligned", n, p);
    size_t want = ht_expected_class(n);
    size_t u = hak_usable_size(p);
    if (u != want)
        fail_msg("hak_usable_size(hak_alloc(%zu)) = %zu, expected the class size %zu", n, u, want);
    ht_tier_t t = ht_tier_of(p), et = ht_expected_tier(n);
    if (t != et)
        fail_msg("hak_alloc(%zu): tier %s, expected %s", n, ht_tier_names[t], ht_tier_names[et]);
    ht_span_info_t s = ht_span_info(p);
    if (s.block_size != want || s.span_slabs == 0)
        fail_msg("hak_alloc(%zu): span descriptor says block %u, %u slabs", n, s.block_size, s.span_slabs);
    if (hak_heap_of(p) != hak_heap_default())
        fail_msg("hak_alloc(%zu): hak_heap_of is not the default heap", n);
    ht_fill(p, u, tag);
    return p;
}

static void test_slab_class_edges(void **state) {
    (void)state;
    ht_build_classes();
    hak_stats_t before = ht_stats(hak_heap_default());
    /* request sizes: 0, 1, and for every class S (previous class P): P+1, S-1, S, S+1 */
    enum { MAXN = 4 * HT_MAX_CLASSES + 2 };
    size_t sizes[MAXN];
    size_t ns = 0;
    sizes[ns++] = 0;
    sizes[ns++] = 1;
    for (unsigned i = 0; i < ht_class_count; i++) {
        size_t s = ht_classes[i], prev = i ? ht_classes[i - 1] : 0;
        sizes[ns++] = prev + 1;
        sizes[ns++] = s - 1;
        sizes[ns++] = s;
        if (s + 1 <= HAK_SLAB_MAX_SIZE)
            sizes[ns++] = s + 1;
    }
    /* Keep a few blocks of every size live at once (so neighbours could overwrite each other), then verify.
     */
    enum { K = 3 };
    static void *blocks[MAXN][K];
    for (size_t i = 0; i < ns; i++)
        for (int k = 0; k < K; k++)
            blocks[i][k] = check_slab_alloc(sizes[i], i * K + (size_t)k);
    for (size_t i = 0; i < ns; i++)
        for (int k = 0; k < K; k++) {
            void *p = blocks[i][k];
            size_t u = hak_usable_size(p);
            HT_ASSERT_PATTERN(p, 0, u, i * K + (size_t)k, "block of %zu bytes overwritten", sizes[i]);
            hak_free(p);
        }
    hak_stats_t after = ht_stats(hak_heap_default());
    assert_int_equal(after.live_blocks, before.live_blocks);
    assert_int_equal(after.live_bytes, before.live_bytes);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_usable_size_tiny),
        cmocka_unit_test(test_usable_size_tiny_live),
        cmocka_unit_test(test_usable_size_pool),
        cmocka_unit_test(test_slab_class_edges),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
