/* SPDX-License-Identifier: MIT */
/* hak_heap_destroy: with live blocks in every tier from several threads (idle ones and exited ones), memory
 * goes back, the threads keep working afterwards, and create/destroy cycles keep the mappings flat. */
#include "hakmem_test.h"

#include <semaphore.h>
#include <stdatomic.h>
#include <time.h>

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* ---- 3a. destroy with live blocks of idle and exited threads ------------------------------------------- */
typedef struct {
    hak_heap_t *heap;  /* the heap to fill */
    hak_heap_t *after; /* the heap to use after the destroy (set by main before the go) */
    sem_t filled, go, done;
    int index;
    int stay_alive; /* 1: wait idle for the destroy, then keep working; 0: exit right after filling */
    size_t bytes;   /* how much was allocated */
    int errors;
} dt_arg_t;

/* Every tier: 2 MiB of tiny, 2 MiB of pool, 2 blocks of 1.5 MiB large, all touched. */
static size_t fill_heap(hak_heap_t *h, int seed, void **keep, size_t keep_cap, size_t *nkeep) {
    ht_rng_t rng;
    ht_seed(&rng, (uint64_t)seed);
    size_t total = 0, n = 0;
    while (total < 2 * HT_MIB) {
        size_t s = 16 + (size_t)(ht_next(&rng) % 8176);
        void *p = hak_heap_alloc(h, s);
        if (p == NULL)
            return 0;
        memset(p, seed, s);
        total += s;
        if (n < keep_cap)
            keep[n++] = p;
    }
    while (total < 4 * HT_MIB) {
        size_t s = 8193 + (size_t)(ht_next(&rng) % (HT_SLAB_MAX - 8192));
        void *p = hak_heap_alloc(h, s);
        if (p == NULL)
            return 0;
        memset(p, seed, s);
        total += s;
        if (n < keep_cap)
            keep[n++] = p;
    }
    for (int i = 0; i < 2; i++) {
        size_t s = 3 * HT_MIB / 2;
        void *p = hak_heap_alloc(h, s);
        if (p == NULL)
            return 0;
        memset(p, seed, s);
        total += s;
        if (n < keep_cap)
            keep[n++] = p;
    }
    *nkeep = n;
    return total;
}

static int use_heap_after(hak_heap_t *h, int seed) {
    int errors = 0;
    void *p[64];
    for (int i = 0; i < 64; i++) {
        size_t s = ht_tier_sizes[i % HT_TIER_SIZES];
        p[i] = ht_make(h, s, (uint64_t)seed * 1000 + (uint64_t)i);
        if (p[i] == NULL || hak_heap_of(p[i]) != h)
            errors++;
    }
    for (int i = 0; i < 64; i++) {
        if (p[i] && ht_verify(p[i], (uint64_t)seed * 1000 + (uint64_t)i) != 0)
            errors++;
        hak_free(p[i]);
    }
    return errors;
}

static void *dt_thread(void *arg) {
    dt_arg_t *a = arg;
    void **keep = calloc(1 << 14, sizeof *keep);
    size_t nkeep = 0;
    a->bytes = keep ? fill_heap(a->heap, 10 + a->index, keep, 1 << 14, &nkeep) : 0;
    if (a->bytes == 0)
        a->errors++;
    /* free a few of our own blocks: the destroy must cope with partly used spans too */
    for (size_t i = 0; i < nkeep; i += 7)
        hak_free(keep[i]);
    free(keep);
    sem_post(&a->filled);
    if (!a->stay_alive)
        return NULL;
    sem_wait(&a->go); /* idle while main destroys the heap */
    a->errors += use_heap_after(hak_heap_default(), a->index);
    for (int i = 0; i < 100; i++) { /* the plain API too */
        void *p = hak_alloc(ht_tier_sizes[i % HT_TIER_SIZES]);
        if (p == NULL || hak_heap_of(p) != hak_heap_default())
            a->errors++;
        hak_free(p);
    }
    a->errors += use_heap_after(a->after, a->index + 200);
    /* a heap created by this thread after the destroy (likely reusing the destroyed heap's id) */
    hak_heap_t *mine = hak_heap_create(&(hak_heap_options_t){0, "thread-own"});
    if (mine == NULL) {
        a->errors++;
    } else {
        a->errors += use_heap_after(mine, a->index + 300);
        hak_heap_destroy(mine);
    }
    sem_post(&a->done);
    return NULL; /* thread exit after the destroy: must not touch the destroyed heap */
}

static void test_destroy_with_live_blocks(void **state) {
    (void)state;
    enum { T = 4 };
    hak_collect(1);
    hak_stats_t base, mid, after, collected;
    ht_get_stats(NULL, &base);
    size_t rss0 = ht_rss_bytes();

    hak_heap_t *h = hak_heap_create(&(hak_heap_options_t){0, "doomed"});
    assert_non_null(h);
    static dt_arg_t a[T];
    pthread_t th[T];
    for (int i = 0; i < T; i++) {
        memset(&a[i], 0, sizeof a[i]);
        a[i].heap = h;
        a[i].index = i;
        a[i].stay_alive = i < 2; /* threads 0, 1 stay idle; 2, 3 exit with their blocks live */
        sem_init(&a[i].filled, 0, 0);
        sem_init(&a[i].go, 0, 0);
        sem_init(&a[i].done, 0, 0);
        assert_int_equal(pthread_create(&th[i], NULL, dt_thread, &a[i]), 0);
    }
    for (int i = 0; i < T; i++)
        sem_wait(&a[i].filled);
    for (int i = 2; i < T; i++)
        pthread_join(th[i], NULL);
    static void *mine[1 << 14];
    size_t nmine = 0;
    size_t main_bytes = fill_heap(h, 1, mine, 1 << 14, &nmine);
    assert_true(main_bytes > 0);
    size_t total = main_bytes;
    for (int i = 0; i < T; i++) {
        assert_int_equal(a[i].errors, 0);
        total += a[i].bytes;
    }

    ht_get_stats(NULL, &mid);
    hak_stats_t hst;
    ht_get_stats(h, &hst);
    size_t rss1 = ht_rss_bytes();
    assert_true(hst.live_blocks > 0);
    assert_int_equal(hst.large_blocks, 2 * (T + 1));
    assert_int_equal(mid.heap_count, base.heap_count + 1);
    assert_true(mid.committed_bytes >= base.committed_bytes + total / 2);

    hak_heap_destroy(h);
    ht_get_stats(NULL, &after);
    assert_int_equal(after.heap_count, base.heap_count);
    assert_int_equal(after.live_blocks, base.live_blocks);
    assert_int_equal(after.live_bytes, base.live_bytes);
    assert_int_equal(after.large_blocks, base.large_blocks);
    /* memory still held but no longer in use by any heap is all cached */
    assert_true(after.committed_bytes - after.cached_bytes <=
                base.committed_bytes - base.cached_bytes + HT_MIB);

    hak_collect(1);
    ht_get_stats(NULL, &collected);
    size_t rss2 = ht_rss_bytes();
    print_message("destroy: allocated %zu KiB; committed %llu -> %llu -> %llu KiB (after collect); "
                  "reserved %llu -> %llu -> %llu KiB; RSS %zu -> %zu -> %zu KiB\n",
                  total >> 10, (unsigned long long)base.committed_bytes >> 10,
                  (unsigned long long)mid.committed_bytes >> 10,
                  (unsigned long long)collected.committed_bytes >> 10,
                  (unsigned long long)base.reserved_bytes >> 10, (unsigned long long)mid.reserved_bytes >> 10,
                  (unsigned long long)collected.reserved_bytes >> 10, rss0 >> 10, rss1 >> 10, rss2 >> 10);
    assert_true(collected.committed_bytes <= base.committed_bytes + HT_MIB);
    assert_true(collected.reserved_bytes <= mid.reserved_bytes);
    assert_int_equal(collected.cached_bytes <= collected.committed_bytes, 1);
    if (rss0 && rss1 && rss2 && !HT_SANITIZED) {
        assert_true(rss1 > rss0 + total / 2);              /* the blocks were resident */
        assert_true(rss1 - rss2 >= (rss1 - rss0) * 3 / 4); /* and most of it went back */
    }

    /* the idle threads keep working, on the default heap, a new heap, and their own; then exit cleanly */
    hak_heap_t *next = hak_heap_create(&(hak_heap_options_t){0, "after"});
    assert_non_null(next);
    for (int i = 0; i < 2; i++) {
        a[i].after = next;
        sem_post(&a[i].go);
    }
    for (int i = 0; i < 2; i++) {
        sem_wait(&a[i].done);
        pthread_join(th[i], NULL);
        assert_int_equal(a[i].errors, 0);
    }
    assert_int_equal(use_heap_after(next, 7), 0);
    assert_int_equal(use_heap_after(hak_heap_default(), 8), 0);
    hak_stats_t nst;
    ht_get_stats(next, &nst);
    assert_int_equal(nst.live_blocks, 0);
    hak_heap_destroy(next);
    for (int i = 0; i < T; i++) {
        sem_destroy(&a[i].filled);
        sem_destroy(&a[i].go);
        sem_destroy(&a[i].done);
    }
}

/* ---- 3b. create/destroy cycles keep the process flat --------------------------------------------------- */
static const size_t cycle_sizes[] = {16, 200, 3000, 8192, 20000, 150000, 500000};
#define NCYCLE (sizeof cycle_sizes / sizeof cycle_sizes[0])

/* Allocates the mix in h; frees every other block; returns the number of failures. */
static int cycle_blocks(hak_heap_t *h, int salt) {
    int errors = 0;
    void *p[NCYCLE * 2];
    for (size_t i = 0; i < NCYCLE * 2; i++) {
        size_t s = cycle_sizes[i % NCYCLE];
        p[i] = hak_heap_alloc(h, s);
        if (p[i] == NULL || hak_heap_of(p[i]) != h) {
            errors++;
            continue;
        }
        memset(p[i], salt, s < 8192 ? s : 8192);
    }
    for (size_t i = 0; i < NCYCLE * 2; i += 2)
        hak_free(p[i]);
    return errors; /* the odd blocks stay live for the destroy */
}

typedef struct {
    long maps, vmsize_kib, rss_kib;
} probe_t;

static probe_t probe(void) {
    probe_t p = {ht_maps_count(), ht_status_kib("VmSize"), ht_status_kib("VmRSS")};
    return p;
}

static void check_flat(const char *what, probe_t before, probe_t after, size_t cycles, double secs) {
    print_message("%s: %zu cycles in %.2f s; maps %ld -> %ld, VmSize %ld -> %ld KiB, VmRSS %ld -> %ld KiB\n",
                  what, cycles, secs, before.maps, after.maps, before.vmsize_kib, after.vmsize_kib,
                  before.rss_kib, after.rss_kib);
    assert_true(before.maps > 0);
    assert_true(after.maps <= before.maps + 8);
    /* 10,000 cycles: growing by even one page per cycle would show as 40 MiB */
    assert_true(after.vmsize_kib <= before.vmsize_kib + 16 * 1024);
    assert_true(after.rss_kib <= before.rss_kib + 16 * 1024);
}

static void test_create_destroy_cycles(void **state) {
    (void)state;
    size_t cycles = HT_SCALE(10000);
    for (int i = 0; i < 100; i++) { /* warm up caches (SuperSlab cache, BigCache, metadata) */
        hak_heap_t *h = hak_heap_create(NULL);
        assert_non_null(h);
        assert_int_equal(cycle_blocks(h, i), 0);
        hak_heap_destroy(h);
    }
    hak_stats_t s0, s1;
    ht_get_stats(NULL, &s0);
    probe_t before = probe();
    double t0 = now_s();
    int errors = 0;
    for (size_t i = 0; i < cycles; i++) {
        hak_heap_t *h = hak_heap_create(&(hak_heap_options_t){0, "cycle"});
        if (h == NULL) {
            errors++;
            break;
        }
        errors += cycle_blocks(h, (int)i);
        hak_heap_destroy(h);
    }
    probe_t after = probe();
    assert_int_equal(errors, 0);
    ht_get_stats(NULL, &s1);
    check_flat("create/destroy", before, after, cycles, now_s() - t0);
    assert_int_equal(s1.heap_count, s0.heap_count);
    assert_true(s1.reserved_bytes <= s0.reserved_bytes + 8 * HT_MIB);
}

/* Same, with a second thread touching each heap (allocating, leaving blocks live, freeing one of main's)
 * before main destroys it. The thread stays alive across all cycles. */
typedef struct {
    sem_t go, done;
    hak_heap_t *heap;
    void *from_main;
    int quit;
    int errors;
} toucher_t;

static void *toucher(void *arg) {
    toucher_t *t = arg;
    for (int i = 0;; i++) {
        sem_wait(&t->go);
        if (t->quit)
            break;
        t->errors += cycle_blocks(t->heap, i);
        hak_free(t->from_main); /* a remote free into main's SuperSlab of this heap */
        sem_post(&t->done);
    }
    t->errors += use_heap_after(hak_heap_default(), 1);
    return NULL;
}

static void test_create_destroy_cycles_two_threads(void **state) {
    (void)state;
    size_t cycles = HT_SCALE(10000);
    static toucher_t t;
    memset(&t, 0, sizeof t);
    sem_init(&t.go, 0, 0);
    sem_init(&t.done, 0, 0);
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, toucher, &t), 0);
    probe_t before = {0, 0, 0};
    double t0 = 0;
    int errors = 0;
    for (size_t i = 0; i < cycles + 100; i++) {
        if (i == 100) { /* after a warm-up */
            before = probe();
            t0 = now_s();
        }
        hak_heap_t *h = hak_heap_create(&(hak_heap_options_t){0, "cycle2"});
        if (h == NULL) {
            errors++;
            break;
        }
        errors += cycle_blocks(h, (int)i);
        t.heap = h;
        t.from_main = hak_heap_alloc(h, 64 + i % 3000);
        if (t.from_main == NULL)
            errors++;
        sem_post(&t.go);
        sem_wait(&t.done);
        hak_heap_destroy(h); /* the other thread is idle now */
    }
    probe_t after = probe();
    t.quit = 1;
    sem_post(&t.go);
    pthread_join(th, NULL);
    assert_int_equal(errors, 0);
    assert_int_equal(t.errors, 0);
    check_flat("create/destroy, 2 threads", before, after, cycles, now_s() - t0);
    sem_destroy(&t.go);
    sem_destroy(&t.done);
}

/* And with a fresh thread per cycle that exits (abandoning its SuperSlabs with live blocks) before the
 * destroy. */
typedef struct {
    hak_heap_t *heap;
    int errors;
    int salt;
} once_t;

static void *touch_once(void *arg) {
    once_t *o = arg;
    o->errors += cycle_blocks(o->heap, o->salt);
    return NULL;
}

static void test_create_destroy_cycles_exited_thread(void **state) {
    (void)state;
    size_t cycles = HT_SCALE(2000);
    probe_t before = {0, 0, 0};
    double t0 = 0;
    int errors = 0;
    for (size_t i = 0; i < cycles + 50; i++) {
        if (i == 50) {
            before = probe();
            t0 = now_s();
        }
        hak_heap_t *h = hak_heap_create(&(hak_heap_options_t){0, "cycle3"});
        assert_non_null(h);
        once_t o = {h, 0, (int)i};
        pthread_t th;
        assert_int_equal(pthread_create(&th, NULL, touch_once, &o), 0);
        pthread_join(th, NULL);
        errors += o.errors;
        if (i % 2)
            errors += cycle_blocks(h, (int)i); /* main adopts or adds its own */
        hak_heap_destroy(h);
    }
    probe_t after = probe();
    assert_int_equal(errors, 0);
    check_flat("create/destroy, exited thread", before, after, cycles, now_s() - t0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_destroy_with_live_blocks),
        cmocka_unit_test(test_create_destroy_cycles),
        cmocka_unit_test(test_create_destroy_cycles_two_threads),
        cmocka_unit_test(test_create_destroy_cycles_exited_thread),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
