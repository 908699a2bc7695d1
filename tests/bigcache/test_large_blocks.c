/* SPDX-License-Identifier: MIT */
/* Large blocks (above 256 KiB; docs/ARCHITECTURE.md, "Large blocks and the BigCache"): at every size edge
 * from 256 KiB to 64 MiB and at the page and chunk edges, a block sits 64 bytes into a 2 MiB-aligned mapping
 * of whole chunks, its usable size is exact and tight (it ends on a page end), the statistics count it
 * (usable bytes live, the mapping reserved, header + usable committed), it is writable in full, and once
 * freed its mapping is cached and reused by the next size; fresh mappings pass the same checks. Large
 * realloc: growth by mremap, in place or moved (not copied) when a mapping blocks it, shrinking far below,
 * large to slab and back; over-aligned (LARGE_FAR) blocks are copied and keep their content. */
#include "hakmem_test.h"

/* One realloc step with the checks of ht_realloc_step, the blocks in the default heap. */
static unsigned char *step(hak_heap_t *heap, unsigned char *p, size_t *n, size_t m, uint64_t tag) {
    return ht_realloc_step(heap, NULL, p, n, m, tag);
}

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
    if (hak_large_map_base(h) != p - HT_LARGE_HEADER || (uintptr_t)hak_large_map_base(h) % HT_CHUNK)
        fail_msg("hak_alloc(%zu): mapping base %p, expected the 2 MiB-aligned %p", n, (void *)hak_large_map_base(h),
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

/* Large growth: in place when the address space after the mapping is free, moved (mremap, no copy) when it is
 * not; shrinking far below keeps the content; the old address is no longer a block after a move. */
static void test_realloc_large_mremap(void **state) {
    (void)state;
    hak_collect(1);
    const uint64_t tag = 77;
    size_t n = 3 * HT_MIB;
    unsigned char *p = hak_alloc(n);
    assert_non_null(p);
    ht_fill_range(p, 0, n, tag);
    /* grow several times; whatever the kernel does, content is kept */
    static const size_t grow[] = {5 * HT_MIB, 17 * HT_MIB + 3, 64 * HT_MIB};
    for (size_t i = 0; i < sizeof grow / sizeof grow[0]; i++)
        p = step(NULL, p, &n, grow[i], tag);
    /* shrink far below: the tail goes back, the content stays */
    size_t u_big = hak_usable_size(p);
    p = step(NULL, p, &n, 9 * HT_MIB, tag);
    assert_true(hak_usable_size(p) < u_big);
    assert_true(hak_usable_size(p) < 9 * HT_MIB + HT_PAGE);

    /* force the move: put a mapping right after the block's mapping (its whole chunks: the block itself ends
     * on the page after its usable size, inside the mapping), with nothing cached that it could merge */
    hak_collect(1);
    hak_large_t *h = hak_large_of(p, hak_region_kind(p));
    assert_non_null(h);
    unsigned char *end = hak_large_map_base(h) + h->map_size;
    assert_true(p + hak_usable_size(p) <= end);
    void *blocker = mmap(end, HT_PAGE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    int have_blocker = blocker == (void *)end;
    int occupied = blocker == MAP_FAILED && errno == EEXIST; /* something is there already: as good */
    if (blocker != MAP_FAILED && !have_blocker)
        munmap(blocker, HT_PAGE); /* old kernel: hint ignored */
    unsigned char *old = p, *old_base = hak_large_map_base(h);
    size_t old_map = h->map_size;
    p = step(NULL, p, &n, 20 * HT_MIB, tag);
    if (have_blocker || occupied) {
        if (p == old)
            fail_msg("realloc grew a large block in place over a mapping (%s)",
                     have_blocker ? "ours" : "existing");
        if (hak_heap_of(old) != NULL)
            fail_msg("old address of a moved large block still owned");
        if ((uintptr_t)p % 16 || ((uintptr_t)p & (HT_CHUNK - 1)) != HT_LARGE_HEADER)
            fail_msg("moved large block at %p is not 64 bytes into a 2 MiB-aligned mapping", (void *)p);
        /* moved with mremap, not copied: the old mapping is gone, not freed into the BigCache */
        hak_bigcache_info_t bc = ht_bigcache();
        if (bc.entries != 0 || !ht_unmapped(old_base, old_map))
            fail_msg("moved large block: old mapping %s (%llu cache entries): copied instead of moved?",
                     ht_unmapped(old_base, old_map) ? "unmapped" : "still mapped",
                     (unsigned long long)bc.entries);
        if (have_blocker)
            munmap(blocker, HT_PAGE);
    } else {
        print_message("note: could not place a mapping after the block; the move path was not forced\n");
    }
    /* and it is still a normal large block: usable exact, frees cleanly */
    assert_int_equal((uintptr_t)(p + hak_usable_size(p)) % HT_PAGE, 0);
    /* large -> slab and back */
    p = step(NULL, p, &n, 1000, tag);
    assert_int_equal(ht_tier_of(p), HT_TIER_TINY);
    p = step(NULL, p, &n, 100000, tag);
    assert_int_equal(ht_tier_of(p), HT_TIER_POOL);
    p = step(NULL, p, &n, 2 * HT_MIB, tag);
    assert_int_equal(ht_tier_of(p), HT_TIER_LARGE);
    hak_free(p);
}

/* Over-aligned large blocks (LARGE_FAR) cannot use mremap growth: realloc copies, and keeps content. */
static void test_realloc_far_aligned(void **state) {
    (void)state;
    unsigned char *p = hak_aligned_alloc(4 * HT_MIB, 3 * HT_MIB);
    assert_non_null(p);
    assert_int_equal(hak_region_kind(p), HAK_REGION_LARGE_FAR);
    size_t n = 3 * HT_MIB;
    ht_fill_range(p, 0, n, 5);
    p = step(NULL, p, &n, 7 * HT_MIB, 5);
    p = step(NULL, p, &n, HT_MIB, 5);
    p = step(NULL, p, &n, 200, 5);
    hak_free(p);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_large_edges),
        cmocka_unit_test(test_realloc_large_mremap),
        cmocka_unit_test(test_realloc_far_aligned),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
