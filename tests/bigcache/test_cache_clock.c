/* SPDX-License-Identifier: MIT */
/* The caches never evict by age what is younger than the purge delay (a race of the footprint issue). The
 * BigCache and the SuperSlab cache read the clock before taking their lock; an entry linked by another thread
 * in between carries a later time than the "now" of the first thread, which then took the unsigned difference
 * for a huge age and evicted the entry at once (and the BigCache reset its resident peak). Deterministic: the
 * caches' test hooks (called just before the lock) make the first thread wait until a second one has linked
 * its entry, 30 ms later. With a purge delay of about 12 days nothing may age out. In a child process, since
 * the options are read once at start-up. */
#include "hakmem_test.h"

#include <pthread.h>

void hak_test_hook_bigcache_put(void);
void hak_test_hook_ss_release(void);

static __thread int hook_armed; /* only the first thread waits in the hook */
static ht_barrier_t hook_barrier;

static void wait_for_second(void) {
    if (!hook_armed)
        return;
    hook_armed = 0;
    ht_barrier_wait(&hook_barrier); /* the second thread starts its free ... */
    ht_barrier_wait(&hook_barrier); /* ... and has linked its entry */
}
void hak_test_hook_bigcache_put(void) { wait_for_second(); }
void hak_test_hook_ss_release(void) { wait_for_second(); }

static void *second_large(void *arg) {
    ht_barrier_wait(&hook_barrier);
    ht_sleep_ms(30); /* a later clock reading than the first thread's, whatever the clock's resolution */
    hak_free(arg);
    ht_barrier_wait(&hook_barrier);
    return NULL;
}

static void *second_heap(void *arg) {
    ht_barrier_wait(&hook_barrier);
    ht_sleep_ms(30);
    hak_heap_destroy(arg);
    ht_barrier_wait(&hook_barrier);
    return NULL;
}

static void child_bigcache_no_early_eviction(void **state) {
    (void)state;
    hak_collect(1);
    unsigned char *a = hak_alloc(3 << 20), *b = hak_alloc(5 << 20);
    assert_non_null(a);
    assert_non_null(b);
    ht_barrier_init(&hook_barrier, 2);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, second_large, b), 0);
    hook_armed = 1;
    hak_free(a); /* waits in the hook until b is cached, then caches a */
    pthread_join(t, NULL);
    hak_bigcache_info_t info = ht_bigcache();
    print_message("BigCache: %llu entries, %llu evicted\n", (unsigned long long)info.entries,
                  (unsigned long long)info.purged);
    if (info.purged != 0 || info.entries != 2)
        fail_msg("%llu of 2 fresh entries evicted by age (purge delay about 12 days)",
                 (unsigned long long)info.purged);
}

static void child_superslab_cache_no_early_purge(void **state) {
    (void)state;
    hak_collect(1);
    uint64_t count0, committed0;
    hak_ss_cache_stats(&count0, &committed0);
    hak_heap_t *h1 = hak_heap_create(NULL), *h2 = hak_heap_create(NULL);
    assert_non_null(hak_heap_alloc(h1, 100));
    assert_non_null(hak_heap_alloc(h2, 100));
    ht_barrier_init(&hook_barrier, 2);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, second_heap, h2), 0);
    hook_armed = 1;
    hak_heap_destroy(h1); /* its SuperSlab waits in the hook until h2's is cached */
    pthread_join(t, NULL);
    uint64_t count, committed;
    hak_ss_cache_stats(&count, &committed);
    print_message("SuperSlab cache: %llu cached (%llu before), %llu purged\n", (unsigned long long)count,
                  (unsigned long long)count0, (unsigned long long)(count - committed));
    if (committed != count)
        fail_msg("%llu fresh cached SuperSlabs purged by age (purge delay about 12 days)",
                 (unsigned long long)(count - committed));
}

static void test_bigcache_no_early_eviction(void **state) {
    (void)state;
    HT_CHILD_OK("child_bigcache_no_early_eviction", 60, "HAKMEM_PURGE_DELAY_MS=1000000000",
                "HAKMEM_BIGCACHE_MAX=4G");
}

static void test_superslab_cache_no_early_purge(void **state) {
    (void)state;
    HT_CHILD_OK("child_superslab_cache_no_early_purge", 60, "HAKMEM_PURGE_DELAY_MS=1000000000",
                "HAKMEM_SUPERSLAB_CACHE=1000");
}

int main(int argc, char **argv) {
    const struct CMUnitTest children[] = {cmocka_unit_test(child_bigcache_no_early_eviction),
                                          cmocka_unit_test(child_superslab_cache_no_early_purge)};
    int rc = ht_child_main(argc, argv, children, sizeof children / sizeof children[0]);
    if (rc >= 0)
        return rc;
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_bigcache_no_early_eviction),
                                       cmocka_unit_test(test_superslab_cache_no_early_purge)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
