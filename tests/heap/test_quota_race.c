/* SPDX-License-Identifier: MIT */
/* A charge that does not fit never makes one that fits fail (a race of the footprint issue): the quota used
 * to add first and check after, so while a too-large request was briefly charged, concurrent requests that
 * fit failed with ENOMEM (134,552 of 265,448 in one run of the reproducer). Deterministic: the
 * quota's test hook, called when a charge is refused, makes the refusing thread wait while a second thread
 * allocates a block that fits. */
#include "hakmem_test.h"

#include <pthread.h>

void hak_test_hook_quota_refused(void);

static __thread int armed;
static ht_barrier_t hook_barrier;
static hak_heap_t *heap;
static void *second_block;
static int second_errno;

void hak_test_hook_quota_refused(void) {
    if (!armed)
        return;
    armed = 0;
    ht_barrier_wait(&hook_barrier); /* the second thread allocates now ... */
    ht_barrier_wait(&hook_barrier); /* ... and is done */
}

static void *second(void *arg) {
    (void)arg;
    ht_barrier_wait(&hook_barrier);
    errno = 0;
    second_block = hak_heap_alloc(heap, 300 << 10); /* fits in the limit */
    second_errno = errno;
    ht_barrier_wait(&hook_barrier);
    return NULL;
}

static void test_refused_charge_never_fails_one_that_fits(void **state) {
    (void)state;
    heap = hak_heap_create(&(hak_heap_options_t){.limit_bytes = 1 << 20, .name = "quota-race"});
    assert_non_null(heap);
    ht_barrier_init(&hook_barrier, 2);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, second, NULL), 0);
    armed = 1;
    errno = 0;
    void *big = hak_heap_alloc(heap, 2 << 20); /* over the limit: refused, and waits in the hook */
    int big_errno = errno;
    pthread_join(t, NULL);
    assert_null(big);
    assert_int_equal(big_errno, ENOMEM);
    if (second_block == NULL)
        fail_msg("a 300 KiB block within the 1 MiB limit failed (errno %d) while a 2 MiB request was refused",
                 second_errno);
    hak_free(second_block);
    hak_heap_destroy(heap);
}

int main(void) {
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_refused_charge_never_fails_one_that_fits)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
