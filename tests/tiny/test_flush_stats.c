/* SPDX-License-Identifier: MIT */
/* A statistics walk during a thread-cache flush never counts cached blocks as live (a race of the footprint
 * issue): the flush used to give the cache all its room back before returning the blocks, so a walk in
 * between saw the blocks as used in their spans and not cached, counted them live, and raised the heap's
 * peak. The walk is forced into the middle of the flush through the flush's test hook, called after every run
 * it returns: this test defines it. */
#include "hakmem_test.h"

void hak_test_hook_tcache_flush_run(void); /* the library's weak no-op, replaced here */

static int in_test;           /* set while the flush under test runs */
static uint64_t live_allowed; /* live bytes of the blocks the test keeps */
static uint64_t worst_live, walks;

void hak_test_hook_tcache_flush_run(void) {
    if (!in_test)
        return;
    hak_stats_t st = ht_stats(hak_heap_default());
    walks++;
    if (st.live_bytes > worst_live)
        worst_live = st.live_bytes;
}

static void test_stats_during_flush_count_no_cached_block(void **state) {
    (void)state;
    enum { N = 100, CACHED = 40 };
    void *blocks[N];
    hak_collect(1);
    /* 100 blocks of 1 KiB: a span holds 64, so they come from two spans. Freeing them alternately from the
     * two ends puts blocks of both spans in turn into the thread cache (it holds up to 64 of the class), so
     * the flush returns them in many runs of one block, with a hook call after each. */
    for (int i = 0; i < N; i++)
        blocks[i] = hak_alloc(1024);
    for (int i = 0; i < CACHED / 2; i++) {
        hak_free(blocks[i]);
        blocks[i] = NULL;
        hak_free(blocks[N - 1 - i]);
        blocks[N - 1 - i] = NULL;
    }
    hak_stats_t before = ht_stats(hak_heap_default());
    live_allowed = before.live_bytes; /* the 60 blocks still held (and whatever else the process holds) */
    assert_true(live_allowed >= (N - CACHED) * 1024);
    in_test = 1;
    hak_collect(0); /* flushes this thread's cache, run by run */
    in_test = 0;
    print_message("%llu walks during the flush; live bytes at most %llu (live %llu)\n",
                  (unsigned long long)walks, (unsigned long long)worst_live,
                  (unsigned long long)live_allowed);
    assert_true(walks >= 10); /* the flush returned the blocks in many runs, each followed by a walk */
    if (worst_live > live_allowed)
        fail_msg(
            "a walk during the flush saw %llu live bytes, %llu more than are live: cached blocks counted",
            (unsigned long long)worst_live, (unsigned long long)(worst_live - live_allowed));
    for (int i = 0; i < N; i++)
        hak_free(blocks[i]);
}

int main(void) {
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_stats_during_flush_count_no_cached_block)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
