/* Cross-thread frees and blocks outliving their thread. */
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

int main(void) {
    const struct CMUnitTest tests[] = {
        /* first, so that its baseline is not disturbed by blocks earlier tests freed across threads */
        cmocka_unit_test(test_stats_after_cross_thread_free),
        cmocka_unit_test(test_producer_consumer),
        cmocka_unit_test(test_free_by_other_thread_after_exit),
        cmocka_unit_test(test_free_by_main_after_exit),
        cmocka_unit_test(test_exchange_between_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
