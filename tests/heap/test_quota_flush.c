/* SPDX-License-Identifier: MIT */
/* At a heap's limit other threads' caches give their quota back (issue 12): a refused charge asks every
 * thread heap of the arena to flush its thread cache, which each owner does at its next slow path. Before,
 * only the calling thread's cache was flushed, so ENOMEM came while another thread's cache held a span's
 * quota. Deterministic: thread A fills its cache with blocks of a span that is not its current one and waits;
 * B allocates until ENOMEM; A frees the last block of its current span (a slow point, the span turning
 * empty); B's retry must succeed. */
#include "hakmem_test.h"

#include <pthread.h>

enum { BLOCK = 64, A_BLOCKS = 4096 };

static hak_heap_t *heap;
static ht_barrier_t step;
static void *a_blocks[A_BLOCKS];

static void *thread_a(void *arg) {
    (void)arg;
    for (unsigned i = 0; i < A_BLOCKS; i++)
        assert_non_null(a_blocks[i] = hak_heap_alloc(heap, BLOCK));
    /* In allocation order: the cache fills with the first span's blocks, the later frees go to their spans,
     * which turn empty and give their quota back, except the current span, which holds the last block. */
    for (unsigned i = 0; i + 1 < A_BLOCKS; i++)
        hak_free(a_blocks[i]);
    ht_barrier_wait(&step); /* B allocates until ENOMEM */
    ht_barrier_wait(&step);
    hak_free(a_blocks[A_BLOCKS - 1]); /* its span turns empty: the slow point that honours B's request */
    ht_barrier_wait(&step);
    ht_barrier_wait(&step); /* alive until B retried: thread exit flushes the cache too */
    return NULL;
}

static void test_limit_flushes_other_threads_caches(void **state) {
    (void)state;
    heap = hak_heap_create(&(hak_heap_options_t){.limit_bytes = 1 << 20, .name = "quota-flush"});
    assert_non_null(heap);
    ht_barrier_init(&step, 2);
    pthread_t a;
    assert_int_equal(pthread_create(&a, NULL, thread_a, NULL), 0);
    ht_barrier_wait(&step);
    void *chain = NULL, *p;
    size_t got = 0;
    while ((p = hak_heap_alloc(heap, BLOCK)) != NULL) {
        *(void **)p = chain;
        chain = p;
        got++;
    }
    assert_int_equal(errno, ENOMEM);
    assert_true(got > 0);
    ht_barrier_wait(&step);
    ht_barrier_wait(&step); /* A took one slow path */
    errno = 0;
    p = hak_heap_alloc(heap, BLOCK);
    int retry_errno = errno;
    ht_barrier_wait(&step);
    pthread_join(a, NULL);
    if (p == NULL)
        fail_msg("ENOMEM (errno %d) after %zu blocks although another thread's cache held a span's quota and "
                 "that thread took a slow path since",
                 retry_errno, got);
    hak_free(p);
    while (chain != NULL) {
        p = chain;
        chain = *(void **)p;
        hak_free(p);
    }
    ht_barrier_destroy(&step);
    hak_heap_destroy(heap);
}

int main(void) {
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_limit_flushes_other_threads_caches)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
