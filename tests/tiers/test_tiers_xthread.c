/* Cross-thread use of every tier: blocks of tiny, pool and large sizes (plain and aligned) freed and
 * realloc'd by threads that did not allocate them, and blocks outliving the thread that allocated them. */
#include "hakmem_test.h"
#include <pthread.h>
#include <stdatomic.h>

static size_t pick_size(ht_rng_t *r) {
    uint64_t x = ht_next(r);
    switch (x % 8) {
    case 0:
    case 1:
    case 2:
        return 16 + (size_t)((x >> 8) % 1000); /* tiny */
    case 3:
        return 1024 + (size_t)((x >> 8) % 7200); /* tiny, upper */
    case 4:
    case 5:
        return 8193 + (size_t)((x >> 8) % (HAK_SLAB_MAX_SIZE - 8192)); /* pool */
    case 6:
        return HAK_SLAB_MAX_SIZE + 1 + (size_t)((x >> 8) % (2 * HT_MIB)); /* large */
    default:
        return (size_t)1 << (4 + (x >> 8) % 15); /* edges */
    }
}

/* ---- producer / consumer ------------------------------------------------------------------------------- */
enum { RING = 256 };
static unsigned char *_Atomic ring[RING];
static atomic_int producers_done;
static atomic_ullong consumed, consumer_reallocs;
static atomic_int failures;

#define TFAIL(...) HT_THREAD_FAIL(failures, __VA_ARGS__)

static int items_per_producer(void) { return 20000 / HT_SLOWDOWN; }

static void *producer(void *arg) {
    ht_rng_t r;
    ht_seed(&r, (uint64_t)(uintptr_t)arg);
    int items = items_per_producer();
    for (int i = 0; i < items; i++) {
        size_t n = pick_size(&r);
        unsigned char *p;
        if (i % 5 == 0) {
            size_t a = (size_t)32 << (ht_next(&r) % 8); /* 32 .. 4096 */
            p = hak_aligned_alloc(a, n);
            if (p && (uintptr_t)p % a)
                TFAIL("aligned_alloc(%zu, %zu) misaligned", a, n);
        } else {
            p = hak_alloc(n);
        }
        if (!p) {
            TFAIL("allocation of %zu failed", n);
            break;
        }
        ht_mark(p, n, ht_next(&r) | 1);
        size_t slot = (size_t)(ht_next(&r) % RING);
        for (;;) {
            unsigned char *expected = NULL;
            if (atomic_compare_exchange_weak(&ring[slot], &expected, p))
                break;
            slot = (slot + 1) % RING;
            if (slot == 0)
                sched_yield();
        }
    }
    atomic_fetch_add(&producers_done, 1);
    return NULL;
}

static void *consumer(void *arg) {
    int nproducers = (int)(intptr_t)arg;
    ht_rng_t r;
    ht_seed(&r, 4242);
    for (;;) {
        int done = atomic_load(&producers_done) == nproducers;
        int got = 0;
        for (size_t s = 0; s < RING; s++) {
            unsigned char *p = atomic_exchange(&ring[s], NULL);
            if (!p)
                continue;
            got = 1;
            size_t n;
            uint64_t tag;
            size_t bad = ht_check_mark(p, &n, &tag);
            if (bad != (size_t)-1)
                TFAIL("block %p (%zu bytes) damaged at %zu when received", (void *)p, n, bad);
            if (hak_usable_size(p) < n)
                TFAIL("block %p: usable %zu < %zu", (void *)p, hak_usable_size(p), n);
            if (hak_heap_of(p) != hak_heap_default())
                TFAIL("block %p: wrong heap", (void *)p);
            if (ht_next(&r) % 4 == 0) { /* realloc a block this thread did not allocate, to another tier */
                size_t m = pick_size(&r);
                if (m < 16)
                    m = 16;
                unsigned char *q = hak_realloc(p, m);
                if (!q) {
                    TFAIL("realloc(%zu -> %zu) failed", n, m);
                    continue;
                }
                size_t keep = (n < m ? n : m);
                size_t head = keep < 2048 ? keep : 2048;
                if (memcmp(q, &(uint64_t){n}, 8) != 0 || ht_check_range(q, 16, head, tag) != (size_t)-1)
                    TFAIL("realloc(%zu -> %zu) by another thread lost content", n, m);
                ht_mark(q, m, tag);
                p = q;
                atomic_fetch_add(&consumer_reallocs, 1);
            }
            hak_free(p);
            atomic_fetch_add(&consumed, 1);
        }
        if (done && !got)
            break;
        if (!got)
            sched_yield();
    }
    return NULL;
}

static void test_xthread_producer_consumer(void **state) {
    (void)state;
    hak_collect(0);
    hak_stats_t s0 = ht_stats(hak_heap_default());
    enum { P = 2 };
    pthread_t pt[P], ct;
    atomic_store(&producers_done, 0);
    atomic_store(&consumed, 0);
    atomic_store(&failures, 0);
    assert_int_equal(pthread_create(&ct, NULL, consumer, (void *)(intptr_t)P), 0);
    for (int i = 0; i < P; i++)
        assert_int_equal(pthread_create(&pt[i], NULL, producer, (void *)(intptr_t)(i + 1)), 0);
    for (int i = 0; i < P; i++)
        pthread_join(pt[i], NULL);
    pthread_join(ct, NULL);
    assert_int_equal(atomic_load(&failures), 0);
    assert_int_equal(atomic_load(&consumed),
                     (unsigned long long)P * (unsigned long long)items_per_producer());
    assert_true(atomic_load(&consumer_reallocs) > 0);
    /* every block came back: the threads have exited, their SuperSlabs settled by the stats walk */
    hak_collect(0);
    hak_stats_t s1 = ht_stats(hak_heap_default());
    if (s1.live_blocks != s0.live_blocks || s1.large_blocks != s0.large_blocks)
        fail_msg("after all frees: %llu live blocks (%llu large), expected %llu (%llu)",
                 (unsigned long long)s1.live_blocks, (unsigned long long)s1.large_blocks,
                 (unsigned long long)s0.live_blocks, (unsigned long long)s0.large_blocks);
}

/* ---- blocks outliving their thread --------------------------------------------------------------------- */
enum { ORPHANS = 600 };
static unsigned char *orphans[ORPHANS];

static void *orphan_maker(void *arg) {
    hak_heap_t *heap = arg;
    ht_rng_t r;
    ht_seed(&r, 555);
    for (int i = 0; i < ORPHANS; i++) {
        size_t n = pick_size(&r);
        orphans[i] = heap ? hak_heap_alloc(heap, n) : hak_alloc(n);
        if (!orphans[i]) {
            TFAIL("orphan allocation failed");
            return NULL;
        }
        ht_mark(orphans[i], n, (uint64_t)i * 7 + 1);
    }
    return NULL;
}

static void run_orphans(hak_heap_t *heap) {
    hak_heap_t *owner = heap ? heap : hak_heap_default();
    hak_stats_t s0 = ht_stats(owner);
    atomic_store(&failures, 0);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, orphan_maker, heap), 0);
    pthread_join(t, NULL); /* the allocating thread is gone */
    assert_int_equal(atomic_load(&failures), 0);
    hak_stats_t s1 = ht_stats(owner);
    assert_int_equal(s1.live_blocks, s0.live_blocks + ORPHANS);
    /* free the even ones here, realloc the odd ones (to other tiers) first */
    for (int i = 0; i < ORPHANS; i++) {
        size_t n;
        uint64_t tag;
        size_t bad = ht_check_mark(orphans[i], &n, &tag);
        if (bad != (size_t)-1)
            fail_msg("orphan %d (%zu bytes) damaged at %zu after its thread exited", i, n, bad);
        if (hak_heap_of(orphans[i]) != owner)
            fail_msg("orphan %d: wrong heap", i);
        if (i & 1) {
            size_t m = n > HAK_SLAB_MAX_SIZE ? n / 8 + 16 : n * 3 + HAK_SLAB_MAX_SIZE / 2;
            unsigned char *q = heap ? hak_heap_realloc(heap, orphans[i], m) : hak_realloc(orphans[i], m);
            assert_non_null(q);
            if (hak_heap_of(q) != owner)
                fail_msg("orphan %d: realloc changed the heap", i);
            assert_int_equal(ht_check_range(q, 16, (n < m ? n : m) < 2048 ? (n < m ? n : m) : 2048, tag),
                             (size_t)-1);
            hak_free(q);
        } else {
            hak_free(orphans[i]);
        }
    }
    hak_collect(0);
    hak_stats_t s2 = ht_stats(owner);
    assert_int_equal(s2.live_blocks, s0.live_blocks);
    assert_int_equal(s2.large_blocks, s0.large_blocks);
    /* a new thread can allocate every tier again (adopting what the first one left) */
    assert_int_equal(pthread_create(&t, NULL, orphan_maker, heap), 0);
    pthread_join(t, NULL);
    assert_int_equal(atomic_load(&failures), 0);
    for (int i = 0; i < ORPHANS; i++)
        hak_free(orphans[i]);
}

static void test_xthread_orphans_default(void **state) {
    (void)state;
    run_orphans(NULL);
}

static void test_xthread_orphans_private(void **state) {
    (void)state;
    hak_heap_options_t o = {0, "tiers-orphans"};
    hak_heap_t *h = hak_heap_create(&o);
    assert_non_null(h);
    run_orphans(h);
    hak_heap_destroy(h);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_xthread_producer_consumer),
        cmocka_unit_test(test_xthread_orphans_default),
        cmocka_unit_test(test_xthread_orphans_private),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
