/* SPDX-License-Identifier: MIT */
/* Private heaps used from many threads: shared-heap allocation with cross-thread frees, realloc keeping the
 * heap across tiers and threads, and a stress run with producers, consumers and threads that exit while
 * their blocks are still live. */
#include "hakmem_test.h"

#include <sched.h>
#include <stdatomic.h>
#include <time.h>

/* ---- 2. several threads allocate from one heap and free each other's blocks ---------------------------- */
enum { XT_THREADS = 4 };

typedef struct {
    hak_heap_t *heap;
    ht_barrier_t *barrier;
    void ***blocks; /* blocks[thread][i] */
    size_t count;
    int index;
    atomic_int *errors;
} xt_arg_t;

static uint64_t xt_id(int t, size_t i) { return ((uint64_t)t << 32) | i; }

static void *xt_worker(void *arg) {
    xt_arg_t *a = arg;
    ht_rng_t rng;
    ht_seed(&rng, (uint64_t)a->index + 77);
    for (size_t i = 0; i < a->count; i++) {
        size_t n = ht_mixed_size(ht_next(&rng));
        void *p = ht_make(a->heap, n, xt_id(a->index, i));
        if (p == NULL || hak_heap_of(p) != a->heap)
            atomic_fetch_add(a->errors, 1);
        a->blocks[a->index][i] = p;
    }
    ht_barrier_wait(a->barrier); /* all allocated */
    ht_barrier_wait(a->barrier); /* main has checked the statistics */
    /* free the blocks of the next thread, checking them first */
    int victim = (a->index + 1) % XT_THREADS;
    for (size_t i = 0; i < a->count; i++) {
        void *p = a->blocks[victim][i];
        if (p == NULL)
            continue;
        if (hak_heap_of(p) != a->heap || ht_verify(p, xt_id(victim, i)) != 0)
            atomic_fetch_add(a->errors, 1);
        hak_free(p);
        a->blocks[victim][i] = NULL;
    }
    ht_barrier_wait(a->barrier); /* every block is freed; main checks the statistics while we are alive */
    ht_barrier_wait(a->barrier);
    /* allocate again from the same heap (memory freed by others comes back) and free locally */
    for (size_t i = 0; i < a->count; i++) {
        void *p = ht_make(a->heap, ht_mixed_size(ht_next(&rng)), i);
        if (p == NULL || ht_verify(p, i) != 0)
            atomic_fetch_add(a->errors, 1);
        hak_free(p);
    }
    return NULL;
}

static void test_shared_heap_cross_thread_free(void **state) {
    (void)state;
    hak_heap_t *h = hak_heap_create(&(hak_heap_options_t){0, "shared"});
    assert_non_null(h);
    size_t count = HT_SCALE(20000);
    void **blocks[XT_THREADS];
    for (int t = 0; t < XT_THREADS; t++) {
        blocks[t] = calloc(count, sizeof(void *));
        assert_non_null(blocks[t]);
    }
    ht_barrier_t bar;
    ht_barrier_init(&bar, XT_THREADS + 1);
    atomic_int errors = 0;
    xt_arg_t args[XT_THREADS];
    pthread_t th[XT_THREADS];
    for (int t = 0; t < XT_THREADS; t++) {
        args[t] = (xt_arg_t){h, &bar, blocks, count, t, &errors};
        assert_int_equal(pthread_create(&th[t], NULL, xt_worker, &args[t]), 0);
    }
    ht_barrier_wait(&bar); /* all allocated */
    hak_stats_t st;
    ht_get_stats(h, &st);
    uint64_t live_all = st.live_blocks;
    ht_barrier_wait(&bar);
    ht_barrier_wait(&bar); /* all freed */
    ht_get_stats(h, &st);
    uint64_t live_before_collect = st.live_blocks;
    ht_barrier_wait(&bar);
    for (int t = 0; t < XT_THREADS; t++)
        pthread_join(th[t], NULL);
    assert_int_equal(atomic_load(&errors), 0);
    assert_int_equal(live_all, XT_THREADS * count);
    /* threads gone: their SuperSlabs were abandoned and the remote frees settled */
    ht_get_stats(h, &st);
    assert_int_equal(st.live_blocks, 0);
    assert_int_equal(st.live_bytes, 0);
    assert_int_equal(st.large_blocks, 0);
    print_message(
        "shared heap: live_blocks reported right after all cross-thread frees (owners alive): %llu\n",
        (unsigned long long)live_before_collect);
    for (int t = 0; t < XT_THREADS; t++)
        free(blocks[t]);
    ht_barrier_destroy(&bar);
    hak_heap_destroy(h);
}

/* ---- 2b. realloc keeps the heap, across tiers and threads ---------------------------------------------- */
static const size_t realloc_chain[] = {16,     100,    1000,    8000,    9000,   100000, 262144,
                                       262145, 300000, 3 << 20, 1 << 20, 200000, 20000,  4000,
                                       48,     1,      5000000, 100,     0,      70000,  16};

static void realloc_chain_in(hak_heap_t *h, hak_heap_t *call_heap, int use_default_api) {
    size_t n = realloc_chain[0];
    unsigned char *p = hak_heap_alloc(h, n);
    assert_non_null(p);
    for (size_t i = 0; i < n; i++)
        p[i] = (unsigned char)(i * 7 + 1);
    for (size_t k = 1; k < sizeof realloc_chain / sizeof realloc_chain[0]; k++) {
        size_t m = realloc_chain[k];
        unsigned char *q = use_default_api ? hak_realloc(p, m) : hak_heap_realloc(call_heap, p, m);
        assert_non_null(q);
        if (hak_heap_of(q) != h)
            fail_msg("realloc %zu -> %zu: block moved from heap %p to %p", n, m, (void *)h,
                     (void *)hak_heap_of(q));
        assert_true(hak_usable_size(q) >= m);
        size_t keep = n < m ? n : m;
        for (size_t i = 0; i < keep; i++)
            if (q[i] != (unsigned char)(i * 7 + 1))
                fail_msg("realloc %zu -> %zu lost byte %zu", n, m, i);
        for (size_t i = keep; i < m; i++)
            q[i] = (unsigned char)(i * 7 + 1);
        p = q;
        n = m;
    }
    hak_free(p);
}

typedef struct {
    hak_heap_t *h, *other;
    unsigned char *block;
    int ok;
} rt_arg_t;

static void *realloc_thread(void *arg) {
    rt_arg_t *a = arg;
    realloc_chain_in(a->h, a->h, 0);
    realloc_chain_in(a->h, a->other, 0); /* the heap passed to realloc is not the block's heap */
    realloc_chain_in(a->h, NULL, 1);
    /* grow a block that main allocated */
    unsigned char *q = hak_heap_realloc(a->h, a->block, 500000);
    a->ok = q != NULL && hak_heap_of(q) == a->h && ht_all_equal(q, 1000, 0x3c);
    a->block = q;
    return NULL;
}

static void test_realloc_keeps_heap(void **state) {
    (void)state;
    hak_heap_t *h = hak_heap_create(&(hak_heap_options_t){0, "realloc"});
    hak_heap_t *other = hak_heap_create(&(hak_heap_options_t){0, "other"});
    assert_non_null(h);
    assert_non_null(other);
    realloc_chain_in(h, h, 0);
    realloc_chain_in(h, other, 0);
    realloc_chain_in(h, NULL, 1);
    realloc_chain_in(hak_heap_default(), other, 0);
    /* realloc(NULL) allocates in the given heap */
    void *p = hak_heap_realloc(h, NULL, 300);
    assert_non_null(p);
    assert_ptr_equal(hak_heap_of(p), h);
    hak_free(p);
    p = hak_heap_realloc(h, NULL, 400000);
    assert_non_null(p);
    assert_ptr_equal(hak_heap_of(p), h);
    hak_free(p);

    rt_arg_t a = {h, other, hak_heap_alloc(h, 1000), 0};
    assert_non_null(a.block);
    memset(a.block, 0x3c, 1000);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, realloc_thread, &a), 0);
    pthread_join(t, NULL);
    assert_true(a.ok);
    /* shrink it back from main: still h */
    unsigned char *q = hak_heap_realloc(other, a.block, 100);
    assert_non_null(q);
    assert_ptr_equal(hak_heap_of(q), h);
    assert_true(ht_all_equal(q, 100, 0x3c));
    hak_free(q);
    /* nothing ever went to `other`; h holds no large block any more (its slab counts are checked after
     * cross-thread frees in heap/test_stats.c) */
    hak_stats_t st;
    ht_get_stats(other, &st);
    assert_int_equal(st.live_blocks, 0);
    assert_int_equal(st.reserved_bytes, 0);
    ht_get_stats(h, &st);
    assert_int_equal(st.large_blocks, 0);
    hak_heap_destroy(h);
    hak_heap_destroy(other);
}

/* ---- 5. stress: producers, consumers and short-lived threads on one shared heap ------------------------ */
#define POOL_CAP 4096

typedef struct {
    pthread_mutex_t m;
    void *slot[POOL_CAP];
    uint64_t id[POOL_CAP];
    size_t n;
} pool_t;

typedef struct {
    hak_heap_t *heap;
    pool_t *pool;
    atomic_int *errors;
    atomic_int *stop;
    atomic_ullong *next_id;
    atomic_ullong *allocs, *frees;
    size_t ops;
    int index;
} st_arg_t;

static int pool_push(pool_t *q, void *p, uint64_t id) {
    pthread_mutex_lock(&q->m);
    int ok = q->n < POOL_CAP;
    if (ok) {
        q->slot[q->n] = p;
        q->id[q->n++] = id;
    }
    pthread_mutex_unlock(&q->m);
    return ok;
}

static int pool_pop(pool_t *q, uint64_t r, void **p, uint64_t *id) {
    pthread_mutex_lock(&q->m);
    int ok = q->n > 0;
    if (ok) {
        size_t i = (size_t)(r % q->n); /* random slot: frees are not in allocation order */
        *p = q->slot[i];
        *id = q->id[i];
        q->slot[i] = q->slot[--q->n];
        q->id[i] = q->id[q->n];
    }
    pthread_mutex_unlock(&q->m);
    return ok;
}

static void release(st_arg_t *a, void *p, uint64_t id) {
    if (hak_heap_of(p) != a->heap || ht_verify(p, id) != 0)
        atomic_fetch_add(a->errors, 1);
    hak_free(p);
    atomic_fetch_add_explicit(a->frees, 1, memory_order_relaxed);
}

/* A new tracked block of a mixed size with a fresh id, counted; NULL (an error counted) if allocation failed.
 */
static void *make(st_arg_t *a, ht_rng_t *rng, uint64_t *id) {
    *id = atomic_fetch_add_explicit(a->next_id, 1, memory_order_relaxed);
    void *p = ht_make(a->heap, ht_mixed_size(ht_next(rng)), *id);
    if (p == NULL) {
        atomic_fetch_add(a->errors, 1);
        return NULL;
    }
    atomic_fetch_add_explicit(a->allocs, 1, memory_order_relaxed);
    return p;
}

static void *producer(void *arg) {
    st_arg_t *a = arg;
    ht_rng_t rng;
    ht_seed(&rng, 1000 + (uint64_t)a->index);
    for (size_t i = 0; i < a->ops; i++) {
        uint64_t id;
        void *p = make(a, &rng, &id);
        if (p == NULL)
            continue;
        if (ht_next(&rng) % 4 == 0) { /* some blocks live and die locally */
            release(a, p, id);
            continue;
        }
        while (!pool_push(a->pool, p, id)) {
            void *v;
            uint64_t vid;
            if (pool_pop(a->pool, ht_next(&rng), &v, &vid))
                release(a, v, vid);
        }
    }
    return NULL;
}

static void *consumer(void *arg) {
    st_arg_t *a = arg;
    ht_rng_t rng;
    ht_seed(&rng, 2000 + (uint64_t)a->index);
    for (;;) {
        void *p;
        uint64_t id;
        if (pool_pop(a->pool, ht_next(&rng), &p, &id)) {
            release(a, p, id);
        } else if (atomic_load(a->stop)) {
            break;
        } else {
            sched_yield();
        }
    }
    return NULL;
}

/* Short-lived threads: each allocates a batch into the pool and exits with the blocks still live. */
static void *ephemeral(void *arg) {
    st_arg_t *a = arg;
    ht_rng_t rng;
    ht_seed(&rng, 3000 + (uint64_t)a->index);
    for (size_t i = 0; i < a->ops; i++) {
        uint64_t id;
        void *p = make(a, &rng, &id);
        if (p == NULL)
            continue;
        while (!pool_push(a->pool, p, id))
            sched_yield();
    }
    return NULL;
}

static void *spawner(void *arg) {
    st_arg_t *a = arg;
    for (int round = 0; !atomic_load(a->stop) || round < 4; round++) {
        st_arg_t e = *a;
        e.ops = 200;
        e.index = 100 + round;
        pthread_t t;
        if (pthread_create(&t, NULL, ephemeral, &e) != 0) {
            atomic_fetch_add(a->errors, 1);
            break;
        }
        pthread_join(t, NULL);
        if (round > 2000)
            break;
    }
    return NULL;
}

static void test_stress_shared_heap(void **state) {
    (void)state;
    hak_heap_t *h = hak_heap_create(&(hak_heap_options_t){0, "stress"});
    assert_non_null(h);
    static pool_t pool;
    pthread_mutex_init(&pool.m, NULL);
    pool.n = 0;
    atomic_int errors = 0, stop = 0;
    atomic_ullong next_id = 1, allocs = 0, frees = 0;
    enum { P = 3, C = 2 };
    st_arg_t args[P + C + 1];
    pthread_t th[P + C + 1];
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int i = 0; i < P + C + 1; i++) {
        args[i] = (st_arg_t){h, &pool, &errors, &stop, &next_id, &allocs, &frees, HT_SCALE(400000), i};
        void *(*fn)(void *) = i < P ? producer : i < P + C ? consumer : spawner;
        assert_int_equal(pthread_create(&th[i], NULL, fn, &args[i]), 0);
    }
    for (int i = 0; i < P; i++)
        pthread_join(th[i], NULL);
    atomic_store(&stop, 1);
    for (int i = P; i < P + C + 1; i++)
        pthread_join(th[i], NULL);
    /* whatever is left (blocks of exited threads): main frees them */
    void *p;
    uint64_t id;
    while (pool_pop(&pool, 0, &p, &id))
        release(&args[0], p, id);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    assert_int_equal(atomic_load(&errors), 0);
    assert_int_equal(atomic_load(&allocs), atomic_load(&frees));
    print_message("stress: %llu blocks in %.2f s\n", (unsigned long long)atomic_load(&allocs),
                  (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
    hak_stats_t st;
    ht_get_stats(h, &st);
    assert_int_equal(st.live_blocks, 0);
    assert_int_equal(st.live_bytes, 0);
    assert_int_equal(st.large_blocks, 0);
    /* the heap is still usable after all its threads are gone: the main thread adopts their SuperSlabs */
    void *q = ht_make(h, 100, 42);
    assert_non_null(q);
    assert_int_equal(ht_verify(q, 42), 0);
    hak_free(q);
    pthread_mutex_destroy(&pool.m);
    hak_heap_destroy(h);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_shared_heap_cross_thread_free),
        cmocka_unit_test(test_realloc_keeps_heap),
        cmocka_unit_test(test_stress_shared_heap),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
