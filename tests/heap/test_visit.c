/* SPDX-License-Identifier: MIT */
/* hak_heap_visit and hak_heap_contains: every live block of a heap is visited once with its usable size, and
 * no free one (in a thread cache, on a span's lists, freed by another thread, in the BigCache); blocks of
 * exited threads; a visitor that stops, allocates, frees or asks for statistics; other threads allocating in
 * other heaps meanwhile; bad calls. */
#include "hakmem_test.h"

#include <pthread.h>
#include <stdatomic.h>

typedef struct {
    uintptr_t *blocks;
    size_t *sizes;
    size_t count, cap;
} seen_t;

static int record(void *block, size_t size, void *arg) {
    seen_t *s = arg;
    if (s->count == s->cap)
        fail_msg("more than %zu blocks visited", s->cap);
    s->blocks[s->count] = (uintptr_t)block;
    s->sizes[s->count++] = size;
    return 0;
}

static seen_t seen_new(size_t cap) {
    seen_t s = {calloc(cap, sizeof(uintptr_t)), calloc(cap, sizeof(size_t)), 0, cap};
    assert_non_null(s.blocks);
    assert_non_null(s.sizes);
    return s;
}

static void seen_free(seen_t *s) {
    free(s->blocks);
    free(s->sizes);
}

/* The visit of heap reports exactly the blocks live[0..n) (block starts), each with its usable size. */
static void expect_visit(hak_heap_t *heap, void *const *live, size_t n) {
    seen_t s = seen_new(n + 64);
    assert_int_equal(hak_heap_visit(heap, record, &s), 0);
    uintptr_t *want = calloc(n + 1, sizeof *want);
    assert_non_null(want);
    for (size_t i = 0; i < n; i++)
        want[i] = (uintptr_t)live[i];
    qsort(want, n, sizeof *want, ht_cmp_uptr);
    /* sort the visited blocks with their sizes */
    for (size_t i = 1; i < s.count; i++)
        for (size_t j = i; j > 0 && s.blocks[j - 1] > s.blocks[j]; j--) {
            uintptr_t b = s.blocks[j];
            size_t z = s.sizes[j];
            s.blocks[j] = s.blocks[j - 1];
            s.sizes[j] = s.sizes[j - 1];
            s.blocks[j - 1] = b;
            s.sizes[j - 1] = z;
        }
    if (s.count != n)
        fail_msg("visited %zu blocks, %zu live", s.count, n);
    for (size_t i = 0; i < n; i++) {
        if (s.blocks[i] != want[i])
            fail_msg("visited block %zu is %p, expected %p", i, (void *)s.blocks[i], (void *)want[i]);
        if (s.sizes[i] != hak_usable_size((void *)want[i]))
            fail_msg("block %p visited with size %zu, usable %zu", (void *)want[i], s.sizes[i],
                     hak_usable_size((void *)want[i]));
    }
    free(want);
    seen_free(&s);
}

static void test_visit_empty(void **state) {
    (void)state;
    hak_heap_t *h = hak_heap_create(&(hak_heap_options_t){0, "empty"});
    assert_non_null(h);
    expect_visit(h, NULL, 0);
    void *p = hak_heap_alloc(h, 100), *q = hak_heap_alloc(h, HT_MIB);
    hak_free(p);
    hak_free(q);
    expect_visit(h, NULL, 0); /* the freed ones sit in the thread cache and the BigCache */
    hak_heap_destroy(h);
}

/* Blocks of every tier; some freed into the thread cache, some onto the span's lists (a burst past the
 * cache), large ones into the BigCache. */
static void test_visit_known_set(void **state) {
    (void)state;
    enum { N = 3000 };
    hak_heap_t *h = hak_heap_create(&(hak_heap_options_t){0, "known"});
    assert_non_null(h);
    static void *all[N], *live[N];
    size_t nlive = 0;
    for (size_t i = 0; i < N; i++) {
        size_t n = i % 97 == 0 ? 300000 + i : ht_tier_sizes[i % (HT_TIER_SIZES - 2)];
        all[i] = hak_heap_alloc(h, n);
        assert_non_null(all[i]);
    }
    for (size_t i = 0; i < N; i++) {
        if (i % 3 == 0)
            hak_free(all[i]);
        else
            live[nlive++] = all[i];
    }
    expect_visit(h, live, nlive);
    for (size_t i = 0; i < nlive; i++) {
        assert_true(hak_heap_contains(h, live[i]));
        assert_false(hak_heap_contains(hak_heap_default(), live[i]));
        assert_false(hak_heap_contains(NULL, live[i]));
    }
    for (size_t i = 0; i < nlive; i++)
        hak_free(live[i]);
    expect_visit(h, NULL, 0);
    hak_heap_destroy(h);
}

/* The visitor may stop the visit, and its value comes back. */
static int stop_at_third(void *block, size_t size, void *arg) {
    (void)block;
    (void)size;
    return ++*(int *)arg == 3 ? 42 : 0;
}

static void test_visit_stop(void **state) {
    (void)state;
    hak_heap_t *h = hak_heap_create(&(hak_heap_options_t){0, "stop"});
    assert_non_null(h);
    for (int i = 0; i < 10; i++)
        assert_non_null(hak_heap_alloc(h, 64));
    int calls = 0;
    assert_int_equal(hak_heap_visit(h, stop_at_third, &calls), 42);
    assert_int_equal(calls, 3);
    hak_heap_destroy(h);
}

/* The visitor calls hakmem: allocates and frees in the visited heap and elsewhere, asks for statistics. */
typedef struct {
    hak_heap_t *heap;
    size_t visited;
} busy_t;

static int busy_visitor(void *block, size_t size, void *arg) {
    busy_t *b = arg;
    assert_true(hak_usable_size(block) == size);
    void *p = hak_heap_alloc(b->heap, 5000), *q = hak_alloc(100);
    assert_non_null(p);
    assert_non_null(q);
    hak_free(p);
    hak_free(q);
    hak_stats_t st = {.size = sizeof st};
    assert_int_equal(hak_heap_stats(b->heap, &st), 0);
    assert_int_equal(hak_heap_stats(NULL, &st), 0);
    b->visited++;
    return 0;
}

static void test_visit_reentrant(void **state) {
    (void)state;
    hak_heap_t *h = hak_heap_create(&(hak_heap_options_t){0, "reentrant"});
    assert_non_null(h);
    void *blocks[20];
    for (int i = 0; i < 20; i++)
        assert_non_null(blocks[i] = hak_heap_alloc(h, i < 18 ? 48 : HT_MIB));
    busy_t b = {h, 0};
    assert_int_equal(hak_heap_visit(h, busy_visitor, &b), 0);
    assert_int_equal(b.visited, 20); /* what the visitor allocated and freed again is not live */
    expect_visit(h, blocks, 20);
    hak_heap_destroy(h);
}

/* Blocks allocated by a thread that exited (its SuperSlabs abandoned to the heap), and blocks freed by
 * another thread (on the spans' remote lists, not collected yet). */
typedef struct {
    hak_heap_t *heap;
    void **blocks;
    size_t n;
} job_t;

static void *alloc_job(void *arg) {
    job_t *j = arg;
    for (size_t i = 0; i < j->n; i++)
        j->blocks[i] = hak_heap_alloc(j->heap, 24 + i % 2000);
    return NULL;
}

static void *free_job(void *arg) {
    job_t *j = arg;
    for (size_t i = 0; i < j->n; i++)
        hak_free(j->blocks[i]);
    return NULL;
}

static void test_visit_other_threads_blocks(void **state) {
    (void)state;
    enum { N = 2000 };
    hak_heap_t *h = hak_heap_create(&(hak_heap_options_t){0, "threads"});
    assert_non_null(h);
    static void *theirs[N], *mine[N], *live[2 * N];
    job_t j = {h, theirs, N};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, alloc_job, &j), 0);
    assert_int_equal(pthread_join(t, NULL), 0);
    for (size_t i = 0; i < N; i++)
        assert_non_null(theirs[i]);
    expect_visit(h, theirs, N); /* in abandoned SuperSlabs */
    for (size_t i = 0; i < N; i++)
        assert_non_null(mine[i] = hak_heap_alloc(h, 40));
    /* another thread frees every other block of mine: remote frees the owner has not collected */
    static void *odd[N / 2];
    size_t nlive = 0;
    for (size_t i = 0; i < N; i++) {
        if (i & 1)
            odd[i / 2] = mine[i];
        else
            live[nlive++] = mine[i];
    }
    job_t f = {h, odd, N / 2};
    assert_int_equal(pthread_create(&t, NULL, free_job, &f), 0);
    assert_int_equal(pthread_join(t, NULL), 0);
    for (size_t i = 0; i < N; i++)
        live[nlive++] = theirs[i];
    expect_visit(h, live, nlive);
    for (size_t i = 0; i < N / 2; i++)
        assert_false(hak_heap_contains(h, odd[i]) && HAKMEM_CHECKS);
    hak_heap_destroy(h);
}

/* Aligned blocks are visited at their block start, which holds the aligned pointer. */
static int find_holder(void *block, size_t size, void *arg) {
    uintptr_t *q = arg;
    if (q[0] >= (uintptr_t)block && q[0] < (uintptr_t)block + size)
        q[1]++;
    q[2]++;
    return 0;
}

static void test_visit_aligned(void **state) {
    (void)state;
    hak_heap_t *h = hak_heap_create(&(hak_heap_options_t){0, "aligned"});
    assert_non_null(h);
    void *p = hak_heap_aligned_alloc(h, 64 * HT_KIB, 1000);
    assert_non_null(p);
    uintptr_t q[3] = {(uintptr_t)p, 0, 0};
    assert_int_equal(hak_heap_visit(h, find_holder, q), 0);
    assert_int_equal(q[1], 1);
    assert_int_equal(q[2], 1);
    hak_free(p);
    hak_heap_destroy(h);
}

/* Other threads allocate and free in their own heaps while this one is visited again and again. */
static atomic_int churn_stop;

static void *churn(void *arg) {
    (void)arg;
    hak_heap_t *mine = hak_heap_create(NULL);
    void *blocks[256] = {0};
    for (unsigned i = 0; !atomic_load(&churn_stop); i++) {
        unsigned k = i % 256;
        hak_free(blocks[k]);
        blocks[k] = hak_heap_alloc(mine, 16 + (i * 7919) % (i % 64 == 0 ? 400000 : 3000));
        if (i % 3 == 0) {
            hak_free(hak_alloc(64)); /* and the default heap, which is not visited */
        }
    }
    hak_heap_destroy(mine);
    return NULL;
}

static void test_visit_while_others_allocate(void **state) {
    (void)state;
    enum { N = 500, THREADS = 2 };
    hak_heap_t *h = hak_heap_create(&(hak_heap_options_t){0, "visited"});
    assert_non_null(h);
    static void *live[N];
    for (size_t i = 0; i < N; i++)
        assert_non_null(live[i] = hak_heap_alloc(h, 16 + i * 13 % 9000));
    atomic_store(&churn_stop, 0);
    pthread_t t[THREADS];
    for (int i = 0; i < THREADS; i++)
        assert_int_equal(pthread_create(&t[i], NULL, churn, NULL), 0);
    for (size_t round = 0; round < HT_SCALE(50); round++)
        expect_visit(h, live, N);
    atomic_store(&churn_stop, 1);
    for (int i = 0; i < THREADS; i++)
        assert_int_equal(pthread_join(t[i], NULL), 0);
    hak_heap_destroy(h);
}

static void test_contains(void **state) {
    (void)state;
    hak_heap_t *h = hak_heap_create(&(hak_heap_options_t){0, "contains"});
    assert_non_null(h);
    char *small = hak_heap_alloc(h, 100), *large = hak_heap_alloc(h, 3 * HT_MIB), *mine = hak_alloc(100);
    assert_non_null(small);
    assert_non_null(large);
    assert_non_null(mine);
    assert_true(hak_heap_contains(h, small));
    assert_true(hak_heap_contains(h, large));
    assert_true(hak_heap_contains(NULL, mine)); /* NULL: the default heap */
    assert_true(hak_heap_contains(hak_heap_default(), mine));
    assert_false(hak_heap_contains(h, mine));
    assert_false(hak_heap_contains(h, small + 16)); /* interior */
    assert_false(hak_heap_contains(h, large + 4096));
    int on_stack;
    assert_false(hak_heap_contains(h, &on_stack));
    assert_false(hak_heap_contains(h, NULL));
    hak_free(small);
    hak_free(large);
#if HAKMEM_CHECKS
    assert_false(hak_heap_contains(h, small)); /* freed: in the thread cache */
#endif
    assert_false(hak_heap_contains(h, large)); /* freed: in the BigCache */
    hak_free(mine);
    hak_heap_destroy(h);
}

static int never(void *block, size_t size, void *arg) {
    (void)block;
    (void)size;
    (void)arg;
    fail_msg("visitor called");
    return 0;
}

static void child_bad_heap(void **state) {
    (void)state;
    hak_heap_t *h = hak_heap_create(NULL);
    assert_non_null(h);
    hak_heap_destroy(h);
    errno = 0;
    assert_int_equal(hak_heap_visit(h, never, NULL), -1);
    assert_int_equal(errno, EINVAL);
    errno = 0;
    assert_int_equal(hak_heap_contains(h, &errno), 0);
    assert_int_equal(errno, EINVAL);
}

static void test_visit_bad_calls(void **state) {
    (void)state;
    errno = 0;
    assert_int_equal(hak_heap_visit(NULL, NULL, NULL), -1);
    assert_int_equal(errno, EINVAL);
    HT_CHILD_OK("child_bad_heap", 60, "HAKMEM_ON_ERROR=warn");
}

int main(int argc, char **argv) {
    const struct CMUnitTest children[] = {cmocka_unit_test(child_bad_heap)};
    int rc = ht_child_main(argc, argv, children, 1);
    if (rc >= 0)
        return rc;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_visit_empty),
        cmocka_unit_test(test_visit_known_set),
        cmocka_unit_test(test_visit_stop),
        cmocka_unit_test(test_visit_reentrant),
        cmocka_unit_test(test_visit_other_threads_blocks),
        cmocka_unit_test(test_visit_aligned),
        cmocka_unit_test(test_visit_while_others_allocate),
        cmocka_unit_test(test_contains),
        cmocka_unit_test(test_visit_bad_calls),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
