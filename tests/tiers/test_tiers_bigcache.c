/* BigCache: reuse of freed large mappings, growth and shrinking of its hash table, the byte bound
 * (HAKMEM_BIGCACHE_MAX), purging after the delay (HAKMEM_PURGE_DELAY_MS), and hak_collect(1) giving the
 * memory back to the OS. The options are read once at initialisation, so each case runs in a child process
 * (this executable again, `--child <name>`) with the variables set. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "tiers_util.h"

static size_t map_size_of(size_t n) { return (n + TI_LARGE_HEADER + TI_PAGE - 1) & ~(TI_PAGE - 1); }

/* Size grain as DESIGN/ARCHITECTURE describe it: 16 grains per doubling of the page count. */
static uint64_t grain_of(size_t bytes) {
    uint64_t pages = bytes >> 12;
    if (pages < 16)
        return pages;
    unsigned bit = 63u - (unsigned)__builtin_clzll(pages);
    return ((uint64_t)(bit - 3) << 4) + ((pages >> (bit - 4)) & 15);
}

static uint64_t now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* ---- children
 * ---------------------------------------------------------------------------------------------- */

/* HAKMEM_PURGE_DELAY_MS=600000: reuse on a hit, near fits, trimming and growing cached mappings. */
static void child_reuse_hit(void **state) {
    (void)state;
    hak_collect(1);
    hak_bigcache_info_t b0 = ti_bc();
    assert_int_equal(b0.entries, 0);
    assert_int_equal(b0.bytes, 0);
    unsigned char *p = hak_alloc(TI_MIB);
    assert_non_null(p);
    tu_fill(p, TI_MIB, 1);
    hak_free(p);
    hak_bigcache_info_t b1 = ti_bc();
    assert_int_equal(b1.entries, 1);
    assert_int_equal(b1.bytes, map_size_of(TI_MIB));
    /* same size: the same mapping comes back, a hit */
    unsigned char *q = hak_alloc(TI_MIB);
    assert_ptr_equal(q, p);
    hak_bigcache_info_t b2 = ti_bc();
    assert_int_equal(b2.hits, b1.hits + 1);
    assert_int_equal(b2.entries, 0);
    assert_int_equal(b2.bytes, 0);
    /* calloc on a reused (dirty) mapping is zeroed in full */
    memset(q, 0xcd, hak_usable_size(q));
    hak_free(q);
    unsigned char *z = hak_calloc(1, TI_MIB);
    assert_ptr_equal(z, p);
    if (!tu_all_equal(z, hak_usable_size(z), 0))
        fail_msg("calloc on a reused BigCache mapping is not zeroed");
    assert_int_equal(ti_bc().hits, b2.hits + 1);
    hak_free(z);
    /* a near fit (a few % smaller request) takes the whole cached mapping */
    unsigned char *s = hak_alloc(TI_MIB - 20000);
    assert_ptr_equal(s, p);
    assert_int_equal(hak_usable_size(s), map_size_of(TI_MIB) - TI_LARGE_HEADER);
    hak_free(s);
    /* a much smaller request takes the mapping and gives its tail back (usable is tight again) */
    unsigned char *t = hak_alloc(300 * TI_KIB);
    assert_ptr_equal(t, p);
    assert_int_equal(hak_usable_size(t), map_size_of(300 * TI_KIB) - TI_LARGE_HEADER);
    tu_fill(t, hak_usable_size(t), 3);
    hak_free(t);
    /* a larger request grows the cached mapping, keeping its pages (content of the old part is still there,
     * which proves the pages were reused rather than faulted in fresh) */
    hak_bigcache_info_t b3 = ti_bc();
    unsigned char *g = hak_alloc(3 * TI_MIB);
    assert_non_null(g);
    hak_bigcache_info_t b4 = ti_bc();
    assert_int_equal(b4.hits, b3.hits + 1);
    assert_int_equal(b4.entries, 0);
    assert_true(hak_usable_size(g) >= 3 * TI_MIB);
    size_t bad = ti_check_range(g, 4096, 300 * TI_KIB - 4096, 3);
    if (bad != (size_t)-1)
        fail_msg("grown cached mapping did not keep its pages (offset %zu)", bad);
    tu_fill(g, hak_usable_size(g), 4);
    hak_free(g);
    /* different sizes stay distinct: two cached, each comes back for its own size */
    unsigned char *a = hak_alloc(TI_MIB), *c = hak_alloc(8 * TI_MIB);
    assert_non_null(a);
    assert_non_null(c);
    hak_free(a);
    hak_free(c);
    assert_int_equal(ti_bc().entries, 2);
    assert_ptr_equal(hak_alloc(8 * TI_MIB), c);
    assert_ptr_equal(hak_alloc(TI_MIB), a);
    hak_free(a);
    hak_free(c);
    /* destroying a heap hands its large blocks to the BigCache; the default heap then reuses them */
    hak_collect(1);
    hak_heap_options_t o = {0, "tiers-bigcache"};
    hak_heap_t *h = hak_heap_create(&o);
    assert_non_null(h);
    unsigned char *hp[4];
    for (int i = 0; i < 4; i++) {
        hp[i] = hak_heap_alloc(h, (size_t)(i + 1) * TI_MIB);
        assert_non_null(hp[i]);
        memset(hp[i], 0x11, (size_t)(i + 1) * TI_MIB);
    }
    hak_heap_destroy(h);
    hak_bigcache_info_t b5 = ti_bc();
    assert_int_equal(b5.entries, 4);
    for (int i = 0; i < 4; i++) {
        unsigned char *r = hak_alloc((size_t)(i + 1) * TI_MIB);
        assert_ptr_equal(r, hp[i]);
        assert_ptr_equal(hak_heap_of(r), hak_heap_default());
        hak_free(r);
    }
    assert_int_equal(ti_bc().hits, b5.hits + 4);
}

/* HAKMEM_BIGCACHE_MAX=0: nothing is cached, every free unmaps, allocation still works. */
static void child_cache_disabled(void **state) {
    (void)state;
    size_t rss1, rss2;
    unsigned char *p[8];
    for (int i = 0; i < 8; i++) {
        p[i] = hak_alloc(2 * TI_MIB + (size_t)i * 4096);
        assert_non_null(p[i]);
        memset(p[i], i, 2 * TI_MIB);
    }
    ti_statm(NULL, &rss1);
    for (int i = 0; i < 8; i++) {
        hak_free(p[i]);
        hak_bigcache_info_t b = ti_bc();
        assert_int_equal(b.entries, 0);
        assert_int_equal(b.bytes, 0);
    }
    ti_statm(NULL, &rss2);
    if (rss2 + 14 * TI_MIB > rss1)
        fail_msg("RSS kept after frees with the cache disabled: %zu -> %zu", rss1, rss2);
    unsigned char *q = hak_calloc(1, 3 * TI_MIB);
    assert_non_null(q);
    assert_true(tu_all_equal(q, 3 * TI_MIB, 0));
    hak_free(q);
    assert_int_equal(ti_bc().entries, 0);
}

/* Simulation of the byte bound: entries freed in order, oldest evicted first while over the bound. */
typedef struct {
    size_t count, bytes, head; /* FIFO of sizes: [head, count) live */
} sim_t;

static void sim_put(sim_t *s, const size_t *sizes, size_t i, size_t bound) {
    size_t m = sizes[i];
    if (m > bound)
        return;
    while (s->head < i && s->bytes + m > bound)
        s->bytes -= sizes[s->head++];
    s->bytes += m;
}

/* HAKMEM_BIGCACHE_MAX=4G: 3000 distinct large sizes (260 KiB + 4 KiB steps) freed while the bound allows,
 * then ~150 distinct size grains: the table grows with the distinct sizes, hak_collect(1) empties it and the
 * table shrinks back. */
static void child_table_growth(void **state) {
    (void)state;
    const size_t bound = (size_t)4 << 30;
    enum { N = 3000 };
    static unsigned char *p[N];
    static size_t maps[N];
    hak_collect(1);
    for (size_t i = 0; i < N; i++) {
        size_t n = 260 * TI_KIB + i * 4 * TI_KIB;
        p[i] = hak_alloc(n);
        if (p[i] == NULL)
            fail_msg("hak_alloc(%zu) failed (block %zu)", n, i);
        maps[i] = map_size_of(n);
        p[i][0] = (unsigned char)i;
        p[i][n - 1] = (unsigned char)(i >> 3);
    }
    assert_int_equal(ti_bc().entries, 0);
    sim_t sim = {0, 0, 0};
    uint64_t max_entries = 0, max_cap = 0;
    for (size_t i = 0; i < N; i++) {
        size_t n = 260 * TI_KIB + i * 4 * TI_KIB;
        if (p[i][0] != (unsigned char)i || p[i][n - 1] != (unsigned char)(i >> 3))
            fail_msg("block %zu corrupted before its free", i);
        hak_free(p[i]);
        sim_put(&sim, maps, i, bound);
        hak_bigcache_info_t b = ti_bc();
        if (b.bytes > bound)
            fail_msg("cached bytes %llu exceed HAKMEM_BIGCACHE_MAX", (unsigned long long)b.bytes);
        if (b.bytes != sim.bytes || b.entries != i + 1 - sim.head)
            fail_msg(
                "after free %zu: cache holds %llu entries / %llu bytes, expected %zu / %zu (oldest evicted "
                "first under the bound)",
                i, (unsigned long long)b.entries, (unsigned long long)b.bytes, i + 1 - sim.head, sim.bytes);
        if (b.entries > max_entries)
            max_entries = b.entries;
        if (b.table_capacity > max_cap)
            max_cap = b.table_capacity;
    }
    print_message("3000 distinct sizes: at most %llu entries cached, table capacity up to %llu\n",
                  (unsigned long long)max_entries, (unsigned long long)max_cap);
    assert_true(max_entries >= 1000);
    /* distinct grains among what is cached now: the table holds them at <= 3/4 load */
    size_t grains = 0;
    for (size_t i = sim.head; i < N; i++)
        if (i == sim.head || grain_of(maps[i]) != grain_of(maps[i - 1]))
            grains++;
    hak_bigcache_info_t b = ti_bc();
    if (b.table_capacity * 3 < grains * 4)
        fail_msg("table capacity %llu below 4/3 of %zu distinct grains", (unsigned long long)b.table_capacity,
                 grains);

    /* More distinct keys: one size per grain from 260 KiB up while the total stays under 3.5 GiB. */
    hak_collect(1);
    b = ti_bc();
    assert_int_equal(b.entries, 0);
    assert_int_equal(b.bytes, 0);
    static unsigned char *q[400];
    static size_t qn[400];
    size_t nq = 0, total = 0;
    for (size_t pages = 65; nq < 400;) {
        size_t n = pages * TI_PAGE - TI_LARGE_HEADER; /* mapping of exactly `pages` pages */
        if (total + pages * TI_PAGE > ((size_t)7 << 29))
            break;
        if (nq && grain_of(pages * TI_PAGE) == grain_of(map_size_of(qn[nq - 1])))
            fail_msg("test bug: sizes %zu and %zu share a grain", qn[nq - 1], n);
        q[nq] = hak_alloc(n);
        assert_non_null(q[nq]);
        qn[nq++] = n;
        total += pages * TI_PAGE;
        unsigned bit = 63u - (unsigned)__builtin_clzll(pages);
        pages += (size_t)1 << (bit - 4); /* the next grain */
    }
    for (size_t i = 0; i < nq; i++)
        hak_free(q[i]);
    b = ti_bc();
    print_message("%zu distinct grains: table capacity %llu, %llu entries\n", nq,
                  (unsigned long long)b.table_capacity, (unsigned long long)b.entries);
    assert_int_equal(b.entries, nq);
    assert_int_equal(b.bytes, total);
    assert_true(nq > 96); /* more than a 128-slot table holds at 3/4 load */
    assert_true(b.table_capacity * 3 >= nq * 4);
    uint64_t peak = b.table_capacity;
    /* each size finds its own mapping in the big table */
    for (size_t i = 0; i < nq; i += 7) {
        uint64_t hits = ti_bc().hits;
        unsigned char *r = hak_alloc(qn[i]);
        if (r != q[i])
            fail_msg("size %zu (grain %llu) did not get its cached mapping back", qn[i],
                     (unsigned long long)grain_of(map_size_of(qn[i])));
        assert_int_equal(ti_bc().hits, hits + 1);
        hak_free(r);
    }
    hak_collect(1);
    b = ti_bc();
    assert_int_equal(b.entries, 0);
    assert_int_equal(b.bytes, 0);
    if (b.table_capacity >= peak || b.table_capacity > 32)
        fail_msg("table did not shrink after emptying: capacity %llu (peak %llu)",
                 (unsigned long long)b.table_capacity, (unsigned long long)peak);
}

/* HAKMEM_BIGCACHE_MAX=8M: cached bytes never exceed 8 MiB, a block above the bound is not cached, and a
 * random mix keeps every live block intact. */
static void child_byte_bound(void **state) {
    (void)state;
    const size_t bound = 8 * TI_MIB;
    hak_collect(1);
    enum { N = 30 };
    static unsigned char *p[N];
    static size_t maps[N];
    tu_rng_t r;
    tu_seed(&r, 99);
    for (size_t i = 0; i < N; i++) {
        size_t n = 300 * TI_KIB + (size_t)(tu_next(&r) % (3 * TI_MIB));
        p[i] = hak_alloc(n);
        assert_non_null(p[i]);
        maps[i] = map_size_of(n);
        assert_int_equal(hak_usable_size(p[i]), maps[i] - TI_LARGE_HEADER);
    }
    sim_t sim = {0, 0, 0};
    for (size_t i = 0; i < N; i++) {
        hak_free(p[i]);
        sim_put(&sim, maps, i, bound);
        hak_bigcache_info_t b = ti_bc();
        if (b.bytes > bound)
            fail_msg("cached bytes %llu exceed the 8 MiB bound", (unsigned long long)b.bytes);
        assert_int_equal(b.bytes, sim.bytes);
        assert_int_equal(b.entries, i + 1 - sim.head);
    }
    assert_true(ti_bc().bytes > bound / 2); /* the cache is in use, up to its bound */
    /* a block larger than the bound is unmapped on free, the cache is untouched */
    unsigned char *big = hak_alloc(10 * TI_MIB);
    hak_bigcache_info_t b1 = ti_bc();
    assert_non_null(big);
    hak_free(big);
    hak_bigcache_info_t b2 = ti_bc();
    assert_true(b2.bytes <= bound);
    assert_int_equal(b2.entries, b1.entries);
    assert_int_equal(b2.bytes, b1.bytes);
    /* random mix of allocations and frees: the bound holds after every operation, live blocks stay intact */
    enum { L = 8 };
    unsigned char *live[L] = {0};
    size_t ln[L] = {0};
    for (int op = 0; op < 400; op++) {
        size_t k = (size_t)(tu_next(&r) % L);
        if (live[k]) {
            TI_ASSERT_PATTERN(live[k], 0, 4096, k + 1000, "live block before free");
            TI_ASSERT_PATTERN(live[k], ln[k] - 4096, ln[k], k + 1000, "live block tail before free");
            hak_free(live[k]);
            live[k] = NULL;
        } else {
            ln[k] = 260 * TI_KIB + (size_t)(tu_next(&r) % (5 * TI_MIB));
            live[k] = hak_alloc(ln[k]);
            assert_non_null(live[k]);
            ti_fill_range(live[k], 0, 4096, k + 1000);
            ti_fill_range(live[k], ln[k] - 4096, ln[k], k + 1000);
        }
        hak_bigcache_info_t b = ti_bc();
        if (b.bytes > bound)
            fail_msg("op %d: cached bytes %llu exceed the bound", op, (unsigned long long)b.bytes);
    }
    for (size_t k = 0; k < L; k++)
        hak_free(live[k]);
    assert_true(ti_bc().bytes <= bound);
}

/* HAKMEM_PURGE_DELAY_MS=50: entries idle past the delay are unmapped on the next cache operation. */
static void child_purge_delay(void **state) {
    (void)state;
    hak_collect(1);
    unsigned char *q = hak_alloc(2 * TI_MIB);
    unsigned char *p = hak_alloc(16 * TI_MIB);
    assert_non_null(q);
    assert_non_null(p);
    memset(p, 1, 16 * TI_MIB);
    size_t rss_live;
    ti_statm(NULL, &rss_live);
    uint64_t t0 = now_ms();
    hak_free(p);
    hak_bigcache_info_t b1 = ti_bc();
    assert_int_equal(b1.entries, 1);
    assert_int_equal(b1.bytes, map_size_of(16 * TI_MIB));
    /* not yet idle long enough: a collect without force keeps it */
    hak_collect(0);
    if (now_ms() - t0 < 40)
        assert_int_equal(ti_bc().entries, 1);
    ti_sleep_ms(200);
    /* another cache operation (a free of another large block) purges the idle entry */
    hak_free(q);
    hak_bigcache_info_t b2 = ti_bc();
    assert_int_equal(b2.purged, b1.purged + 1);
    assert_int_equal(b2.entries, 1); /* only q */
    assert_int_equal(b2.bytes, map_size_of(2 * TI_MIB));
    size_t rss_after;
    ti_statm(NULL, &rss_after);
    if (rss_after + 12 * TI_MIB > rss_live)
        fail_msg("RSS did not drop after the purge: %zu -> %zu bytes", rss_live, rss_after);
    /* the purged address is no longer a block */
    assert_null(hak_heap_of(p));
    /* hak_collect(0) purges idle entries by itself */
    ti_sleep_ms(200);
    hak_collect(0);
    hak_bigcache_info_t b3 = ti_bc();
    assert_int_equal(b3.entries, 0);
    assert_int_equal(b3.bytes, 0);
    assert_int_equal(b3.purged, b2.purged + 1);
}

/* Default bound, long delay: 64 MiB of large blocks freed stay cached (RSS stays), hak_collect(1) empties the
 * cache and RSS drops. */
static void child_collect_rss(void **state) {
    (void)state;
    enum { N = 16 };
    unsigned char *p[N];
    hak_collect(1);
    size_t rss0, rss1, rss2, rss3;
    ti_statm(NULL, &rss0);
    for (int i = 0; i < N; i++) {
        p[i] = hak_alloc(4 * TI_MIB);
        assert_non_null(p[i]);
        memset(p[i], i + 1, 4 * TI_MIB);
    }
    ti_statm(NULL, &rss1);
    assert_true(rss1 >= rss0 + 60 * TI_MIB);
    for (int i = 0; i < N; i++)
        hak_free(p[i]);
    hak_bigcache_info_t b = ti_bc();
    assert_int_equal(b.entries, N);
    assert_int_equal(b.bytes, N * map_size_of(4 * TI_MIB));
    hak_stats_t st = ti_stats(NULL);
    assert_true(st.cached_bytes >= b.bytes);
    ti_statm(NULL, &rss2);
    assert_true(rss2 + 8 * TI_MIB >= rss1); /* cached mappings keep their pages */
    hak_collect(1);
    b = ti_bc();
    assert_int_equal(b.entries, 0);
    assert_int_equal(b.bytes, 0);
    ti_statm(NULL, &rss3);
    print_message("RSS: start %zu MiB, 64 MiB live %zu MiB, freed (cached) %zu MiB, collected %zu MiB\n",
                  rss0 >> 20, rss1 >> 20, rss2 >> 20, rss3 >> 20);
    if (rss3 + 56 * TI_MIB > rss2)
        fail_msg("RSS did not drop after hak_collect(1): %zu -> %zu", rss2, rss3);
    hak_stats_t st2 = ti_stats(NULL);
    assert_true(st2.cached_bytes + 64 * TI_MIB <= st.cached_bytes);
}

/* ---- parent tests ---------------------------------------------------------------------------------------
 */
static void test_bigcache_reuse_hit(void **state) {
    (void)state;
    TI_CHILD_OK("child_reuse_hit", 60, "HAKMEM_PURGE_DELAY_MS=600000");
}
static void test_bigcache_disabled(void **state) {
    (void)state;
    TI_CHILD_OK("child_cache_disabled", 60, "HAKMEM_BIGCACHE_MAX=0");
}
static void test_bigcache_table_growth(void **state) {
    (void)state;
    TI_CHILD_OK("child_table_growth", 120, "HAKMEM_BIGCACHE_MAX=4G", "HAKMEM_PURGE_DELAY_MS=600000");
}
static void test_bigcache_byte_bound(void **state) {
    (void)state;
    TI_CHILD_OK("child_byte_bound", 60, "HAKMEM_BIGCACHE_MAX=8M", "HAKMEM_PURGE_DELAY_MS=600000");
}
static void test_bigcache_purge_delay(void **state) {
    (void)state;
    TI_CHILD_OK("child_purge_delay", 60, "HAKMEM_PURGE_DELAY_MS=50");
}
static void test_bigcache_collect_rss(void **state) {
    (void)state;
    TI_CHILD_OK("child_collect_rss", 60, "HAKMEM_PURGE_DELAY_MS=600000", "HAKMEM_BIGCACHE_MAX=256M");
}

int main(int argc, char **argv) {
    const struct CMUnitTest children[] = {
        cmocka_unit_test(child_reuse_hit),   cmocka_unit_test(child_table_growth),
        cmocka_unit_test(child_byte_bound),  cmocka_unit_test(child_purge_delay),
        cmocka_unit_test(child_collect_rss), cmocka_unit_test(child_cache_disabled),
    };
    int rc = ti_child_main(argc, argv, children, sizeof children / sizeof children[0]);
    if (rc >= 0)
        return rc;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bigcache_reuse_hit),   cmocka_unit_test(test_bigcache_table_growth),
        cmocka_unit_test(test_bigcache_byte_bound),  cmocka_unit_test(test_bigcache_purge_delay),
        cmocka_unit_test(test_bigcache_collect_rss), cmocka_unit_test(test_bigcache_disabled),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
