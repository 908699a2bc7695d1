/* Large blocks at every size edge from 256 KiB to 64 MiB, and calloc at the tier edges (the slab-served
 * sizes are tested in tiny/test_slab_sizes.c). */
#include "hakmem_test.h"

/* Large sizes: powers of two from 256 KiB to 64 MiB and their 1.25/1.5/1.75 multiples, each -1/+0/+1, and the
 * page edges of the mapping (64 + n a page multiple). */
static int cmp_size(const void *a, const void *b) {
    size_t x = *(const size_t *)a, y = *(const size_t *)b;
    return x < y ? -1 : x > y;
}

static size_t large_sizes(size_t *out, size_t cap) {
    size_t n = 0;
    for (size_t base = 256 * HT_KIB; base <= 64 * HT_MIB; base *= 2) {
        size_t m[4] = {base, base + base / 4, base + base / 2, base + 3 * base / 4};
        for (int j = 0; j < 4; j++) {
            if (m[j] > 64 * HT_MIB)
                continue;
            for (int d = -1; d <= 1; d++) {
                size_t s = m[j] + (size_t)(ptrdiff_t)d;
                if (s > HAK_SLAB_MAX_SIZE && n < cap)
                    out[n++] = s;
            }
        }
    }
    static const size_t pages[] = {65, 66, 127, 128, 129, 512, 513, 1024, 4096, 16384};
    for (size_t j = 0; j < sizeof pages / sizeof pages[0]; j++)
        for (int d = -1; d <= 1; d++) {
            size_t s = pages[j] * HT_PAGE - HT_LARGE_HEADER + (size_t)(ptrdiff_t)d;
            if (s > HAK_SLAB_MAX_SIZE && n < cap)
                out[n++] = s;
        }
    out[n++] = HAK_SLAB_MAX_SIZE + 16;
    qsort(out, n, sizeof *out, cmp_size);
    return n;
}

/* Large blocks (docs/ARCHITECTURE.md): the mapping is 2 MiB aligned and whole chunks, the header sits at its
 * base and the block 64 bytes in; the usable size is exact and tight (the request plus header rounded up to a
 * page, minus the header), so the block ends on a page end, not at the mapping end, whether the mapping is
 * fresh or reused from the BigCache; the heap is charged header + usable, the address space is the chunks. */
static void check_large(const unsigned char *p, size_t n) {
    if (p == NULL)
        fail_msg("hak_alloc(%zu) returned NULL", n);
    if ((uintptr_t)p % 16)
        fail_msg("hak_alloc(%zu) = %p: not 16-byte aligned", n, (const void *)p);
    unsigned kind = hak_region_kind(p);
    if (kind != HAK_REGION_LARGE)
        fail_msg("hak_alloc(%zu): region kind %u, expected LARGE", n, kind);
    if (ht_tier_of(p) != HT_TIER_LARGE)
        fail_msg("hak_alloc(%zu): not in the large tier", n);
    if (hak_heap_of(p) != hak_heap_default())
        fail_msg("hak_alloc(%zu): heap_of is not the default", n);
    size_t u = hak_usable_size(p), tight = ht_large_usable(n);
    if (u != tight)
        fail_msg("hak_usable_size(hak_alloc(%zu)) = %zu, expected exactly %zu", n, u, tight);
    if ((uintptr_t)(p + u) % HT_PAGE)
        fail_msg("hak_alloc(%zu): block end %p not a page end", n, (const void *)(p + u));
    hak_large_t *h = hak_large_of(p, kind);
    if (h == NULL)
        fail_msg("hak_alloc(%zu): no large header", n);
    if (h->map_base != p - HT_LARGE_HEADER || (uintptr_t)h->map_base % HT_CHUNK)
        fail_msg("hak_alloc(%zu): mapping base %p, expected the 2 MiB-aligned %p", n, (void *)h->map_base,
                 (const void *)(p - HT_LARGE_HEADER));
    if (h->usable != u || h->block != p)
        fail_msg("hak_alloc(%zu): header says block %p usable %zu", n, (void *)h->block, h->usable);
    if (h->map_size != ht_large_map(n))
        fail_msg("hak_alloc(%zu): mapping of %zu bytes, expected %zu (whole chunks)", n, h->map_size,
                 ht_large_map(n));
    if (hak_large_charged(h) != HT_LARGE_HEADER + u)
        fail_msg("hak_alloc(%zu): charged %zu, expected header + usable = %zu", n, hak_large_charged(h),
                 HT_LARGE_HEADER + u);
}

static void test_large_edges(void **state) {
    (void)state;
    static size_t sizes[256];
    size_t ns = large_sizes(sizes, 250);
    hak_stats_t before = ht_stats(hak_heap_default());
    uint64_t hits = 0;
    /* Ascending order: each block reuses (splits or grows) the previous one's cached mapping, so the pages
     * written stay resident and the test does not pay a page fault per page per size. */
    for (size_t i = 0; i < ns; i++) {
        size_t n = sizes[i];
        hak_bigcache_info_t bc0 = ht_bigcache();
        unsigned char *p = hak_alloc(n);
        hak_bigcache_info_t bc1 = ht_bigcache();
        hits += bc1.hits - bc0.hits;
        check_large(p, n);
        size_t u = hak_usable_size(p);
        /* while it is live: statistics count usable bytes, the mapping as reserved, header + usable as
         * committed (the chunk rounding is address space only) */
        hak_stats_t st = ht_stats(hak_heap_default());
        if (st.large_blocks != before.large_blocks + 1 || st.large_bytes != before.large_bytes + u ||
            st.live_bytes != before.live_bytes + u ||
            st.reserved_bytes != before.reserved_bytes + ht_large_map(n) ||
            st.committed_bytes != before.committed_bytes + HT_LARGE_HEADER + u)
            fail_msg(
                "hak_alloc(%zu): stats moved by %llu blocks, %llu large / %llu live / %llu reserved / %llu "
                "committed bytes; expected 1, %zu, %zu, %zu, %zu",
                n, (unsigned long long)(st.large_blocks - before.large_blocks),
                (unsigned long long)(st.large_bytes - before.large_bytes),
                (unsigned long long)(st.live_bytes - before.live_bytes),
                (unsigned long long)(st.reserved_bytes - before.reserved_bytes),
                (unsigned long long)(st.committed_bytes - before.committed_bytes), u, u, ht_large_map(n),
                HT_LARGE_HEADER + u);
        /* writable in full, exactly up to the usable size */
        ht_fill(p, u, n);
        HT_ASSERT_PATTERN(p, 0, u, n, "large block of %zu bytes", n);
        hak_free(p);
        /* freed: no longer a block; its mapping is cached (the default bound of 256 MiB holds it) */
        if (hak_region_kind(p) != HAK_REGION_CACHED)
            fail_msg("hak_alloc(%zu): region kind %u after free, expected CACHED", n, hak_region_kind(p));
        if (hak_heap_of(p) != NULL)
            fail_msg("hak_alloc(%zu): heap_of after free is not NULL", n);
    }
    /* most sizes came from the cache (only the first is necessarily fresh) */
    if (hits + 1 < ns)
        fail_msg("only %llu of %zu ascending large allocations reused the BigCache", (unsigned long long)hits,
                 ns);
    hak_stats_t after = ht_stats(hak_heap_default());
    assert_int_equal(after.live_blocks, before.live_blocks);
    assert_int_equal(after.large_blocks, before.large_blocks);
    /* fresh mappings: the same checks with an empty cache, including the chunk edges */
    static const size_t fresh[] = {HAK_SLAB_MAX_SIZE + 1, HT_MIB - 64,      HT_MIB - 63,
                                   2 * HT_MIB - 64,       2 * HT_MIB - 63,  2 * HT_MIB + 1,
                                   5 * HT_MIB + 3,        64 * HT_MIB - 64, 64 * HT_MIB - 63};
    for (size_t i = 0; i < sizeof fresh / sizeof fresh[0]; i++) {
        hak_collect(1);
        size_t n = fresh[i];
        hak_bigcache_info_t bc0 = ht_bigcache();
        unsigned char *p = hak_alloc(n);
        check_large(p, n);
        if (ht_bigcache().hits != bc0.hits)
            fail_msg("hak_alloc(%zu) hit an empty BigCache", n);
        size_t u = hak_usable_size(p);
        p[u - 1] = 0x5a; /* the very last usable byte */
        p[0] = 0xa5;
        assert_int_equal(p[u - 1], 0x5a);
        hak_free(p);
    }
    assert_int_equal(ht_large_map(2 * HT_MIB - 64), HT_CHUNK);
    assert_int_equal(ht_large_map(2 * HT_MIB - 63), 2 * HT_CHUNK);
    hak_collect(1);
}

/* hak_calloc in every tier and at the edges: zeroed in full (usable size), even when the block is reused. */
static void test_calloc_edges(void **state) {
    (void)state;
    static const size_t sizes[] = {1,     16,     17,     8191,   8192,   8193,
                                   65536, 262143, 262144, 262145, HT_MIB, 3 * HT_MIB + 1};
    for (int round = 0; round < 2; round++)
        for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
            size_t n = sizes[i];
            /* dirty a block of the same size first so the calloc may reuse it */
            unsigned char *d = hak_alloc(n);
            assert_non_null(d);
            memset(d, 0xee, hak_usable_size(d));
            hak_free(d);
            unsigned char *p = hak_calloc(1, n);
            if (p == NULL)
                fail_msg("hak_calloc(1, %zu) returned NULL", n);
            if (ht_tier_of(p) != ht_expected_tier(n))
                fail_msg("hak_calloc(1, %zu): wrong tier", n);
            if (!ht_all_equal(p, n, 0))
                fail_msg("hak_calloc(1, %zu) (reused: %d) is not zeroed", n, p == d);
            hak_free(p);
        }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_large_edges),
        cmocka_unit_test(test_calloc_edges),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
