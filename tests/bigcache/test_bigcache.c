/* SPDX-License-Identifier: MIT */
/* BigCache (docs/ARCHITECTURE.md, "Large blocks and the BigCache"): freed large mappings are whole 2 MiB
 * chunks kept for reuse. Checked here: an exact chunk-count hit returns the same mapping; a larger entry is
 * split (head returned, the rest cached); a smaller one is grown, first by merging the cached entries right
 * after it; a freed mapping merges with the cached entries right after it (forward only); large realloc
 * within the mapping, by merging cached neighbours, and shrinking by whole chunks; the hash table (keyed by
 * chunk count) growing at 3/4 load from 16 and shrinking below 1/8; the byte bound (HAKMEM_BIGCACHE_MAX,
 * oldest evicted first); purging after HAKMEM_PURGE_DELAY_MS; hak_collect(1); HAKMEM_BIGCACHE_MAX=0; calloc
 * on reused mappings; the resident budget (cached pages purged past the high-water mark of live large
 * blocks); a free of a cached block is reported. The options are read once at initialisation, so each case
 * runs in a child process (this executable again, `--child <name>`) with the variables set.
 *
 * Adjacency: the kernel decides where mappings go, so where a case needs two mappings side by side it makes
 * them by splitting one cached mapping; where it needs them apart it keeps a live block between them and
 * checks the region map before each free (a freed mapping merges only with a CACHED chunk right after it). */
#include "hakmem_test.h"
#include <fcntl.h>
#include <sys/resource.h>

#define C HT_CHUNK
#define REQ(k) ht_chunks_req(k)

static uint64_t now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static unsigned char *base_of(const void *p) { return (unsigned char *)p - HT_LARGE_HEADER; }

/* A live large block of an n-byte request: LARGE chunk, header at the 2 MiB-aligned mapping base 64 bytes
 * below the block, a mapping of whole chunks, usable exact and tight (its end a page end, not the mapping
 * end). */
static hak_large_t *check_block(const unsigned char *p, size_t n, const char *what) {
    if (p == NULL)
        fail_msg("%s: hak_alloc(%zu) returned NULL", what, n);
    unsigned kind = hak_region_kind(p);
    if (kind != HAK_REGION_LARGE)
        fail_msg("%s: block %p of %zu bytes: region kind %u, expected LARGE", what, (void *)p, n, kind);
    hak_large_t *h = hak_large_of(p, kind);
    if (h == NULL)
        fail_msg("%s: no large header for %p", what, (void *)p);
    if (hak_large_map_base(h) != base_of(p) || (uintptr_t)hak_large_map_base(h) % C != 0)
        fail_msg("%s: block %p: mapping base %p, expected the 2 MiB-aligned %p", what, (void *)p,
                 (void *)hak_large_map_base(h), (void *)base_of(p));
    if (h->map_size != ht_large_map(n))
        fail_msg("%s: block of %zu bytes: mapping of %zu bytes, expected %zu (%zu chunks)", what, n,
                 h->map_size, ht_large_map(n), ht_large_map(n) / C);
    size_t u = hak_usable_size(p);
    if (h->usable != ht_large_usable(n) || u != ht_large_usable(n))
        fail_msg("%s: block of %zu bytes: usable %zu (header says %zu), expected exactly %zu", what, n, u,
                 h->usable, ht_large_usable(n));
    if ((uintptr_t)(p + u) % HT_PAGE != 0)
        fail_msg("%s: block end %p is not a page end", what, (void *)(p + u));
    if (hak_heap_of(p) == NULL)
        fail_msg("%s: hak_heap_of(%p) is NULL for a live block", what, (void *)p);
    return h;
}

#define EXPECT_CACHE(ent, byt, ...)                                                                          \
    do {                                                                                                     \
        hak_bigcache_info_t i_ = ht_bigcache();                                                              \
        if (i_.entries != (uint64_t)(ent) || i_.bytes != (uint64_t)(byt)) {                                  \
            print_error("cache holds %llu entries / %llu bytes (%llu chunks), expected %llu / %llu (%llu "   \
                        "chunks): ",                                                                         \
                        (unsigned long long)i_.entries, (unsigned long long)i_.bytes,                        \
                        (unsigned long long)(i_.bytes / C), (unsigned long long)(ent),                       \
                        (unsigned long long)(byt), (unsigned long long)((byt) / C));                         \
            fail_msg(__VA_ARGS__);                                                                           \
        }                                                                                                    \
    } while (0)

#define EXPECT_KIND(addr, kind, ...)                                                                         \
    do {                                                                                                     \
        unsigned k_ = hak_region_kind(addr);                                                                 \
        if (k_ != (unsigned)(kind)) {                                                                        \
            print_error("region kind of %p is %u, expected %u (%s): ", (void *)(addr), k_, (unsigned)(kind), \
                        #kind);                                                                              \
            fail_msg(__VA_ARGS__);                                                                           \
        }                                                                                                    \
    } while (0)

/* Hits/misses moved by exactly (dh, dm) since `before`. */
#define EXPECT_COUNTS(before, dh, dm, ...)                                                                   \
    do {                                                                                                     \
        hak_bigcache_info_t n_ = ht_bigcache();                                                              \
        if (n_.hits != (before).hits + (dh) || n_.misses != (before).misses + (dm)) {                        \
            print_error("hits %llu -> %llu, misses %llu -> %llu, expected +%d / +%d: ",                      \
                        (unsigned long long)(before).hits, (unsigned long long)n_.hits,                      \
                        (unsigned long long)(before).misses, (unsigned long long)n_.misses, (int)(dh),       \
                        (int)(dm));                                                                          \
            fail_msg(__VA_ARGS__);                                                                           \
        }                                                                                                    \
    } while (0)

/* ---- children ------------------------------------------------------------------------------------------ */

/* HAKMEM_PURGE_DELAY_MS=600000: exact hits, calloc on reused mappings, splitting, merging on free, growing an
 * entry by merging (with and without a surplus) and by mremap, heap destroy handing blocks to the cache. */
static void child_reuse_split_merge(void **state) {
    (void)state;
    hak_collect(1);
    EXPECT_CACHE(0, 0, "after hak_collect(1)");
    hak_bigcache_info_t b0 = ht_bigcache();

    /* exact hit: the same mapping comes back, with its resident pages (the old content is still there) */
    unsigned char *p = hak_alloc(HT_MIB);
    check_block(p, HT_MIB, "1 MiB");
    size_t u1 = ht_large_usable(HT_MIB);
    ht_fill(p, u1, 1);
    hak_free(p);
    EXPECT_CACHE(1, C, "one freed 1 MiB block (1 chunk)");
    EXPECT_KIND(base_of(p), HAK_REGION_CACHED, "freed block's chunk");
    assert_null(hak_heap_of(p));
    unsigned char *q = hak_alloc(HT_MIB);
    assert_ptr_equal(q, p);
    check_block(q, HT_MIB, "1 MiB again");
    EXPECT_COUNTS(b0, 1, 0, "exact hit");
    EXPECT_CACHE(0, 0, "after the hit");
    HT_ASSERT_PATTERN(q, HT_PAGE, u1, 1, "reused mapping did not keep its pages");
    hak_free(q);

    /* another request of the same chunk count: exact-count hit, usable tight for the new request */
    hak_bigcache_info_t b1 = ht_bigcache();
    unsigned char *r = hak_alloc(REQ(1));
    assert_ptr_equal(r, p);
    check_block(r, REQ(1), "whole chunk from a 1 MiB mapping");
    EXPECT_COUNTS(b1, 1, 0, "same chunk count");
    memset(r, 0xcd, REQ(1));
    hak_free(r);
    /* calloc on a reused, dirty mapping is zeroed over its whole usable size (smaller and full requests) */
    unsigned char *z = hak_calloc(1, 600 * HT_KIB);
    assert_ptr_equal(z, p);
    check_block(z, 600 * HT_KIB, "calloc 600 KiB");
    if (!ht_all_equal(z, ht_large_usable(600 * HT_KIB), 0))
        fail_msg("calloc(600 KiB) on a reused BigCache mapping is not zeroed");
    memset(z, 0xcd, ht_large_usable(600 * HT_KIB));
    hak_free(z);
    z = hak_calloc(REQ(1), 1);
    assert_ptr_equal(z, p);
    if (!ht_all_equal(z, REQ(1), 0))
        fail_msg("calloc(2 MiB - 64) on a reused BigCache mapping is not zeroed");
    EXPECT_COUNTS(b1, 3, 0, "three same-count hits");
    hak_free(z);

    /* split: one 8 MiB block (5 chunks), then 3 + 1 + 1 chunks out of its mapping */
    hak_collect(1);
    unsigned char *big = hak_alloc(8 * HT_MIB);
    check_block(big, 8 * HT_MIB, "8 MiB");
    assert_int_equal(ht_large_map(8 * HT_MIB), 5 * C);
    unsigned char *B = base_of(big);
    ht_fill(big, 8 * HT_MIB, 2);
    hak_free(big);
    EXPECT_CACHE(1, 5 * C, "freed 8 MiB block");
    hak_bigcache_info_t b2 = ht_bigcache();
    unsigned char *s1 = hak_alloc(REQ(3));
    assert_ptr_equal(s1, B + HT_LARGE_HEADER);
    check_block(s1, REQ(3), "3 chunks split off 5");
    EXPECT_CACHE(1, 2 * C, "5-chunk entry split into 3 + 2");
    EXPECT_KIND(B + 3 * C, HAK_REGION_CACHED, "the rest of a split entry");
    /* the split handed over the same pages: the 8 MiB block's content is there */
    HT_ASSERT_PATTERN(big, HT_PAGE, 3 * C - HT_LARGE_HEADER, 2, "split head lost its pages");
    unsigned char *s2 = hak_alloc(HT_MIB); /* no 1-chunk entry: the smallest larger (2 chunks) is split */
    assert_ptr_equal(s2, B + 3 * C + HT_LARGE_HEADER);
    check_block(s2, HT_MIB, "1 chunk split off 2");
    EXPECT_CACHE(1, C, "2-chunk entry split into 1 + 1");
    EXPECT_KIND(B + 4 * C, HAK_REGION_CACHED, "the rest of the second split");
    unsigned char *s3 = hak_alloc(HT_MIB);
    assert_ptr_equal(s3, B + 4 * C + HT_LARGE_HEADER);
    check_block(s3, HT_MIB, "last chunk");
    EXPECT_CACHE(0, 0, "all 5 chunks in use");
    EXPECT_COUNTS(b2, 3, 0, "three splits/hits out of one mapping");
    EXPECT_KIND(B + C, HAK_REGION_LARGE_INNER, "interior chunk of a live block");

    /* merge on free, forward only: s3 alone; s1 not merged (s2 live after it); s2 absorbs s3 but not s1 */
    ht_fill(s1, REQ(3), 3);
    ht_fill(s2, HT_MIB, 4);
    hak_free(s3);
    EXPECT_CACHE(1, C, "s3 freed");
    hak_free(s1);
    EXPECT_CACHE(2, 4 * C, "s1 freed before s2: no merge");
    hak_free(s2);
    EXPECT_CACHE(2, 5 * C, "s2 merges with s3 after it, not with s1 before it");
    EXPECT_KIND(B, HAK_REGION_CACHED, "s1's entry");
    EXPECT_KIND(B + 3 * C, HAK_REGION_CACHED, "merged s2+s3 entry");
    EXPECT_KIND(B + 4 * C, HAK_REGION_LARGE_INNER, "s3's chunk, merged into s2's entry");

    /* grow by merging: 4 chunks wanted; no exact or larger entry, so the largest smaller one (s1, 3 chunks)
     * merges the 2-chunk entry after it and gives 1 chunk back */
    hak_bigcache_info_t b3 = ht_bigcache();
    unsigned char *g = hak_alloc(REQ(4));
    assert_ptr_equal(g, B + HT_LARGE_HEADER);
    check_block(g, REQ(4), "grown by merging");
    EXPECT_COUNTS(b3, 1, 0, "grow by merging");
    EXPECT_CACHE(1, C, "surplus chunk of the merge cached");
    EXPECT_KIND(B + 4 * C, HAK_REGION_CACHED, "surplus of the merge");
    EXPECT_KIND(B + 3 * C, HAK_REGION_LARGE_INNER, "merged entry's chunk, now inside the block");
    /* the merged pages are the old ones: s1's content, and s2's past its first page (its entry header) */
    HT_ASSERT_PATTERN(s1, HT_PAGE, REQ(3), 3, "merged block lost s1's pages");
    HT_ASSERT_PATTERN(s2, HT_PAGE, HT_MIB, 4, "merged block lost s2's pages");
    /* free: merges the surplus after it again, one 5-chunk entry */
    hak_free(g);
    EXPECT_CACHE(1, 5 * C, "grown block freed, merged with its old surplus");
    /* exact merge without surplus: split 5 into 3 + 2 again, free both (forward only: two entries), take 5 */
    s1 = hak_alloc(REQ(3));
    s2 = hak_alloc(REQ(2));
    assert_ptr_equal(s1, B + HT_LARGE_HEADER);
    assert_ptr_equal(s2, B + 3 * C + HT_LARGE_HEADER);
    hak_free(s1);
    hak_free(s2);
    EXPECT_CACHE(2, 5 * C, "3 + 2 chunks freed in address order");
    g = hak_alloc(REQ(5));
    assert_ptr_equal(g, B + HT_LARGE_HEADER);
    check_block(g, REQ(5), "3 + 2 merged");
    EXPECT_CACHE(0, 0, "exact merge");
    hak_free(g);

    /* grow without cached neighbours (mremap in place, else moved): a hit that keeps the entry's pages */
    hak_collect(1);
    unsigned char *e = hak_alloc(REQ(1));
    check_block(e, REQ(1), "1 chunk");
    ht_fill(e, REQ(1), 5);
    hak_free(e);
    hak_bigcache_info_t b4 = ht_bigcache();
    unsigned char *ge = hak_alloc(REQ(3));
    check_block(ge, REQ(3), "1-chunk entry grown to 3");
    EXPECT_COUNTS(b4, 1, 0, "grow of a smaller entry");
    EXPECT_CACHE(0, 0, "grown entry taken");
    HT_ASSERT_PATTERN(ge, HT_PAGE, REQ(1), 5, "grown cached mapping did not keep its pages (%s)",
                      ge == e ? "in place" : "moved");
    hak_free(ge);

    /* choice among entries of 1, 4 and 6 chunks kept apart by live blocks: a larger entry is split before a
     * smaller one is grown, and it is the smallest larger one; with none larger, the largest smaller grows */
    hak_collect(1);
    static const size_t ck[3] = {1, 4, 6};
    unsigned char *cb[3], *cs[3];
    for (int i = 0; i < 3; i++) {
        cb[i] = hak_alloc(REQ(ck[i]));
        check_block(cb[i], REQ(ck[i]), "choice block");
        cs[i] = hak_alloc(REQ(1)); /* live, keeps the next one apart */
        assert_non_null(cs[i]);
    }
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 3; j++)
            if (base_of(cb[i]) + ck[i] * C == base_of(cb[j]))
                fail_msg("setup: choice blocks %d and %d are adjacent", i, j);
    for (int i = 0; i < 3; i++)
        hak_free(cb[i]);
    EXPECT_CACHE(3, 11 * C, "1 + 4 + 6 chunks cached apart");
    hak_bigcache_info_t b6 = ht_bigcache();
    unsigned char *c3 = hak_alloc(REQ(3));
    if (c3 != cb[1])
        fail_msg("3 chunks from entries of 1, 4, 6: got %p, expected the 4-chunk entry %p split (1-chunk %p, "
                 "6-chunk %p)",
                 (void *)c3, (void *)cb[1], (void *)cb[0], (void *)cb[2]);
    EXPECT_CACHE(3, 8 * C, "4-chunk entry split into 3 + 1");
    unsigned char *c5 = hak_alloc(REQ(5));
    assert_ptr_equal(c5, cb[2]);
    EXPECT_CACHE(3, 3 * C, "6-chunk entry split into 5 + 1");
    EXPECT_COUNTS(b6, 2, 0, "two splits");
    hak_free(c3); /* each merges its split rest again: 1, 4, 6 */
    hak_free(c5);
    EXPECT_CACHE(3, 11 * C, "split blocks freed and merged with their rests");
    /* nothing larger: the 6-chunk entry grows (moved: a live block follows it), and its 2 new chunks are
     * not faulted in fresh but gathered: the first 2 (dirty) chunks of the newest other entry, the 4-chunk
     * one, move into them */
    hak_bigcache_info_t b7 = ht_bigcache();
    unsigned char *c8 = hak_alloc(REQ(8));
    check_block(c8, REQ(8), "largest smaller entry grown");
    EXPECT_CACHE(2, 3 * C, "the 1-chunk entry and the 4-chunk entry's last 2 chunks are left");
    EXPECT_KIND(base_of(cb[0]), HAK_REGION_CACHED, "1-chunk entry left alone");
    EXPECT_KIND(base_of(cb[1]) + 2 * C, HAK_REGION_CACHED, "the rest of the 4-chunk entry stays cached");
    if (ht_bigcache().gathered != b7.gathered + 2 * C)
        fail_msg("gathered %llu bytes into the grown block, expected 2 chunks",
                 (unsigned long long)(ht_bigcache().gathered - b7.gathered));
    if (!ht_unmapped(base_of(cb[1]), 2 * C))
        fail_msg("the 4-chunk entry's first 2 chunks are still mapped at their old address");
    hak_free(c8);
    for (int i = 0; i < 3; i++)
        hak_free(cs[i]);

    /* destroying a heap hands its large blocks to the BigCache (merged or not); the default heap reuses them
     */
    hak_collect(1);
    hak_heap_options_t o = {0, "tiers-bigcache"};
    hak_heap_t *h = hak_heap_create(&o);
    assert_non_null(h);
    unsigned char *hp[4];
    for (int i = 0; i < 4; i++) {
        hp[i] = hak_heap_alloc(h, REQ((size_t)i + 1));
        check_block(hp[i], REQ((size_t)i + 1), "heap block");
        assert_ptr_equal(hak_heap_of(hp[i]), h);
        memset(hp[i], 0x11, REQ((size_t)i + 1));
    }
    hak_heap_destroy(h);
    hak_bigcache_info_t b5 = ht_bigcache();
    if (b5.bytes != 10 * C || b5.entries < 1 || b5.entries > 4)
        fail_msg("destroyed heap's blocks (1+2+3+4 chunks): cache holds %llu entries / %llu chunks",
                 (unsigned long long)b5.entries, (unsigned long long)(b5.bytes / C));
    for (int i = 3; i >= 0; i--) { /* largest first */
        hp[i] = hak_alloc(REQ((size_t)i + 1));
        check_block(hp[i], REQ((size_t)i + 1), "reuse after heap destroy");
        assert_ptr_equal(hak_heap_of(hp[i]), hak_heap_default());
    }
    EXPECT_COUNTS(b5, 4, 0, "reuse of a destroyed heap's mappings");
    EXPECT_CACHE(0, 0, "all of the destroyed heap's mappings reused");
    for (int i = 0; i < 4; i++)
        hak_free(hp[i]);
}

/* HAKMEM_PURGE_DELAY_MS=600000: large realloc within the mapping (usable changes, nothing else), growing by
 * merging the cached entries after the block (surplus back to the cache), shrinking by whole chunks (tail to
 * the cache), and growing past the cached neighbours (merge, then mremap): content kept throughout. */
static void child_realloc(void **state) {
    (void)state;
    hak_collect(1);
    unsigned char *big = hak_alloc(REQ(5));
    check_block(big, REQ(5), "5 chunks");
    unsigned char *B = base_of(big);
    hak_free(big);
    unsigned char *x = hak_alloc(300 * HT_KIB); /* split: 1 chunk at B, 4 cached at B + C */
    assert_ptr_equal(x, B + HT_LARGE_HEADER);
    check_block(x, 300 * HT_KIB, "300 KiB");
    EXPECT_CACHE(1, 4 * C, "4 chunks cached after the block");
    ht_fill(x, 300 * HT_KIB, 10);
    hak_bigcache_info_t b0 = ht_bigcache();

    /* within the mapping: same block, tight usable, no cache operation */
    unsigned char *y = hak_realloc(x, 1536 * HT_KIB);
    assert_ptr_equal(y, x);
    check_block(y, 1536 * HT_KIB, "realloc 300 KiB -> 1.5 MiB within the chunk");
    EXPECT_CACHE(1, 4 * C, "growth within the mapping");
    EXPECT_COUNTS(b0, 0, 0, "growth within the mapping");
    HT_ASSERT_PATTERN(y, 0, 300 * HT_KIB, 10, "content after growth within the mapping");
    ht_fill(y, 1536 * HT_KIB, 11);

    /* grow to 3 chunks: merges the 4 cached chunks after it, 2 go back to the cache */
    y = hak_realloc(x, REQ(3));
    assert_ptr_equal(y, x);
    check_block(y, REQ(3), "realloc to 3 chunks by merging");
    EXPECT_CACHE(1, 2 * C, "surplus of the merge");
    EXPECT_KIND(B + 3 * C, HAK_REGION_CACHED, "surplus of the merge");
    EXPECT_KIND(B + C, HAK_REGION_LARGE_INNER, "merged chunk, now inside the block");
    EXPECT_COUNTS(b0, 0, 0, "realloc merge is not a take");
    HT_ASSERT_PATTERN(y, 0, 1536 * HT_KIB, 11, "content after growth by merging");
    ht_fill(y, REQ(3), 12);

    /* grow to exactly the cached chunks' end */
    y = hak_realloc(x, REQ(5));
    assert_ptr_equal(y, x);
    check_block(y, REQ(5), "realloc to 5 chunks by merging");
    EXPECT_CACHE(0, 0, "all cached chunks merged");
    HT_ASSERT_PATTERN(y, 0, REQ(3), 12, "content after the second merge");
    ht_fill(y, REQ(5), 13);

    /* shrink by whole chunks (below half the usable size, so it is not kept as is): the tail is cached */
    y = hak_realloc(x, HT_MIB);
    assert_ptr_equal(y, x);
    check_block(y, HT_MIB, "realloc 5 chunks -> 1 MiB");
    EXPECT_CACHE(1, 4 * C, "4 tail chunks cached");
    EXPECT_KIND(B + C, HAK_REGION_CACHED, "the released tail");
    HT_ASSERT_PATTERN(y, 0, HT_MIB, 13, "content after shrinking by chunks");
    /* shrink within the chunk: usable shrinks, the cache does not change */
    y = hak_realloc(x, 400 * HT_KIB);
    assert_ptr_equal(y, x);
    check_block(y, 400 * HT_KIB, "realloc 1 MiB -> 400 KiB");
    EXPECT_CACHE(1, 4 * C, "shrink within the chunk");
    HT_ASSERT_PATTERN(y, 0, 400 * HT_KIB, 13, "content after shrinking within the chunk");
    EXPECT_COUNTS(b0, 0, 0, "realloc does not take from the cache");

    /* grow past the cached chunks: merge 4, then mremap (in place, else moved without copying: the old range
     * is not freed into the cache, which a copy would do) */
    y = hak_realloc(x, REQ(8));
    check_block(y, REQ(8), "realloc to 8 chunks: merge + mremap");
    EXPECT_CACHE(0, 0, "growth past the cached chunks merged them and did not copy");
    HT_ASSERT_PATTERN(y, 0, 400 * HT_KIB, 13, "content after merge + mremap (%s)",
                      y == x ? "in place" : "moved");
    if (y != x) {
        assert_null(hak_heap_of(x));
        assert_int_equal(hak_region_kind(B), HAK_REGION_NONE);
    }
    hak_free(y);
    EXPECT_CACHE(1, 8 * C, "the 8-chunk block freed");
}

/* Expected table capacity: 16 on the first key, doubled when a new key would pass 3/4 load, halved when a
 * key's last entry leaves and fewer than 1/8 of the slots are used (never below 16). */
typedef struct {
    uint64_t cap, used;
} tsim_t;
static void tsim_add(tsim_t *t) {
    if ((t->used + 1) * 4 > t->cap * 3)
        t->cap = t->cap ? t->cap * 2 : 16;
    t->used++;
}
static void tsim_del(tsim_t *t) {
    t->used--;
    if (t->cap > 16 && t->used < t->cap / 8)
        t->cap /= 2;
}

#define TBL_K 52  /* distinct chunk counts 1..52: capacity 16 -> 32 -> 64 -> 128 */
#define TBL_DUP 4 /* chunk counts 1..4 get a second entry (chained in one bucket) */
#define TBL_N (TBL_K + TBL_DUP)

/* HAKMEM_BIGCACHE_MAX=4G: entries of many distinct chunk counts, kept apart by live 1-chunk blocks, grow the
 * hash table exactly as the 3/4 rule says; taking them back in a shuffled order finds each one (lookups stay
 * right while buckets are erased) and shrinks the table by the 1/8 rule; hak_collect(1) leaves it at 16. Only
 * the first page of each mapping is touched (the rest is address space only). */
static void child_table(void **state) {
    (void)state;
    static unsigned char *blk[TBL_N], *sep[TBL_N];
    static size_t key[TBL_N];
    hak_collect(1);
    EXPECT_CACHE(0, 0, "start");
    for (size_t i = 0; i < TBL_N; i++) {
        key[i] = i < TBL_K ? i + 1 : i - TBL_K + 1;
        blk[i] = hak_alloc(REQ(key[i]));
        check_block(blk[i], REQ(key[i]), "table block");
        blk[i][8] = (unsigned char)i; /* past the BigCache entry's check word at [0] */
        sep[i] = hak_alloc(REQ(1)); /* live: keeps the next mapping apart */
        check_block(sep[i], REQ(1), "separator");
    }
    size_t order[TBL_N];
    ht_rng_t rng;
    ht_seed(&rng, 7);
    for (size_t i = 0; i < TBL_N; i++)
        order[i] = i;
    for (size_t i = TBL_N - 1; i > 0; i--) {
        size_t j = (size_t)(ht_next(&rng) % (i + 1)), t = order[i];
        order[i] = order[j];
        order[j] = t;
    }
    /* per chunk count: a stack of the cached blocks (LIFO within a bucket) */
    static size_t stack[TBL_K + 1][2], depth[TBL_K + 1];
    tsim_t sim = {0, 0};
    size_t entries = 0, bytes = 0, skipped = 0, keys = 0;
    for (size_t n = 0; n < TBL_N; n++) {
        size_t i = order[n], k = key[i];
        if (hak_region_kind(base_of(blk[i]) + k * C) == HAK_REGION_CACHED) {
            skipped++; /* it would merge with the mapping after it: keep it live */
            continue;
        }
        hak_free(blk[i]);
        if (depth[k] == 0) {
            tsim_add(&sim);
            keys++;
        }
        stack[k][depth[k]++] = i;
        entries++;
        bytes += k * C;
        hak_bigcache_info_t b = ht_bigcache();
        if (b.entries != entries || b.bytes != bytes || b.table_capacity != sim.cap)
            fail_msg(
                "after freeing %zu blocks (%zu chunk counts): %llu entries / %llu chunks, capacity %llu; "
                "expected %zu / %zu, capacity %llu",
                entries, keys, (unsigned long long)b.entries, (unsigned long long)(b.bytes / C),
                (unsigned long long)b.table_capacity, entries, bytes / C, (unsigned long long)sim.cap);
    }
    print_message("%zu entries of %zu chunk counts cached (%zu kept live): table capacity %llu\n", entries,
                  keys, skipped, (unsigned long long)ht_bigcache().table_capacity);
    if (keys <= 48)
        fail_msg("only %zu distinct chunk counts could be cached apart: the table never reaches 128", keys);
    assert_int_equal(ht_bigcache().table_capacity, 128);

    /* take every entry back, chunk counts in a shuffled order: exact hits, the newest of a count first */
    for (size_t i = TBL_N - 1; i > 0; i--) {
        size_t j = (size_t)(ht_next(&rng) % (i + 1)), t = order[i];
        order[i] = order[j];
        order[j] = t;
    }
    for (size_t n = 0; n < TBL_N; n++) {
        size_t k = key[order[n]];
        if (depth[k] == 0) /* as many visits of a chunk count as blocks of it: every cached one is taken */
            continue;
        size_t want = stack[k][--depth[k]];
        hak_bigcache_info_t b0 = ht_bigcache();
        unsigned char *r = hak_alloc(REQ(k));
        if (r != blk[want])
            fail_msg("%zu chunks: got %p, expected the cached %p (newest of its count)", k, (void *)r,
                     (void *)blk[want]);
        check_block(r, REQ(k), "taken back");
        if (r[8] != (unsigned char)want)
            fail_msg("%zu chunks: reused mapping lost its first page", k);
        EXPECT_COUNTS(b0, 1, 0, "exact hit for %zu chunks", k);
        if (depth[k] == 0)
            tsim_del(&sim);
        entries--;
        bytes -= k * C;
        hak_bigcache_info_t b = ht_bigcache();
        if (b.entries != entries || b.bytes != bytes || b.table_capacity != sim.cap)
            fail_msg(
                "after taking %zu chunks: %llu entries / %llu chunks, capacity %llu; expected %zu / %zu, "
                "capacity %llu",
                k, (unsigned long long)b.entries, (unsigned long long)(b.bytes / C),
                (unsigned long long)b.table_capacity, entries, bytes / C, (unsigned long long)sim.cap);
    }
    EXPECT_CACHE(0, 0, "every entry taken back");
    assert_int_equal(ht_bigcache().table_capacity, 16);

    /* everything freed (now they merge where adjacent), then hak_collect(1) empties the cache */
    for (size_t i = 0; i < TBL_N; i++) {
        hak_free(blk[i]);
        hak_free(sep[i]);
    }
    hak_bigcache_info_t full = ht_bigcache();
    assert_int_equal(full.bytes, (TBL_K * (TBL_K + 1) / 2 + TBL_DUP * (TBL_DUP + 1) / 2 + TBL_N) * C);
    hak_collect(1);
    EXPECT_CACHE(0, 0, "hak_collect(1)");
    assert_int_equal(ht_bigcache().table_capacity, 16);
    assert_int_equal(ht_bigcache().purged, full.purged + full.entries);
    for (size_t i = 0; i < TBL_N; i++)
        if (!ht_unmapped(base_of(blk[i]), HT_PAGE))
            fail_msg("block %zu still mapped after hak_collect(1)", i);
}

/* HAKMEM_BIGCACHE_MAX=8M: cached bytes never exceed 8 MiB, the oldest entries go first, evicted mappings are
 * unmapped, a mapping larger than the bound is not cached, a merge that passes the bound is not kept, and a
 * random mix keeps every live block intact. */
typedef struct {
    unsigned char *base[64];
    size_t size[64];
    size_t head, tail, bytes;
} fifo_t;

static void fifo_put(fifo_t *f, unsigned char *base, size_t size, size_t bound) {
    if (size > bound) {
        if (!ht_unmapped(base, size))
            fail_msg("mapping of %zu MiB above the bound is still mapped after its free", size >> 20);
    } else {
        f->base[f->tail] = base;
        f->size[f->tail++] = size;
        f->bytes += size;
    }
    while (f->bytes > bound) {
        unsigned char *old = f->base[f->head];
        f->bytes -= f->size[f->head++];
        EXPECT_KIND(old, HAK_REGION_NONE, "evicted entry");
        if (!ht_unmapped(old, f->size[f->head - 1]))
            fail_msg("evicted entry %p still mapped", (void *)old);
    }
    hak_bigcache_info_t b = ht_bigcache();
    if (b.bytes > bound)
        fail_msg("cached bytes %llu exceed the bound", (unsigned long long)b.bytes);
    EXPECT_CACHE(f->tail - f->head, f->bytes, "oldest evicted first under the 8 MiB bound");
    for (size_t i = f->head; i < f->tail; i++)
        EXPECT_KIND(f->base[i], HAK_REGION_CACHED, "entry %zu", i);
}

static void child_byte_bound(void **state) {
    (void)state;
    const size_t bound = 8 * HT_MIB;
    hak_collect(1);
    enum { N = 24 };
    static unsigned char *p[N], *sep[N + 3];
    static size_t n_of[N];
    ht_rng_t r;
    ht_seed(&r, 99);
    /* a 10 MiB block (5 chunks, above the bound), an 8 MiB one (4 chunks, the bound exactly), a 6-chunk one
     * to shrink later, and 24 blocks of 1-3 chunks; a live 1-chunk block after each */
    unsigned char *over = hak_alloc(10 * HT_MIB), *exact = hak_alloc(REQ(4));
    check_block(over, 10 * HT_MIB, "10 MiB");
    sep[N] = hak_alloc(HT_MIB);
    check_block(exact, REQ(4), "8 MiB");
    sep[N + 1] = hak_alloc(HT_MIB);
    unsigned char *six = hak_alloc(REQ(6));
    check_block(six, REQ(6), "6 chunks");
    sep[N + 2] = hak_alloc(HT_MIB);
    for (size_t i = 0; i < N; i++) {
        size_t k = 1 + (size_t)(ht_next(&r) % 3);
        n_of[i] = REQ(k) - (size_t)(ht_next(&r) % (C / 2));
        p[i] = hak_alloc(n_of[i]);
        check_block(p[i], n_of[i], "bound block");
        sep[i] = hak_alloc(HT_MIB);
        assert_non_null(sep[i]);
    }
    assert_int_equal(ht_large_map(10 * HT_MIB), 6 * C);
    fifo_t f;
    memset(&f, 0, sizeof f);
    for (size_t i = 0; i < N; i++) {
        size_t m = ht_large_map(n_of[i]);
        if (hak_region_kind(base_of(p[i]) + m) == HAK_REGION_CACHED)
            fail_msg("setup: block %zu is right before a cached mapping despite the live block after it", i);
        hak_free(p[i]);
        fifo_put(&f, base_of(p[i]), m, bound);
    }
    assert_true(ht_bigcache().bytes > bound / 2); /* the cache is in use, up to its bound */
    /* above the bound: unmapped on free, the cache untouched */
    hak_free(over);
    fifo_put(&f, base_of(over), 6 * C, bound);
    EXPECT_KIND(base_of(over), HAK_REGION_NONE, "10 MiB block freed");
    /* exactly the bound: cached, everything older evicted */
    hak_free(exact);
    fifo_put(&f, base_of(exact), 4 * C, bound);
    EXPECT_CACHE(1, bound, "an 8 MiB mapping fills the 8 MiB cache alone");
    /* a merge past the bound: the 6-chunk block shrinks to 3 (its 3-chunk tail is cached, evicting the 8 MiB
     * entry), then its free merges the tail into 6 chunks = 12 MiB, which the cache cannot keep */
    unsigned char *S = base_of(six);
    ht_fill(six, REQ(6), 20);
    if (hak_region_kind(S + 6 * C) == HAK_REGION_CACHED)
        fail_msg("setup: the 6-chunk block is right before a cached mapping");
    unsigned char *six2 = hak_realloc(six, REQ(3));
    assert_ptr_equal(six2, six);
    check_block(six2, REQ(3), "6 chunks shrunk to 3");
    fifo_put(&f, S + 3 * C, 3 * C, bound);
    HT_ASSERT_PATTERN(six, 0, REQ(3), 20, "block shrunk by chunks");
    hak_free(six2);
    EXPECT_CACHE(0, 0, "a 12 MiB merged entry is over the 8 MiB bound: not kept");
    EXPECT_KIND(S, HAK_REGION_NONE, "over-bound merged entry");
    EXPECT_KIND(S + 3 * C, HAK_REGION_NONE, "tail merged into the over-bound entry");
    if (!ht_unmapped(S, 6 * C))
        fail_msg("over-bound merged entry still mapped");
    for (size_t i = 0; i < N + 3; i++)
        hak_free(sep[i]);
    assert_true(ht_bigcache().bytes <= bound);

    /* random mix of allocations and frees: the bound holds after every operation, live blocks stay intact */
    enum { L = 8 };
    unsigned char *live[L] = {0};
    size_t ln[L] = {0};
    for (int op = 0; op < 400; op++) {
        size_t k = (size_t)(ht_next(&r) % L);
        if (live[k]) {
            HT_ASSERT_PATTERN(live[k], 0, 4096, k + 1000, "live block before free");
            HT_ASSERT_PATTERN(live[k], ln[k] - 4096, ln[k], k + 1000, "live block tail before free");
            hak_free(live[k]);
            live[k] = NULL;
        } else {
            ln[k] = 260 * HT_KIB + (size_t)(ht_next(&r) % (5 * HT_MIB));
            live[k] = hak_alloc(ln[k]);
            check_block(live[k], ln[k], "random mix");
            ht_fill_range(live[k], 0, 4096, k + 1000);
            ht_fill_range(live[k], ln[k] - 4096, ln[k], k + 1000);
        }
        hak_bigcache_info_t b = ht_bigcache();
        if (b.bytes > bound)
            fail_msg("op %d: cached bytes %llu exceed the bound", op, (unsigned long long)b.bytes);
    }
    for (size_t k = 0; k < L; k++)
        hak_free(live[k]);
    assert_true(ht_bigcache().bytes <= bound);
}

/* HAKMEM_PURGE_DELAY_MS=50: entries idle past the delay are unmapped on the next cache operation (a free, a
 * take, or hak_collect(0)). */
static void child_purge_delay(void **state) {
    (void)state;
    hak_collect(1);
    unsigned char *q[2], *sep[3], *p;
    q[0] = hak_alloc(REQ(1));
    sep[0] = hak_alloc(REQ(1));
    q[1] = hak_alloc(REQ(1));
    sep[1] = hak_alloc(REQ(1));
    p = hak_alloc(16 * HT_MIB);
    sep[2] = hak_alloc(REQ(1));
    check_block(p, 16 * HT_MIB, "16 MiB");
    for (int i = 0; i < 2; i++)
        check_block(q[i], REQ(1), "1 chunk");
    size_t pm = ht_large_map(16 * HT_MIB);
    assert_int_equal(pm, 9 * C);
    memset(p, 1, 16 * HT_MIB);
    size_t rss_live;
    ht_statm(NULL, &rss_live);
    uint64_t t0 = now_ms();
    hak_free(p);
    hak_bigcache_info_t b1 = ht_bigcache();
    EXPECT_CACHE(1, pm, "16 MiB block freed");
    /* not idle long enough yet: a collect without force keeps it */
    hak_collect(0);
    if (now_ms() - t0 < 40)
        EXPECT_CACHE(1, pm, "hak_collect(0) before the delay");
    ht_sleep_ms(200);
    /* another cache operation (the free of a block that does not merge with it) purges the idle entry */
    unsigned char *trigger = q[base_of(q[0]) + C == base_of(p) ? 1 : 0];
    hak_free(trigger);
    hak_bigcache_info_t b2 = ht_bigcache();
    assert_int_equal(b2.purged, b1.purged + 1);
    EXPECT_CACHE(1, C, "idle entry purged by a free, only the new entry left");
    EXPECT_KIND(base_of(p), HAK_REGION_NONE, "purged entry");
    if (!ht_unmapped(base_of(p), pm))
        fail_msg("purged entry still mapped");
    assert_null(hak_heap_of(p));
    size_t rss_after;
    ht_statm(NULL, &rss_after);
    if (rss_after + 12 * HT_MIB > rss_live)
        fail_msg("RSS did not drop after the purge: %zu -> %zu bytes", rss_live, rss_after);
    /* hak_collect(0) purges idle entries by itself */
    ht_sleep_ms(200);
    hak_collect(0);
    hak_bigcache_info_t b3 = ht_bigcache();
    EXPECT_CACHE(0, 0, "hak_collect(0) after the delay");
    assert_int_equal(b3.purged, b2.purged + 1);
    /* a take purges the idle entries it does not use: two idle entries of 1 and 2 chunks kept apart, a
     * 2-chunk request hits one and purges the other */
    unsigned char *one = q[trigger == q[0] ? 1 : 0];
    unsigned char *two = hak_alloc(REQ(2));
    unsigned char *sep2 = hak_alloc(REQ(1));
    check_block(two, REQ(2), "2 chunks");
    if (base_of(one) + C == base_of(two) || base_of(two) + 2 * C == base_of(one))
        fail_msg("setup: the 1- and 2-chunk blocks are adjacent (they would merge)");
    hak_free(one);
    hak_free(two);
    EXPECT_CACHE(2, 3 * C, "1 + 2 chunks cached apart");
    ht_sleep_ms(200);
    hak_bigcache_info_t b4 = ht_bigcache();
    unsigned char *t = hak_alloc(REQ(2));
    assert_ptr_equal(t, two);
    EXPECT_COUNTS(b4, 1, 0, "take of an idle entry");
    assert_int_equal(ht_bigcache().purged, b4.purged + 1);
    EXPECT_CACHE(0, 0, "the other idle entry purged by the take");
    if (!ht_unmapped(base_of(one), C))
        fail_msg("idle entry purged by a take still mapped");
    hak_free(t);
    hak_free(sep2);
    for (int i = 0; i < 3; i++)
        hak_free(sep[i]);
}

/* Default bound, long delay: 64 MiB of large blocks freed stay cached (RSS stays), hak_collect(1) empties the
 * cache and RSS drops. */
static void child_collect_rss(void **state) {
    (void)state;
    enum { N = 16 };
    unsigned char *p[N];
    hak_collect(1);
    size_t rss0, rss1, rss2, rss3;
    ht_statm(NULL, &rss0);
    for (int i = 0; i < N; i++) {
        p[i] = hak_alloc(4 * HT_MIB);
        check_block(p[i], 4 * HT_MIB, "4 MiB");
        memset(p[i], i + 1, 4 * HT_MIB);
    }
    ht_statm(NULL, &rss1);
    assert_true(rss1 >= rss0 + 60 * HT_MIB);
    for (int i = 0; i < N; i++)
        hak_free(p[i]);
    /* 3 chunks each; adjacent ones may have merged, the bytes are exact */
    hak_bigcache_info_t b = ht_bigcache();
    if (b.bytes != N * ht_large_map(4 * HT_MIB) || b.entries < 1 || b.entries > N)
        fail_msg("16 freed 4 MiB blocks: %llu entries / %llu bytes cached, expected %zu bytes",
                 (unsigned long long)b.entries, (unsigned long long)b.bytes, N * ht_large_map(4 * HT_MIB));
    /* every page was written: all of it is dirty (resident), and the statistics count it cached */
    if (b.dirty < N * ht_large_usable(4 * HT_MIB))
        fail_msg("16 freed, fully written 4 MiB blocks: only %llu dirty bytes cached",
                 (unsigned long long)b.dirty);
    hak_stats_t st = ht_stats(NULL);
    assert_true(st.cached_bytes >= b.dirty);
    ht_statm(NULL, &rss2);
    assert_true(rss2 + 8 * HT_MIB >= rss1); /* cached mappings keep their pages */
    hak_collect(1);
    EXPECT_CACHE(0, 0, "hak_collect(1)");
    assert_int_equal(ht_bigcache().purged, b.purged + b.entries);
    ht_statm(NULL, &rss3);
    print_message("RSS: start %zu MiB, 64 MiB live %zu MiB, freed (cached) %zu MiB, collected %zu MiB\n",
                  rss0 >> 20, rss1 >> 20, rss2 >> 20, rss3 >> 20);
    if (rss3 + 56 * HT_MIB > rss2)
        fail_msg("RSS did not drop after hak_collect(1): %zu -> %zu", rss2, rss3);
    for (int i = 0; i < N; i++)
        if (!ht_unmapped(base_of(p[i]), ht_large_map(4 * HT_MIB)))
            fail_msg("block %d still mapped after hak_collect(1)", i);
    hak_stats_t st2 = ht_stats(NULL);
    assert_true(st2.cached_bytes + N * ht_large_usable(4 * HT_MIB) <= st.cached_bytes);
}

/* The resident budget: cached pages are kept while live large blocks are below their high-water mark plus an
 * eighth, and purged (address space kept) when live + cached would pass that. */
static void child_resident_budget(void **state) {
    (void)state;
    const size_t big = 32 * HT_MIB;
    hak_collect(1);
    hak_bigcache_info_t b0 = ht_bigcache();
    unsigned char *a = hak_alloc(big);
    check_block(a, big, "32 MiB");
    memset(a, 0xab, big);
    hak_free(a);
    hak_bigcache_info_t b1 = ht_bigcache();
    if (b1.dirty < ht_large_usable(big) || b1.live != b0.live ||
        b1.live_peak < b0.live + ht_large_usable(big))
        fail_msg("after a written 32 MiB block is freed: %llu dirty cached, live %llu (was %llu), peak %llu",
                 (unsigned long long)b1.dirty, (unsigned long long)b1.live, (unsigned long long)b0.live,
                 (unsigned long long)b1.live_peak);

    /* Below the peak: an 8 MiB block reuses the cached pages; the rest stays cached and resident. */
    unsigned char *s = hak_alloc(8 * HT_MIB);
    check_block(s, 8 * HT_MIB, "8 MiB");
    hak_bigcache_info_t b2 = ht_bigcache();
    if (b2.trimmed != b1.trimmed || b2.hits != b1.hits + 1)
        fail_msg(
            "8 MiB under the peak: trimmed %llu -> %llu bytes, hits %llu -> %llu (expected a hit, no trim)",
            (unsigned long long)b1.trimmed, (unsigned long long)b2.trimmed, (unsigned long long)b1.hits,
            (unsigned long long)b2.hits);
    if (b2.live + b2.dirty > b2.live_peak + b2.entries * HT_PAGE) /* an entry's first page holds the entry */
        fail_msg("live %llu + cached dirty %llu exceed the peak %llu", (unsigned long long)b2.live,
                 (unsigned long long)b2.dirty, (unsigned long long)b2.live_peak);

    /* Past the budget: a 2 MiB-aligned block never comes from the cache (fresh pages), and live + cached now
     * exceed the high-water mark of live plus an eighth: the oldest cached pages are purged down to that
     * budget, their address space stays cached. */
    size_t rss_before, rss_after;
    ht_statm(NULL, &rss_before);
    unsigned char *f = hak_aligned_alloc(2 * HT_MIB, big);
    assert_non_null(f);
    memset(f, 0xcd, big);
    ht_statm(NULL, &rss_after);
    hak_bigcache_info_t b3 = ht_bigcache();
    uint64_t budget = b3.live_peak + (b3.live_peak / 8 & ~(uint64_t)(HT_PAGE - 1));
    uint64_t kept = b3.dirty - b3.entries * HT_PAGE; /* an entry's first page holds the entry: never purged */
    uint64_t over = b3.live + (b2.dirty - b2.entries * HT_PAGE) - budget; /* what had to go */
    uint64_t trimmed = b3.trimmed - b2.trimmed;
    print_message(
        "live %llu MiB (peak %llu), budget %llu MiB: trimmed %llu MiB, %llu MiB still cached dirty\n",
        (unsigned long long)(b3.live >> 20), (unsigned long long)(b3.live_peak >> 20),
        (unsigned long long)(budget >> 20), (unsigned long long)(trimmed >> 20),
        (unsigned long long)(kept >> 20));
    if (b3.live_peak < b3.live || b3.live + kept > budget || trimmed < over || trimmed > over + HT_PAGE ||
        b3.bytes != b2.bytes)
        fail_msg(
            "past the budget: live %llu, peak %llu, budget %llu: trimmed %llu (expected %llu), %llu dirty "
            "kept; cached bytes %llu -> %llu",
            (unsigned long long)b3.live, (unsigned long long)b3.live_peak, (unsigned long long)budget,
            (unsigned long long)trimmed, (unsigned long long)over, (unsigned long long)kept,
            (unsigned long long)b2.bytes, (unsigned long long)b3.bytes);
    /* 32 MiB written while the trimmed pages went back: RSS grew by about 32 MiB less what was trimmed */
    print_message("RSS: %zu MiB before the aligned block, %zu MiB after\n", rss_before >> 20,
                  rss_after >> 20);
#if !HT_SANITIZED /* sanitizer shadow memory grows with every page written: RSS says nothing there           \
                   */
    if (rss_after > rss_before + big - trimmed + 4 * HT_MIB)
        fail_msg("RSS grew from %zu to %zu MiB with %llu MiB trimmed: the cached pages were not purged",
                 rss_before >> 20, rss_after >> 20, (unsigned long long)(trimmed >> 20));
#endif

    /* A purged entry still serves allocations: calloc of its whole size is zero, old data gone. */
    unsigned char *z = hak_calloc(1, 24 * HT_MIB);
    check_block(z, 24 * HT_MIB, "24 MiB calloc");
    for (size_t i = 0; i < 24 * HT_MIB; i += sizeof(uint64_t)) {
        uint64_t w;
        memcpy(&w, z + i, sizeof w);
        if (w != 0)
            fail_msg("calloc over a partly purged cached mapping: bytes at %zu are not zero", i);
    }
    assert_int_equal(ht_bigcache().hits, b3.hits + 1);
    hak_free(z);
    hak_free(s);
    hak_free(f);
}

/* The large-block loop (benchmarks/large_blocks): 4 slots; each step frees one block and allocates another of
 * 1-32 MiB, writing one byte per page. Once anything is cached every allocation is a hit (a smaller entry is
 * grown, a block's fresh tail filled with other entries' dirty chunks) and no chunk move fails. RSS stays
 * within a few MiB of the peak of live blocks: the resident budget. */
static void child_large_loop(void **state) {
    (void)state;
    enum { SLOTS = 4, OPS = 200 };
    unsigned char *slot[SLOTS] = {0};
    size_t len[SLOTS] = {0}, live = 0, peak_live = 0, rss0, rss, peak_rss = 0;
    uint64_t x = 0x9e3779b97f4a7c15ull;
    hak_collect(1);
    ht_statm(NULL, &rss0);
    hak_bigcache_info_t b0 = ht_bigcache();
    for (int i = 0; i < OPS; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        unsigned k = (unsigned)(x % SLOTS);
        if (slot[k] != NULL) {
            if (slot[k][len[k] - 1] != (unsigned char)(k + 1))
                fail_msg("step %d: last byte of a %zu-byte block lost", i, len[k]);
            hak_free(slot[k]);
            live -= ht_large_map(len[k]);
        }
        size_t n = (size_t)1 << (20 + (x >> 8) % 5); /* 1-16 MiB, then up to twice that */
        n += (size_t)(x >> 20) % n;
        slot[k] = hak_alloc(n);
        check_block(slot[k], n, "loop block");
        for (size_t off = 0; off < n; off += HT_PAGE)
            slot[k][off] = (unsigned char)(k + 1);
        slot[k][n - 1] = (unsigned char)(k + 1);
        len[k] = n;
        live += ht_large_map(n);
        peak_live = live > peak_live ? live : peak_live;
        ht_statm(NULL, &rss);
        peak_rss = rss > peak_rss ? rss : peak_rss;
    }
    hak_bigcache_info_t b1 = ht_bigcache();
    print_message(
        "%d steps: %llu hits, %llu misses, %llu MiB gathered, %llu MiB trimmed; peak of live blocks "
        "%zu MiB, RSS %zu -> peak %zu MiB\n",
        OPS, (unsigned long long)(b1.hits - b0.hits), (unsigned long long)(b1.misses - b0.misses),
        (unsigned long long)((b1.gathered - b0.gathered) >> 20),
        (unsigned long long)((b1.trimmed - b0.trimmed) >> 20), peak_live >> 20, rss0 >> 20, peak_rss >> 20);
    if (b1.misses != b0.misses || b1.move_failures != b0.move_failures || b1.hits - b0.hits < OPS - SLOTS)
        fail_msg(
            "expected a hit for every allocation after the first %d: %llu hits, %llu misses, %llu failed "
            "moves",
            SLOTS, (unsigned long long)(b1.hits - b0.hits), (unsigned long long)(b1.misses - b0.misses),
            (unsigned long long)(b1.move_failures - b0.move_failures));
#if !HT_SANITIZED /* sanitizer shadow memory grows with every page written: RSS says nothing there           \
                   */
    if (peak_rss > rss0 + peak_live + 8 * HT_MIB)
        fail_msg(
            "peak RSS %zu MiB: more than %zu MiB at the start + %zu MiB of live blocks at their peak + 8",
            peak_rss >> 20, rss0 >> 20, peak_live >> 20);
#endif
    for (unsigned k = 0; k < SLOTS; k++)
        hak_free(slot[k]);
}

/* HAKMEM_BIGCACHE_MAX=0: nothing is cached, every free (and every chunk a shrink releases) is unmapped,
 * allocation still works. */
static void child_cache_disabled(void **state) {
    (void)state;
    size_t rss1, rss2;
    unsigned char *p[8];
    for (int i = 0; i < 8; i++) {
        p[i] = hak_alloc(2 * HT_MIB + (size_t)i * 4096);
        check_block(p[i], 2 * HT_MIB + (size_t)i * 4096, "cache disabled");
        memset(p[i], i, 2 * HT_MIB);
    }
    ht_statm(NULL, &rss1);
    for (int i = 0; i < 8; i++) {
        hak_free(p[i]);
        EXPECT_CACHE(0, 0, "free %d with the cache disabled", i);
        EXPECT_KIND(base_of(p[i]), HAK_REGION_NONE, "freed block %d", i);
        if (!ht_unmapped(base_of(p[i]), 2 * C))
            fail_msg("freed block %d still mapped with the cache disabled", i);
    }
    ht_statm(NULL, &rss2);
    if (rss2 + 14 * HT_MIB > rss1)
        fail_msg("RSS kept after frees with the cache disabled: %zu -> %zu", rss1, rss2);
    /* a shrink by whole chunks unmaps the tail */
    unsigned char *s = hak_alloc(REQ(4));
    check_block(s, REQ(4), "4 chunks");
    ht_fill(s, REQ(4), 30);
    unsigned char *s2 = hak_realloc(s, HT_MIB);
    assert_ptr_equal(s2, s);
    check_block(s2, HT_MIB, "shrunk to 1 chunk");
    EXPECT_CACHE(0, 0, "shrink with the cache disabled");
    if (!ht_unmapped(base_of(s) + C, 3 * C))
        fail_msg("released tail still mapped with the cache disabled");
    HT_ASSERT_PATTERN(s2, 0, HT_MIB, 30, "shrunk block");
    hak_free(s2);
    unsigned char *q = hak_calloc(1, 3 * HT_MIB);
    check_block(q, 3 * HT_MIB, "calloc");
    assert_true(ht_all_equal(q, 3 * HT_MIB, 0));
    hak_free(q);
    EXPECT_CACHE(0, 0, "end");
    assert_int_equal(ht_bigcache().hits, 0);
}

/* HAKMEM_ON_ERROR=warn: a free of a pointer into a cached entry's first chunk (a double free) is reported and
 * ignored; the entry stays intact and is reused. */
static void child_double_free(void **state) {
    (void)state;
    hak_collect(1);
    unsigned char *p = hak_alloc(HT_MIB);
    check_block(p, HT_MIB, "1 MiB");
    hak_free(p);
    EXPECT_CACHE(1, C, "freed once");
    FILE *log = tmpfile();
    assert_non_null(log);
    fflush(stderr);
    int saved = dup(2);
    assert_true(saved >= 0);
    assert_true(dup2(fileno(log), 2) == 2);
    hak_free(p);                    /* double free */
    hak_free(p + 5 * HT_PAGE + 16); /* an interior pointer of the freed block */
    errno = 0;
    void *rr = hak_realloc(p, 2 * HT_MIB);
    int rerr = errno;
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    assert_null(rr);
    assert_int_equal(rerr, EINVAL);
    char buf[1024] = {0};
    rewind(log);
    size_t got = fread(buf, 1, sizeof buf - 1, log);
    fclose(log);
    buf[got] = '\0';
    char want[128];
    snprintf(want, sizeof want, "free of a large block that is already free: %p", (void *)p);
    if (strstr(buf, want) == NULL)
        fail_msg("double free not reported as \"%s\"; stderr was:\n%s", want, buf);
    snprintf(want, sizeof want, "free of a large block that is already free: %p",
             (void *)(p + 5 * HT_PAGE + 16));
    if (strstr(buf, want) == NULL)
        fail_msg("free of an interior pointer of a cached block not reported as \"%s\"; stderr was:\n%s",
                 want, buf);
    if (strstr(buf, "realloc") == NULL)
        fail_msg("realloc of a cached block not reported; stderr was:\n%s", buf);
    EXPECT_CACHE(1, C, "the reported frees left the entry alone");
    EXPECT_KIND(base_of(p), HAK_REGION_CACHED, "entry after the reported frees");
    hak_bigcache_info_t b = ht_bigcache();
    unsigned char *q = hak_alloc(HT_MIB);
    assert_ptr_equal(q, p);
    EXPECT_COUNTS(b, 1, 0, "entry reused after the reported frees");
    check_block(q, HT_MIB, "reused after a double free");
    hak_free(q);
}

/* Default HAKMEM_ON_ERROR: the double free aborts. */
static void child_double_free_abort(void **state) {
    (void)state;
    struct rlimit no_core = {0, 0};
    setrlimit(RLIMIT_CORE, &no_core);
    unsigned char *p = hak_alloc(HT_MIB);
    assert_non_null(p);
    hak_free(p);
    int devnull = open("/dev/null", O_WRONLY);
    if (devnull >= 0)
        dup2(devnull, 2);
    hak_free(p);
    _exit(0); /* not reached if the double free aborted */
}

/* ---- parent tests -------------------------------------------------------------------------------------- */
static void test_bigcache_reuse_split_merge(void **state) {
    (void)state;
    HT_CHILD_OK("child_reuse_split_merge", 60, "HAKMEM_PURGE_DELAY_MS=600000", "HAKMEM_BIGCACHE_MAX=256M");
}
static void test_bigcache_realloc(void **state) {
    (void)state;
    HT_CHILD_OK("child_realloc", 60, "HAKMEM_PURGE_DELAY_MS=600000", "HAKMEM_BIGCACHE_MAX=256M");
}
static void test_bigcache_disabled(void **state) {
    (void)state;
    HT_CHILD_OK("child_cache_disabled", 60, "HAKMEM_BIGCACHE_MAX=0");
}
static void test_bigcache_table(void **state) {
    (void)state;
    HT_CHILD_OK("child_table", 120, "HAKMEM_BIGCACHE_MAX=4G", "HAKMEM_PURGE_DELAY_MS=600000");
}
static void test_bigcache_byte_bound(void **state) {
    (void)state;
    HT_CHILD_OK("child_byte_bound", 60, "HAKMEM_BIGCACHE_MAX=8M", "HAKMEM_PURGE_DELAY_MS=600000");
}
static void test_bigcache_purge_delay(void **state) {
    (void)state;
    HT_CHILD_OK("child_purge_delay", 60, "HAKMEM_PURGE_DELAY_MS=50", "HAKMEM_BIGCACHE_MAX=256M");
}
static void test_bigcache_collect_rss(void **state) {
    (void)state;
    HT_CHILD_OK("child_collect_rss", 60, "HAKMEM_PURGE_DELAY_MS=600000", "HAKMEM_BIGCACHE_MAX=256M");
}
static void test_bigcache_resident_budget(void **state) {
    (void)state;
    HT_CHILD_OK("child_resident_budget", 60, "HAKMEM_PURGE_DELAY_MS=600000", "HAKMEM_BIGCACHE_MAX=256M");
}
static void test_bigcache_large_loop(void **state) {
    (void)state;
    HT_CHILD_OK("child_large_loop", 120, "HAKMEM_PURGE_DELAY_MS=600000", "HAKMEM_BIGCACHE_MAX=256M");
}
static void test_bigcache_double_free(void **state) {
    (void)state;
    HT_CHILD_OK("child_double_free", 60, "HAKMEM_ON_ERROR=warn", "HAKMEM_PURGE_DELAY_MS=600000");
    const char *const env[] = {"HAKMEM_ON_ERROR=abort", "HAKMEM_PURGE_DELAY_MS=600000", NULL};
    int st = ht_run_child("child_double_free_abort", env, 60);
    if (!WIFSIGNALED(st) || WTERMSIG(st) != SIGABRT)
        fail_msg("double free of a cached large block did not abort (%s %d)",
                 WIFEXITED(st) ? "exit status" : "signal", WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
}

int main(int argc, char **argv) {
    const struct CMUnitTest children[] = {
        cmocka_unit_test(child_reuse_split_merge),
        cmocka_unit_test(child_realloc),
        cmocka_unit_test(child_table),
        cmocka_unit_test(child_byte_bound),
        cmocka_unit_test(child_purge_delay),
        cmocka_unit_test(child_collect_rss),
        cmocka_unit_test(child_resident_budget),
        cmocka_unit_test(child_large_loop),
        cmocka_unit_test(child_cache_disabled),
        cmocka_unit_test(child_double_free),
        cmocka_unit_test(child_double_free_abort),
    };
    int rc = ht_child_main(argc, argv, children, sizeof children / sizeof children[0]);
    if (rc >= 0)
        return rc;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bigcache_reuse_split_merge),
        cmocka_unit_test(test_bigcache_realloc),
        cmocka_unit_test(test_bigcache_table),
        cmocka_unit_test(test_bigcache_byte_bound),
        cmocka_unit_test(test_bigcache_purge_delay),
        cmocka_unit_test(test_bigcache_collect_rss),
        cmocka_unit_test(test_bigcache_resident_budget),
        cmocka_unit_test(test_bigcache_large_loop),
        cmocka_unit_test(test_bigcache_disabled),
        cmocka_unit_test(test_bigcache_double_free),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
