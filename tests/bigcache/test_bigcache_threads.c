/* SPDX-License-Identifier: MIT */
/* The BigCache under concurrent use: three threads allocate, realloc (within and across mappings) and free
 * large blocks of marked content while another thread collects (hak_collect, forced every eighth time) and
 * reads the statistics; no block is damaged, the cache stays within its default bound, and afterwards no
 * large block is left and hak_collect(1) empties the cache. */
#include "hakmem_test.h"

#include <pthread.h>

static atomic_int failures;
#define TFAIL(...) HT_THREAD_FAIL(failures, __VA_ARGS__)

/* ---- concurrent BigCache ------------------------------------------------------------------------------- */
static atomic_int bc_stop;

static void *large_churn(void *arg) {
    ht_rng_t r;
    ht_seed(&r, (uint64_t)(uintptr_t)arg * 977);
    enum { L = 6 };
    unsigned char *live[L] = {0};
    int iters = 4000 / HT_SLOWDOWN;
    for (int it = 0; it < iters; it++) {
        size_t k = (size_t)(ht_next(&r) % L);
        if (live[k]) {
            size_t n;
            uint64_t tag;
            size_t bad = ht_check_mark(live[k], &n, &tag);
            if (bad != (size_t)-1)
                TFAIL("large block %p (%zu) damaged at %zu", (void *)live[k], n, bad);
            if (ht_next(&r) % 3 == 0) {
                size_t m = HAK_SLAB_MAX_SIZE + 1 + (size_t)(ht_next(&r) % (6 * HT_MIB));
                unsigned char *q = hak_realloc(live[k], m);
                if (!q) {
                    TFAIL("large realloc failed");
                    continue;
                }
                size_t keep = n < m ? n : m;
                if (ht_check_range(q, 16, keep < 2048 ? keep : 2048, tag) != (size_t)-1)
                    TFAIL("large realloc lost content");
                ht_mark(q, m, tag);
                live[k] = q;
                continue;
            }
            hak_free(live[k]);
            live[k] = NULL;
        } else {
            size_t n = HAK_SLAB_MAX_SIZE + 1 + (size_t)(ht_next(&r) % (4 * HT_MIB));
            live[k] = hak_alloc(n);
            if (!live[k]) {
                TFAIL("large alloc failed");
                continue;
            }
            if (hak_usable_size(live[k]) < n)
                TFAIL("large usable below request");
            ht_mark(live[k], n, ht_next(&r) | 1);
        }
    }
    for (int k = 0; k < L; k++)
        hak_free(live[k]);
    return NULL;
}

static void *collector(void *arg) {
    (void)arg;
    unsigned i = 0;
    while (!atomic_load(&bc_stop)) {
        hak_collect((i++ % 8) == 0);
        hak_bigcache_info_t b = ht_bigcache();
        if (b.bytes > (size_t)256 << 20)
            TFAIL("BigCache over its default bound");
        /* statistics walk the large-block lists while other threads allocate, realloc and free */
        hak_stats_t st;
        memset(&st, 0, sizeof st);
        st.size = sizeof st;
        if (hak_heap_stats(NULL, &st) != 0)
            TFAIL("hak_heap_stats failed");
        if (st.large_bytes < st.large_blocks * HAK_SLAB_MAX_SIZE)
            TFAIL("large_bytes below large_blocks * 256 KiB");
        ht_sleep_ms(2);
    }
    return NULL;
}

static void test_xthread_bigcache_concurrent(void **state) {
    (void)state;
    atomic_store(&failures, 0);
    atomic_store(&bc_stop, 0);
    hak_stats_t s0 = ht_stats(hak_heap_default());
    enum { T = 3 };
    pthread_t t[T], c;
    assert_int_equal(pthread_create(&c, NULL, collector, NULL), 0);
    for (int i = 0; i < T; i++)
        assert_int_equal(pthread_create(&t[i], NULL, large_churn, (void *)(intptr_t)(i + 1)), 0);
    for (int i = 0; i < T; i++)
        pthread_join(t[i], NULL);
    atomic_store(&bc_stop, 1);
    pthread_join(c, NULL);
    assert_int_equal(atomic_load(&failures), 0);
    hak_stats_t s1 = ht_stats(hak_heap_default());
    assert_int_equal(s1.large_blocks, s0.large_blocks);
    hak_collect(1);
    hak_bigcache_info_t b = ht_bigcache();
    assert_int_equal(b.entries, 0);
    assert_int_equal(b.bytes, 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_xthread_bigcache_concurrent),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
