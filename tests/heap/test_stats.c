/* SPDX-License-Identifier: MIT */
/* Statistics: exact counts for a known allocation set, after cross-thread frees, the versioned struct
 * (a smaller `size` fills only that prefix), and the process totals. (The default heap's counts after frees
 * by other threads: api/test_cross_thread.c; the printed statistics: stats_print.c and
 * check_stats_output.py.) */
#include "hakmem_test.h"

#include <semaphore.h>

typedef struct {
    size_t request;
    int count;
} spec_t;

/* A known set: several sizes per tier, including two requests that share a class. */
static const spec_t known[] = {
    {16, 100}, {17, 33},  {32, 7},    {100, 50},   {112, 5},    {1000, 20},   {5000, 9},
    {8192, 4}, {9000, 6}, {70000, 3}, {262144, 2}, {262145, 1}, {1 << 20, 2}, {5 << 20, 1},
};
#define NKNOWN (sizeof known / sizeof known[0])

static void test_stats_known_set(void **state) {
    (void)state;
    hak_stats_t proc0, proc1, def, st;
    hak_collect(1); /* empty BigCache: large blocks get mappings made to measure */
    ht_get_stats(NULL, &proc0);
    hak_heap_t *h = hak_heap_create(&(hak_heap_options_t){0, "known"});
    assert_non_null(h);
    ht_get_stats(NULL, &proc1);
    assert_int_equal(proc1.heap_count, proc0.heap_count + 1);
    assert_string_equal(proc1.name, "process");

    void *blocks[512];
    size_t nb = 0;
    uint64_t bytes = 0, large_blocks = 0, large_bytes = 0;
    for (size_t i = 0; i < NKNOWN; i++)
        for (int k = 0; k < known[i].count; k++) {
            void *p = hak_heap_alloc(h, known[i].request);
            assert_non_null(p);
            assert_true(nb < 512);
            blocks[nb++] = p;
            size_t u = hak_usable_size(p);
            bytes += u;
            if (known[i].request > HT_SLAB_MAX) {
                large_blocks++;
                large_bytes += u;
                assert_int_equal(u,
                                 ht_align_up(known[i].request + HT_LARGE_HEADER, HT_PAGE) - HT_LARGE_HEADER);
            }
        }
    ht_get_stats(h, &st);
    assert_string_equal(st.name, "known");
    assert_int_equal(st.heap_count, 1);
    assert_int_equal(st.live_blocks, nb);
    assert_int_equal(st.live_bytes, bytes);
    assert_int_equal(st.large_blocks, large_blocks);
    assert_int_equal(st.large_bytes, large_bytes);
    assert_true(st.peak_live_bytes >= bytes);
    assert_true(st.committed_bytes <= st.reserved_bytes);
    assert_true(st.cached_bytes <= st.committed_bytes);
    assert_true(st.committed_bytes >= st.live_bytes);

    /* the class table: ascending multiples of 16 from 16 B to 256 KiB */
    assert_true(st.class_count > 8 && st.class_count <= HAK_STATS_CLASSES_MAX);
    assert_int_equal(st.classes[0].block_size, 16);
    assert_int_equal(st.classes[st.class_count - 1].block_size, HT_SLAB_MAX);
    for (uint32_t c = 1; c < st.class_count; c++) {
        assert_true(st.classes[c].block_size > st.classes[c - 1].block_size);
        assert_int_equal(st.classes[c].block_size % 16, 0);
    }
    for (uint32_t c = st.class_count; c < HAK_STATS_CLASSES_MAX; c++) {
        assert_int_equal(st.classes[c].block_size, 0);
        assert_int_equal(st.classes[c].live_blocks, 0);
    }
    /* per class: the expected count, classes computed from the usable size of each block */
    uint64_t want[HAK_STATS_CLASSES_MAX] = {0};
    for (size_t i = 0; i < nb; i++) {
        size_t u = hak_usable_size(blocks[i]);
        if (u > HT_SLAB_MAX)
            continue;
        int c = ht_class_index(&st, u);
        assert_true(c >= 0);
        want[c]++;
    }
    assert_int_equal(want[0], 100 + 0); /* 16 */
    assert_int_equal(want[1], 33 + 7);  /* 17 and 32 share the 32-byte class */
    for (uint32_t c = 0; c < st.class_count; c++) {
        if (st.classes[c].live_blocks != want[c])
            fail_msg("class %u (%llu B): live_blocks %llu, expected %llu", c,
                     (unsigned long long)st.classes[c].block_size,
                     (unsigned long long)st.classes[c].live_blocks, (unsigned long long)want[c]);
        if (want[c])
            assert_true(st.classes[c].slabs >= 1);
        if (!want[c])
            assert_int_equal(st.classes[c].slabs, 0);
    }

    /* process totals are the sum of the heaps (only the default heap and h exist in this program) */
    ht_get_stats(hak_heap_default(), &def);
    ht_get_stats(NULL, &proc1);
    assert_int_equal(proc1.live_blocks, def.live_blocks + st.live_blocks);
    assert_int_equal(proc1.live_bytes, def.live_bytes + st.live_bytes);
    assert_int_equal(proc1.large_blocks, def.large_blocks + st.large_blocks);
    assert_int_equal(proc1.large_bytes, def.large_bytes + st.large_bytes);
    assert_true(proc1.reserved_bytes >= def.reserved_bytes + st.reserved_bytes);
    assert_true(proc1.committed_bytes >= def.committed_bytes + st.committed_bytes);
    for (uint32_t c = 0; c < st.class_count; c++)
        assert_int_equal(proc1.classes[c].live_blocks,
                         def.classes[c].live_blocks + st.classes[c].live_blocks);

    /* free half: counts follow; the peak stays */
    uint64_t peak = st.peak_live_bytes;
    uint64_t left = 0, left_bytes = 0;
    for (size_t i = 0; i < nb; i++) {
        if (i % 2) {
            hak_free(blocks[i]);
            blocks[i] = NULL;
        } else {
            left++;
            left_bytes += hak_usable_size(blocks[i]);
        }
    }
    ht_get_stats(h, &st);
    assert_int_equal(st.live_blocks, left);
    assert_int_equal(st.live_bytes, left_bytes);
    assert_true(st.peak_live_bytes >= peak);
    for (size_t i = 0; i < nb; i++)
        hak_free(blocks[i]);
    ht_get_stats(h, &st);
    assert_int_equal(st.live_blocks, 0);
    assert_int_equal(st.live_bytes, 0);
    assert_int_equal(st.large_blocks, 0);
    assert_int_equal(st.large_bytes, 0);
    assert_true(st.peak_live_bytes >= peak);
    for (uint32_t c = 0; c < st.class_count; c++)
        assert_int_equal(st.classes[c].live_blocks, 0);
    hak_heap_destroy(h);
    ht_get_stats(NULL, &proc1);
    assert_int_equal(proc1.heap_count, proc0.heap_count);
}

/* ---- cross-thread frees -------------------------------------------------------------------------------- */
typedef struct {
    hak_heap_t *h;
    void **v;
    size_t n;
    sem_t ready, release, done;
    int mode; /* 0: allocate v[] and idle; 1: free v[] */
} xa_t;

static void *xt_alloc_idle(void *arg) {
    xa_t *a = arg;
    for (size_t i = 0; i < a->n; i++)
        a->v[i] = hak_heap_alloc(a->h, i % 5 == 4 ? 20000 : 16 + (i % 64) * 16);
    sem_post(&a->ready);
    sem_wait(&a->release);
    return NULL;
}

static void *xt_free(void *arg) {
    xa_t *a = arg;
    for (size_t i = 0; i < a->n; i++)
        hak_free(a->v[i]);
    return NULL;
}

/* The owner of the blocks is alive and idle; another thread freed them all. Reports whether hak_collect(0)
 * is needed for the statistics to see it, and requires that after hak_collect(0) they do. */
static void test_stats_cross_thread_free_owner_alive(void **state) {
    (void)state;
    enum { N = 3000 };
    hak_heap_t *h = hak_heap_create(&(hak_heap_options_t){0, "xfree"});
    assert_non_null(h);
    static void *v[N];
    xa_t a = {.h = h, .v = v, .n = N};
    sem_init(&a.ready, 0, 0);
    sem_init(&a.release, 0, 0);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, xt_alloc_idle, &a), 0);
    sem_wait(&a.ready);
    for (size_t i = 0; i < N; i++)
        assert_non_null(v[i]);
    hak_stats_t st;
    ht_get_stats(h, &st);
    assert_int_equal(st.live_blocks, N);
    xt_free(&a); /* main frees the blocks of the idle owner */
    ht_get_stats(h, &st);
    uint64_t before = st.live_blocks;
    hak_collect(0);
    ht_get_stats(h, &st);
    uint64_t after = st.live_blocks;
    print_message("cross-thread free (owner alive, idle): live_blocks %llu right after the frees, %llu after "
                  "hak_collect(0) by the freeing thread (expected 0)\n",
                  (unsigned long long)before, (unsigned long long)after);
    sem_post(&a.release);
    pthread_join(t, NULL);
    ht_get_stats(h, &st);
    print_message("  ... and %llu after the owner exited\n", (unsigned long long)st.live_blocks);
    assert_int_equal(st.live_blocks, 0);
    assert_int_equal(st.live_bytes, 0);
    hak_heap_destroy(h);
    sem_destroy(&a.ready);
    sem_destroy(&a.release);
    if (after != 0)
        fail_msg("stats count %llu of %d blocks freed by another thread as live, even after hak_collect(0)",
                 (unsigned long long)after, N);
}

/* Main allocates, another thread frees (and exits); main's statistics, after hak_collect(0) if needed. */
static void test_stats_cross_thread_free_by_other(void **state) {
    (void)state;
    enum { N = 3000 };
    static void *v[N];
    uint64_t left[2] = {0, 0};
    for (int which = 0; which < 2; which++) { /* 0: private heap, 1: default heap */
        hak_heap_t *h = which ? hak_heap_default() : hak_heap_create(&(hak_heap_options_t){0, "xfree2"});
        assert_non_null(h);
        hak_stats_t st0, st;
        ht_get_stats(h, &st0);
        for (size_t i = 0; i < N; i++) {
            v[i] = hak_heap_alloc(h, i % 5 == 4 ? 20000 : 16 + (i % 64) * 16);
            assert_non_null(v[i]);
        }
        ht_get_stats(h, &st);
        assert_int_equal(st.live_blocks, st0.live_blocks + N);
        xa_t a = {.h = h, .v = v, .n = N};
        pthread_t t;
        assert_int_equal(pthread_create(&t, NULL, xt_free, &a), 0);
        pthread_join(t, NULL);
        ht_get_stats(h, &st);
        uint64_t before = st.live_blocks - st0.live_blocks;
        hak_collect(0);
        ht_get_stats(h, &st);
        uint64_t after = st.live_blocks - st0.live_blocks;
        print_message("cross-thread free (%s heap, owner = main): %llu live right after, %llu after "
                      "hak_collect(0) by the owner (expected 0)\n",
                      which ? "default" : "private", (unsigned long long)before, (unsigned long long)after);
        /* the owner's next allocation that needs memory collects them anyway: the memory is reusable */
        if (!which)
            hak_heap_destroy(h);
        left[which] = after;
    }
    for (int which = 0; which < 2; which++)
        if (left[which] != 0)
            fail_msg(
                "%s heap: %llu blocks freed by another thread still counted live after hak_collect(0) by "
                "their owner",
                which ? "default" : "private", (unsigned long long)left[which]);
}

/* ---- versioned struct ---------------------------------------------------------------------------------- */
#define GUARD 0xA5
typedef struct {
    hak_stats_t st;
    unsigned char tail[256];
} padded_t;

static void check_prefix(hak_heap_t *h, size_t size, const hak_stats_t *full) {
    static padded_t buf;
    memset(&buf, GUARD, sizeof buf);
    buf.st.size = size;
    assert_int_equal(hak_heap_stats(h, &buf.st), 0);
    assert_int_equal(buf.st.size, size); /* the caller's size is left alone */
    const unsigned char *b = (const unsigned char *)&buf;
    size_t filled = size < sizeof(hak_stats_t) ? size : sizeof(hak_stats_t);
    for (size_t i = filled; i < sizeof buf; i++)
        if (b[i] != GUARD)
            fail_msg("size %zu: byte %zu (past the %zu bytes to fill) was written", size, i, filled);
    /* the prefix holds what the full call returns */
    assert_int_equal(
        memcmp(b + sizeof(size_t), (const unsigned char *)full + sizeof(size_t), filled - sizeof(size_t)), 0);
}

static void test_stats_versioned_struct(void **state) {
    (void)state;
    hak_heap_t *h = hak_heap_create(&(hak_heap_options_t){4 * HT_MIB, "versioned"});
    assert_non_null(h);
    void *p = hak_heap_alloc(h, 100), *q = hak_heap_alloc(h, 300000);
    assert_non_null(p);
    assert_non_null(q);
    hak_stats_t full;
    ht_get_stats(h, &full);
    assert_int_equal(full.live_blocks, 2);
    assert_int_equal(full.limit_bytes, 4 * HT_MIB);
    size_t sizes[] = {sizeof(size_t),
                      offsetof(hak_stats_t, name) + 5,
                      offsetof(hak_stats_t, live_blocks),
                      offsetof(hak_stats_t, live_bytes),
                      offsetof(hak_stats_t, limit_bytes),
                      offsetof(hak_stats_t, heap_count),
                      offsetof(hak_stats_t, class_count),
                      offsetof(hak_stats_t, classes),
                      offsetof(hak_stats_t, classes) + 5,
                      offsetof(hak_stats_t, classes) + sizeof(hak_class_stats_t) * 3,
                      offsetof(hak_stats_t, held_bytes), /* a caller built before the appended fields */
                      offsetof(hak_stats_t, alloc_slow),
                      offsetof(hak_stats_t, madvise_calls),
                      sizeof(hak_stats_t) - 1,
                      sizeof(hak_stats_t),
                      sizeof(hak_stats_t) + 100};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        check_prefix(h, sizes[i], &full);
    }
    /* the process statistics as well */
    hak_stats_t proc;
    ht_get_stats(NULL, &proc);
    static padded_t buf;
    memset(&buf, GUARD, sizeof buf);
    buf.st.size = offsetof(hak_stats_t, classes);
    assert_int_equal(hak_heap_stats(NULL, &buf.st), 0);
    assert_string_equal(buf.st.name, "process");
    assert_int_equal(buf.st.heap_count, proc.heap_count);
    assert_true(ht_all_equal((unsigned char *)&buf + offsetof(hak_stats_t, classes),
                             sizeof buf - offsetof(hak_stats_t, classes), GUARD));
    /* bad calls: NULL, or a size that cannot even hold the size field */
    assert_int_not_equal(hak_heap_stats(h, NULL), 0);
    memset(&buf, GUARD, sizeof buf);
    buf.st.size = 0;
    assert_int_not_equal(hak_heap_stats(h, &buf.st), 0);
    assert_true(ht_all_equal((unsigned char *)&buf + sizeof(size_t), sizeof buf - sizeof(size_t), GUARD));
    hak_free(p);
    hak_free(q);
    hak_heap_destroy(h);
}

/* The peak of held bytes is kept where the quota is charged: 72 MB live, then freed, leaves a peak of at
 * least 72 MB in the heap's statistics and the process's, without any statistics walk while the blocks lived.
 */
static void peak_after(hak_heap_t *h, size_t block, size_t total) {
    size_t n = (total + block - 1) / block;
    void **blocks = malloc(n * sizeof *blocks);
    assert_non_null(blocks);
    for (size_t i = 0; i < n; i++) {
        blocks[i] = hak_heap_alloc(h, block);
        assert_non_null(blocks[i]);
        memset(blocks[i], 1, 64);
    }
    for (size_t i = 0; i < n; i++)
        hak_free(blocks[i]);
    free(blocks);
    hak_stats_t st, proc;
    ht_get_stats(h, &st);
    ht_get_stats(NULL, &proc);
    assert_int_equal(st.live_blocks, 0);
    if (st.peak_held_bytes < total || proc.peak_held_bytes < total)
        fail_msg("blocks of %zu B, %zu bytes live then freed: peak held %llu (heap), %llu (process)", block,
                 total, (unsigned long long)st.peak_held_bytes, (unsigned long long)proc.peak_held_bytes);
    assert_true(st.held_bytes < st.peak_held_bytes);
    assert_true(proc.held_bytes <= proc.peak_held_bytes);
    assert_true(st.peak_live_bytes <= st.peak_held_bytes); /* walks only saw what was held */
}

static void test_stats_peak_held(void **state) {
    (void)state;
    const size_t total = 72 * 1000 * 1000;
    hak_heap_t *h = hak_heap_create(&(hak_heap_options_t){0, "peak-small"});
    assert_non_null(h);
    hak_stats_t st;
    ht_get_stats(h, &st);
    assert_int_equal(st.held_bytes, 0);
    assert_int_equal(st.peak_held_bytes, 0);
    peak_after(h, 4000, total); /* slab blocks */
    hak_heap_destroy(h);
    h = hak_heap_create(&(hak_heap_options_t){0, "peak-large"});
    assert_non_null(h);
    peak_after(h, (size_t)1 << 20, total); /* large blocks */
    hak_heap_destroy(h);
    /* a destroyed heap's held bytes leave the process total; its peak stays in the process peak */
    hak_stats_t proc;
    ht_get_stats(NULL, &proc);
    assert_true(proc.peak_held_bytes >= total);
    assert_true(proc.held_bytes < total);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stats_known_set),
        cmocka_unit_test(test_stats_versioned_struct),
        cmocka_unit_test(test_stats_peak_held),
        cmocka_unit_test(test_stats_cross_thread_free_owner_alive),
        cmocka_unit_test(test_stats_cross_thread_free_by_other),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
