/* SPDX-License-Identifier: MIT */
/* Cross-thread frees: after blocks allocated by an exited thread are freed by another, the statistics count
 * none of them live; producer/consumer pairs through rings; blocks freed by another thread or by main after
 * their thread exited, and main allocating the same mix afterwards; threads swapping blocks through shared
 * slots; and in every tier (tiny, pool, large, plain and aligned): blocks freed and realloc'd to other tiers
 * by a thread that did not allocate them, blocks outliving their thread on the default heap and a private
 * one, and a new thread allocating again afterwards. */
#include "hakmem_test.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hakmem/hakmem.h>

static size_t mixed_size(uint64_t i) {
    uint64_t r = ht_mix(i);
    switch (r % 64) {
    case 0:
        return 9000 + (size_t)(r >> 8) % 200000; /* pool */
    case 1:
        return (r >> 8) % 8 == 0 ? (size_t)300000 + (size_t)(r >> 16) % 700000 : 1 + (size_t)(r >> 8) % 8192;
    default:
        return 1 + (size_t)(r >> 8) % 1024;
    }
}

/* Blocks carry their size and index so any thread can verify them. */
typedef struct {
    size_t size;
    uint64_t id;
} hdr_t;

static void *make_block(uint64_t id) {
    size_t n = mixed_size(id);
    if (n < sizeof(hdr_t))
        n = sizeof(hdr_t);
    unsigned char *p = hak_alloc(n);
    if (!p)
        return NULL;
    hdr_t h = {n, id};
    memcpy(p, &h, sizeof h);
    ht_fill(p + sizeof h, n - sizeof h, id);
    return p;
}

/* Returns 0 if the block is intact. */
static int check_block(const void *p, uint64_t id) {
    hdr_t h;
    memcpy(&h, p, sizeof h);
    if (h.id != id)
        return 1;
    size_t n = mixed_size(id);
    if (n < sizeof(hdr_t))
        n = sizeof(hdr_t);
    if (h.size != n)
        return 2;
    if (hak_usable_size(p) < n)
        return 3;
    if (ht_check((const unsigned char *)p + sizeof h, n - sizeof h, id) != (size_t)-1)
        return 4;
    return 0;
}

/* ---- producer / consumer through a single-producer single-consumer ring -------------------------------- */
#define RING 1024
typedef struct {
    _Atomic size_t head, tail;
    void *_Atomic slot[RING];
    size_t count;
    uint64_t base;
    atomic_int errors;
    atomic_int nulls;
} spsc_t;

static void *producer(void *arg) {
    spsc_t *q = arg;
    for (size_t i = 0; i < q->count; i++) {
        void *p = make_block(q->base + i);
        if (!p)
            atomic_fetch_add(&q->nulls, 1);
        size_t h = atomic_load_explicit(&q->head, memory_order_relaxed);
        while (h - atomic_load_explicit(&q->tail, memory_order_acquire) >= RING)
            sched_yield();
        atomic_store_explicit(&q->slot[h % RING], p, memory_order_relaxed);
        atomic_store_explicit(&q->head, h + 1, memory_order_release);
    }
    return NULL;
}

static void *consumer(void *arg) {
    spsc_t *q = arg;
    for (size_t i = 0; i < q->count; i++) {
        size_t t = atomic_load_explicit(&q->tail, memory_order_relaxed);
        while (atomic_load_explicit(&q->head, memory_order_acquire) == t)
            sched_yield();
        void *p = atomic_load_explicit(&q->slot[t % RING], memory_order_relaxed);
        atomic_store_explicit(&q->tail, t + 1, memory_order_release);
        if (p) {
            if (check_block(p, q->base + i))
                atomic_fetch_add(&q->errors, 1);
            hak_free(p);
        }
    }
    return NULL;
}

static void test_producer_consumer(void **state) {
    (void)state;
    static spsc_t q[2];
    pthread_t th[4];
    size_t count = HT_SANITIZED ? 20000 : 150000;
    for (int k = 0; k < 2; k++) {
        memset(&q[k], 0, sizeof q[k]);
        q[k].count = count;
        q[k].base = (uint64_t)k << 40;
        assert_int_equal(pthread_create(&th[2 * k], NULL, producer, &q[k]), 0);
        assert_int_equal(pthread_create(&th[2 * k + 1], NULL, consumer, &q[k]), 0);
    }
    for (int i = 0; i < 4; i++)
        pthread_join(th[i], NULL);
    for (int k = 0; k < 2; k++) {
        assert_int_equal(atomic_load(&q[k].nulls), 0);
        assert_int_equal(atomic_load(&q[k].errors), 0);
    }
}

/* ---- a thread allocates, exits; another thread (or main) frees ----------------------------------------- */
typedef struct {
    size_t count;
    uint64_t base;
    void **blocks;
    int errors;
} batch_t;

static void *alloc_batch(void *arg) {
    batch_t *b = arg;
    for (size_t i = 0; i < b->count; i++) {
        b->blocks[i] = make_block(b->base + i);
        if (!b->blocks[i])
            b->errors++;
    }
    return NULL;
}

static void *free_batch(void *arg) {
    batch_t *b = arg;
    for (size_t i = 0; i < b->count; i++) {
        if (b->blocks[i] && check_block(b->blocks[i], b->base + i))
            b->errors++;
        hak_free(b->blocks[i]);
        b->blocks[i] = NULL;
    }
    return NULL;
}

static void test_free_by_other_thread_after_exit(void **state) {
    (void)state;
    batch_t b = {.count = HT_SANITIZED ? 10000 : 50000, .base = 1000000};
    b.blocks = calloc(b.count, sizeof(void *));
    assert_non_null(b.blocks);
    for (int round = 0; round < 3; round++) {
        pthread_t t;
        assert_int_equal(pthread_create(&t, NULL, alloc_batch, &b), 0);
        pthread_join(t, NULL); /* the allocating thread has exited */
        assert_int_equal(b.errors, 0);
        assert_int_equal(pthread_create(&t, NULL, free_batch, &b), 0);
        pthread_join(t, NULL);
        assert_int_equal(b.errors, 0);
        b.base += b.count;
    }
    free(b.blocks);
}

static void test_free_by_main_after_exit(void **state) {
    (void)state;
    batch_t b = {.count = HT_SANITIZED ? 10000 : 50000, .base = 5000000};
    b.blocks = calloc(b.count, sizeof(void *));
    assert_non_null(b.blocks);
    for (int round = 0; round < 3; round++) {
        pthread_t t;
        assert_int_equal(pthread_create(&t, NULL, alloc_batch, &b), 0);
        pthread_join(t, NULL);
        assert_int_equal(b.errors, 0);
        free_batch(&b); /* main frees the blocks of the exited thread */
        assert_int_equal(b.errors, 0);
        /* main can allocate the same mix itself afterwards */
        alloc_batch(&b);
        assert_int_equal(b.errors, 0);
        free_batch(&b);
        assert_int_equal(b.errors, 0);
        b.base += b.count;
    }
    free(b.blocks);
}

/* After every cross-thread free has happened, the heap statistics count no block as live. */
static void test_stats_after_cross_thread_free(void **state) {
    (void)state;
    hak_stats_t st0, st1, st2;
    memset(&st0, 0, sizeof st0);
    st0.size = sizeof st0;
    if (hak_heap_stats(hak_heap_default(), &st0) != 0 || st0.size == 0)
        skip();
    batch_t b = {.count = 20000, .base = 9000000};
    b.blocks = calloc(b.count, sizeof(void *));
    assert_non_null(b.blocks);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, alloc_batch, &b), 0);
    pthread_join(t, NULL);
    memset(&st1, 0, sizeof st1);
    st1.size = sizeof st1;
    assert_int_equal(hak_heap_stats(hak_heap_default(), &st1), 0);
    if (st1.live_blocks < b.count)
        fail_msg("live_blocks %llu after a thread allocated %zu blocks (before: %llu)",
                 (unsigned long long)st1.live_blocks, b.count, (unsigned long long)st0.live_blocks);
    free_batch(&b);
    assert_int_equal(b.errors, 0);
    memset(&st2, 0, sizeof st2);
    st2.size = sizeof st2;
    assert_int_equal(hak_heap_stats(hak_heap_default(), &st2), 0);
    if (st2.live_blocks != st0.live_blocks)
        fail_msg("live_blocks %llu after every block was freed by another thread (before: %llu)",
                 (unsigned long long)st2.live_blocks, (unsigned long long)st0.live_blocks);
    free(b.blocks);
}

/* ---- several threads swapping blocks through shared atomic slots --------------------------------------- */
#define XSLOTS 256
static void *_Atomic xslot[XSLOTS];
static atomic_int xerrors;

static void *exchange_thread(void *arg) {
    uint64_t seed = (uint64_t)(uintptr_t)arg;
    ht_rng_t r;
    ht_seed(&r, seed);
    int iters = HT_SANITIZED ? 5000 : 30000;
    for (int i = 0; i < iters; i++) {
        uint64_t id = (seed << 32) | (uint64_t)i;
        void *p = make_block(id);
        if (!p) {
            atomic_fetch_add(&xerrors, 1);
            continue;
        }
        void *old = atomic_exchange(&xslot[ht_next(&r) % XSLOTS], p);
        if (old) {
            hdr_t h;
            memcpy(&h, old, sizeof h);
            if (check_block(old, h.id))
                atomic_fetch_add(&xerrors, 1);
            hak_free(old);
        }
    }
    return NULL;
}

static void test_exchange_between_threads(void **state) {
    (void)state;
    enum { T = 4 };
    pthread_t th[T];
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < T; i++)
            assert_int_equal(
                pthread_create(&th[i], NULL, exchange_thread, (void *)(uintptr_t)(round * T + i + 1)), 0);
        for (int i = 0; i < T; i++)
            pthread_join(th[i], NULL);
        assert_int_equal(atomic_load(&xerrors), 0);
    }
    for (int i = 0; i < XSLOTS; i++) {
        void *p = atomic_exchange(&xslot[i], NULL);
        if (p) {
            hdr_t h;
            memcpy(&h, p, sizeof h);
            assert_int_equal(check_block(p, h.id), 0);
            hak_free(p);
        }
    }
}

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

/* ---- every tier: two producers, and a consumer that frees or reallocs what it receives ---------------- */
enum { XT_RING = 256 };
static unsigned char *_Atomic ring[XT_RING];
static atomic_int producers_done;
static atomic_ullong consumed, consumer_reallocs;
static atomic_int failures;

#define TFAIL(...) HT_THREAD_FAIL(failures, __VA_ARGS__)

static int items_per_producer(void) { return 20000 / HT_SLOWDOWN; }

static void *xt_producer(void *arg) {
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
        size_t slot = (size_t)(ht_next(&r) % XT_RING);
        for (;;) {
            unsigned char *expected = NULL;
            if (atomic_compare_exchange_weak(&ring[slot], &expected, p))
                break;
            slot = (slot + 1) % XT_RING;
            if (slot == 0)
                sched_yield();
        }
    }
    atomic_fetch_add(&producers_done, 1);
    return NULL;
}

static void *xt_consumer(void *arg) {
    int nproducers = (int)(intptr_t)arg;
    ht_rng_t r;
    ht_seed(&r, 4242);
    for (;;) {
        int done = atomic_load(&producers_done) == nproducers;
        int got = 0;
        for (size_t s = 0; s < XT_RING; s++) {
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
    assert_int_equal(pthread_create(&ct, NULL, xt_consumer, (void *)(intptr_t)P), 0);
    for (int i = 0; i < P; i++)
        assert_int_equal(pthread_create(&pt[i], NULL, xt_producer, (void *)(intptr_t)(i + 1)), 0);
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
        /* first, so that its baseline is not disturbed by blocks earlier tests freed across threads */
        cmocka_unit_test(test_stats_after_cross_thread_free),
        cmocka_unit_test(test_producer_consumer),
        cmocka_unit_test(test_free_by_other_thread_after_exit),
        cmocka_unit_test(test_free_by_main_after_exit),
        cmocka_unit_test(test_exchange_between_threads),
        /* every tier, plain and aligned */
        cmocka_unit_test(test_xthread_producer_consumer),
        cmocka_unit_test(test_xthread_orphans_default),
        cmocka_unit_test(test_xthread_orphans_private),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
