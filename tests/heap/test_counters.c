/* SPDX-License-Identifier: MIT */
/* Event counters of hak_stats_t against known workloads: large blocks and the BigCache, spans carved and
 * released, SuperSlabs, slow paths, remote frees (another thread frees, the owner collects), system calls,
 * and the counts of a destroyed heap kept in the process totals. (The JSON output of the counters:
 * check_stats_output.py; the peak of held bytes: test_stats.c.) */
#include "hakmem_test.h"

static hak_stats_t stats_of(hak_heap_t *heap) {
    hak_stats_t st;
    ht_get_stats(heap, &st);
    return st;
}

/* N large blocks allocated and freed one after the other: the counters move by N; with an empty BigCache the
 * first one maps and every later one reuses the previous one's mapping. */
static void test_counters_large_blocks(void **state) {
    (void)state;
    enum { N = 20 };
    hak_heap_t *h = hak_heap_create(&(hak_heap_options_t){0, "large-counts"});
    assert_non_null(h);
    hak_collect(1); /* empty BigCache */
    hak_stats_t p0 = stats_of(NULL), h0 = stats_of(h);
    assert_int_equal(h0.large_allocs, 0);
    assert_int_equal(h0.large_frees, 0);
    for (int i = 0; i < N; i++) {
        void *p = hak_heap_alloc(h, 3 * HT_MIB);
        assert_non_null(p);
        memset(p, 1, HT_PAGE);
        hak_free(p);
    }
    hak_stats_t p1 = stats_of(NULL), h1 = stats_of(h);
    assert_int_equal(h1.large_allocs, N);
    assert_int_equal(h1.large_frees, N);
    assert_int_equal(h1.bigcache_misses, 1);
    assert_int_equal(h1.bigcache_hits, N - 1);
    assert_int_equal(p1.large_allocs - p0.large_allocs, N);
    assert_int_equal(p1.large_frees - p0.large_frees, N);
    assert_int_equal(p1.bigcache_hits - p0.bigcache_hits, N - 1);
    assert_true(p1.mmap_calls > p0.mmap_calls); /* the one mapping */
    /* process-wide counters are 0 in a heap's statistics */
    assert_int_equal(h1.mmap_calls + h1.munmap_calls + h1.mremap_calls + h1.madvise_calls, 0);
    assert_int_equal(h1.superslabs_purged + h1.bigcache_trims, 0);
    /* hak_collect(1) unmaps the cached mapping */
    hak_collect(1);
    hak_stats_t p2 = stats_of(NULL);
    assert_true(p2.munmap_calls > p1.munmap_calls);
    hak_heap_destroy(h);
}

/* Blocks of 64 KiB come four to a span of four slabs (three in a span at slab 0, which holds the SuperSlab
 * header): the spans carved are the distinct spans of the blocks; freed and collected, they all go back to
 * their SuperSlabs. */
static void test_counters_spans(void **state) {
    (void)state;
    enum { N = 40 };
    hak_heap_t *h = hak_heap_create(&(hak_heap_options_t){0, "span-counts"});
    assert_non_null(h);
    void *blocks[N];
    uintptr_t spans[N];
    size_t nspans = 0;
    for (int i = 0; i < N; i++) {
        blocks[i] = hak_heap_alloc(h, 64 * HT_KIB);
        assert_non_null(blocks[i]);
        uintptr_t id = ht_span_id(blocks[i]);
        size_t k = 0;
        while (k < nspans && spans[k] != id)
            k++;
        if (k == nspans)
            spans[nspans++] = id;
    }
    unsigned slabs = ht_span_info(blocks[0]).span_slabs;
    assert_int_equal(slabs, 4);
    hak_stats_t a = stats_of(h);
    assert_int_equal(a.spans_carved, nspans);
    assert_true(nspans >= N / 4);
    assert_int_equal(a.spans_released, 0);
    assert_true(a.alloc_slow >= a.spans_carved); /* each new span was taken by a slow allocation */
    assert_true(a.superslabs_mapped + a.superslabs_reused >= 1);
    assert_int_equal(a.held_bytes, (uint64_t)nspans * slabs * HT_SLAB);
    for (int i = 0; i < N; i++)
        hak_free(blocks[i]);
    hak_collect(0); /* the current span of the class too */
    hak_stats_t b = stats_of(h);
    assert_int_equal(b.spans_carved, nspans);
    assert_int_equal(b.spans_released, nspans);
    assert_int_equal(b.held_bytes, 0);
    assert_int_equal(b.live_blocks, 0);
    assert_int_equal(b.peak_held_bytes, a.held_bytes);
    hak_heap_destroy(h);
}

typedef struct {
    void **blocks;
    size_t n;
} frees_t;

static void *free_all(void *arg) {
    frees_t *f = arg;
    for (size_t i = 0; i < f->n; i++)
        hak_free(f->blocks[i]);
    return NULL;
}

/* Another thread frees N blocks: they count as slow frees at once (pending), and as remote frees once the
 * owner collects them. */
static void test_counters_remote_frees(void **state) {
    (void)state;
    enum { N = 1000 };
    hak_heap_t *h = hak_heap_create(&(hak_heap_options_t){0, "remote-counts"});
    assert_non_null(h);
    static void *blocks[N];
    for (int i = 0; i < N; i++) {
        blocks[i] = hak_heap_alloc(h, 48);
        assert_non_null(blocks[i]);
    }
    hak_stats_t a = stats_of(h);
    assert_int_equal(a.remote_frees, 0);
    frees_t f = {blocks, N};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, free_all, &f), 0);
    assert_int_equal(pthread_join(t, NULL), 0);
    hak_stats_t b = stats_of(h);
    assert_int_equal(b.live_blocks, 0);
    assert_int_equal(b.free_slow - a.free_slow, N);
    hak_collect(0); /* the owner collects them */
    hak_stats_t c = stats_of(h);
    assert_int_equal(c.remote_frees, N);
    assert_int_equal(c.free_slow - a.free_slow, N); /* counted once, pending or collected */
    hak_heap_destroy(h);
}

/* An owner free that leaves the fast path: an aligned (interior) pointer. */
static void test_counters_owner_slow_free(void **state) {
    (void)state;
    hak_heap_t *h = hak_heap_create(&(hak_heap_options_t){0, "slow-free"});
    assert_non_null(h);
    void *p = hak_heap_aligned_alloc(h, 64 * HT_KIB, 1000);
    assert_non_null(p);
    hak_stats_t a = stats_of(h);
    hak_free(p);
    hak_stats_t b = stats_of(h);
    assert_int_equal(b.free_slow - a.free_slow, 1);
    assert_int_equal(b.remote_frees, 0);
    hak_heap_destroy(h);
}

/* Empty SuperSlabs go to the global cache, and hak_collect(1) purges them. */
static void test_counters_superslab_purge(void **state) {
    (void)state;
    hak_heap_t *h = hak_heap_create(&(hak_heap_options_t){0, "purge-counts"});
    assert_non_null(h);
    void *p = hak_heap_alloc(h, 100);
    assert_non_null(p);
    hak_free(p);
    hak_stats_t p0 = stats_of(NULL);
    hak_heap_destroy(h); /* its SuperSlab goes to the cache, committed */
    hak_collect(1);
    hak_stats_t p1 = stats_of(NULL);
    assert_true(p1.superslabs_purged > p0.superslabs_purged);
    assert_true(p1.madvise_calls > p0.madvise_calls);
}

/* A destroyed heap's counts stay in the process totals; the blocks the destroy frees count as freed. */
static void test_counters_destroyed_heap(void **state) {
    (void)state;
    hak_heap_t *h = hak_heap_create(&(hak_heap_options_t){0, "destroyed"});
    assert_non_null(h);
    for (int i = 0; i < 3; i++)
        assert_non_null(hak_heap_alloc(h, HT_MIB)); /* left live: the destroy frees them */
    void *small = hak_heap_alloc(h, 32);
    assert_non_null(small);
    hak_stats_t in_heap = stats_of(h), p0 = stats_of(NULL);
    assert_int_equal(in_heap.large_allocs, 3);
    assert_int_equal(in_heap.large_frees, 0);
    hak_heap_destroy(h);
    hak_stats_t p1 = stats_of(NULL);
    assert_int_equal(p1.large_allocs, p0.large_allocs);
    assert_int_equal(p1.large_frees, p0.large_frees + 3);
    assert_int_equal(p1.spans_carved, p0.spans_carved);
    assert_int_equal(p1.alloc_slow, p0.alloc_slow);
    assert_int_equal(p1.heap_count, p0.heap_count - 1);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_counters_large_blocks),    cmocka_unit_test(test_counters_spans),
        cmocka_unit_test(test_counters_remote_frees),    cmocka_unit_test(test_counters_owner_slow_free),
        cmocka_unit_test(test_counters_superslab_purge), cmocka_unit_test(test_counters_destroyed_heap),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
