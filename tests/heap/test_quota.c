/* SPDX-License-Identifier: MIT */
/* Heap quotas (limit_bytes): the charged memory (64 KiB per slab of each span; header + usable bytes of a
 * large block, not the 2 MiB rounding of its mapping) never exceeds the limit, the limit is reachable,
 * failures are NULL + ENOMEM and harm nothing, other heaps are not affected, realloc within a large block's
 * mapping charges or gives back the difference, and freeing makes room again, also when the blocks of exited
 * threads are freed by another thread. */
#include "hakmem_test.h"

/* Memory charged to the heap, from its statistics: every span counts its slabs, every large block its
 * mapping (usable size + the 64-byte header, a multiple of 4 KiB). */
static uint64_t charged_bytes(hak_heap_t *h, hak_stats_t *out) {
    hak_stats_t st;
    ht_get_stats(h, &st);
    uint64_t sum = 0;
    for (uint32_t c = 0; c < st.class_count && c < HAK_CLASS_COUNT; c++)
        sum += st.classes[c].slabs * ht_span_slabs_for(c) * HT_SLAB;
    sum += st.large_bytes + st.large_blocks * HT_LARGE_HEADER;
    if (out)
        *out = st;
    return sum;
}

/* Allocates blocks of size n from h until it fails; returns the count, the blocks in *out (calloc'ed). */
static size_t fill(hak_heap_t *h, size_t n, size_t cap, void ***out) {
    void **v = calloc(cap, sizeof *v);
    assert_non_null(v);
    size_t k = 0;
    errno = 0;
    for (; k < cap; k++) {
        v[k] = hak_heap_alloc(h, n);
        if (v[k] == NULL)
            break;
        memset(v[k], (int)k, n < 64 ? n : 64);
    }
    *out = v;
    return k;
}

static void free_all(void **v, size_t k) {
    for (size_t i = 0; i < k; i++)
        hak_free(v[i]);
    free(v);
}

static void quota_small_and_pool(size_t L) {
    hak_collect(1);
    hak_heap_t *q = hak_heap_create(&(hak_heap_options_t){.limit_bytes = L, .name = "quota"});
    assert_non_null(q);
    hak_stats_t st;
    ht_get_stats(q, &st);
    assert_int_equal(st.limit_bytes, L);
    assert_string_equal(st.name, "quota");

    /* tiny: 64-byte blocks up to the limit */
    void **v;
    size_t cap = L / 64 + 2;
    size_t k = fill(q, 64, cap, &v);
    assert_true(k < cap);
    assert_int_equal(errno, ENOMEM);
    uint64_t ch = charged_bytes(q, &st);
    print_message("limit %zu KiB: %zu blocks of 64 B (%zu KiB), charged %llu KiB\n", L >> 10, k,
                  (k * 64) >> 10, (unsigned long long)ch >> 10);
    assert_true(ch <= L);
    assert_true(ch + HT_SLAB > L); /* the limit is reached: not one more slab would fit */
    assert_true(k * 64 <= L);
    assert_true(k * 64 >= L - 2 * HT_SLAB); /* SuperSlab headers cost a little */
    assert_int_equal(st.live_blocks, k);
    assert_int_equal(st.limit_bytes, L);

    /* the heap is at its limit: other classes and large blocks fail too, without harming anything */
    errno = 0;
    assert_null(hak_heap_alloc(q, 1000));
    assert_int_equal(errno, ENOMEM);
    errno = 0;
    assert_null(hak_heap_alloc(q, 100000));
    assert_int_equal(errno, ENOMEM);
    errno = 0;
    assert_null(hak_heap_alloc(q, 400000));
    assert_int_equal(errno, ENOMEM);
    errno = 0;
    assert_null(hak_heap_calloc(q, 10, 100));
    assert_int_equal(errno, ENOMEM);
    errno = 0;
    assert_null(hak_heap_realloc(q, NULL, 300000));
    assert_int_equal(errno, ENOMEM);
    errno = 0;
    void *grown = hak_heap_realloc(q, v[0], 5000); /* needs a new span of another class: fails, v[0] intact */
    assert_null(grown);
    assert_int_equal(errno, ENOMEM);
    assert_int_equal(((unsigned char *)v[0])[0], 0);
    assert_int_equal(charged_bytes(q, NULL), ch);

    /* other heaps and the default heap are unaffected */
    hak_heap_t *q2 = hak_heap_create(&(hak_heap_options_t){.limit_bytes = L, .name = "quota2"});
    assert_non_null(q2);
    void **v2;
    size_t k2 = fill(q2, 64, cap, &v2);
    assert_int_equal(errno, ENOMEM);
    assert_true(k2 + 2 * HT_SLAB / 64 >= k && k + 2 * HT_SLAB / 64 >= k2);
    assert_true(charged_bytes(q2, NULL) <= L);
    hak_heap_t *free_heap = hak_heap_create(&(hak_heap_options_t){.limit_bytes = 0, .name = "unlimited"});
    assert_non_null(free_heap);
    void *big[3] = {hak_alloc(2 * L), hak_heap_alloc(free_heap, 2 * L), hak_alloc(100000)};
    for (int i = 0; i < 3; i++) {
        assert_non_null(big[i]);
        hak_free(big[i]);
    }
    void **vd;
    size_t kd = fill(hak_heap_default(), 64, cap, &vd); /* more than q could hold */
    assert_int_equal(kd, cap);
    free_all(vd, kd);
    free_all(v2, k2);
    hak_heap_destroy(q2);
    hak_heap_destroy(free_heap);
    assert_int_equal(charged_bytes(q, NULL), ch);

    /* freeing makes room: one block, then everything */
    void *last = v[k - 1];
    hak_free(last);
    v[k - 1] = hak_heap_alloc(q, 64);
    assert_non_null(v[k - 1]);
    assert_null(hak_heap_alloc(q, 64));
    free_all(v, k);
    void *p = hak_heap_alloc(q, 1000);
    assert_non_null(p);
    hak_free(p);
    size_t again = fill(q, 64, cap, &v);
    assert_int_equal(errno, ENOMEM);
    assert_true(again + HT_SLAB / 64 >= k); /* the same amount fits again (give or take a header) */
    assert_true(charged_bytes(q, NULL) <= L);
    free_all(v, again);

    /* pool blocks: 20000 and 100000 bytes */
    size_t pool_sizes[2] = {20000, 100000};
    for (int i = 0; i < 2; i++) { /* a fresh heap each: spans of these classes take up to 1 MiB */
        size_t n = pool_sizes[i];
        hak_heap_t *qp = hak_heap_create(&(hak_heap_options_t){.limit_bytes = L, .name = "quota-pool"});
        assert_non_null(qp);
        k = fill(qp, n, L / n + 2, &v);
        assert_int_equal(errno, ENOMEM);
        ch = charged_bytes(qp, NULL);
        print_message("limit %zu KiB: %zu blocks of %zu B, charged %llu KiB\n", L >> 10, k, n,
                      (unsigned long long)ch >> 10);
        assert_true(ch <= L);
        assert_true(ch + 16 * HT_SLAB > L); /* no further span (at most 16 slabs) would fit */
        assert_true(k >= 1);
        assert_true(k * n <= L);
        free_all(v, k);
        hak_heap_destroy(qp);
    }
    hak_heap_destroy(q);
}

static void test_quota_1m(void **state) {
    (void)state;
    quota_small_and_pool(HT_MIB);
}

static void test_quota_4m(void **state) {
    (void)state;
    quota_small_and_pool(4 * HT_MIB);
}

/* A large block whose mapping (size + 64 rounded up to 4 KiB) is exactly L fits; one byte more does not. */
static void quota_large_exact(size_t L) {
    hak_collect(1); /* empty BigCache: mappings are made to measure */
    hak_heap_t *q = hak_heap_create(&(hak_heap_options_t){.limit_bytes = L, .name = "quota-large"});
    assert_non_null(q);
    size_t fits = L - HT_LARGE_HEADER;
    errno = 0;
    assert_null(hak_heap_alloc(q, fits + 1));
    assert_int_equal(errno, ENOMEM);
    void *p = hak_heap_alloc(q, fits);
    assert_non_null(p);
    assert_int_equal(hak_usable_size(p), fits);
    memset(p, 0x11, fits);
    hak_stats_t st;
    assert_int_equal(charged_bytes(q, &st), L);
    assert_int_equal(st.large_blocks, 1);
    assert_int_equal(st.large_bytes, fits);
    errno = 0;
    assert_null(hak_heap_alloc(q, 16));
    assert_int_equal(errno, ENOMEM);
    errno = 0;
    assert_null(hak_heap_realloc(q, p, fits + 1));
    assert_int_equal(errno, ENOMEM);
    assert_true(ht_all_equal(p, fits, 0x11));
    hak_free(p);
    /* freed: the same allocation succeeds again (from the BigCache or a fresh mapping) */
    p = hak_heap_alloc(q, fits);
    assert_non_null(p);
    hak_free(p);
    hak_collect(1);

    /* with one small span held (64 KiB), the largest large block shrinks by that much */
    void *s = hak_heap_alloc(q, 16);
    assert_non_null(s);
    assert_int_equal(charged_bytes(q, NULL), HT_SLAB);
    size_t fits2 = L - HT_SLAB - HT_LARGE_HEADER;
    errno = 0;
    assert_null(hak_heap_alloc(q, fits2 + 1));
    assert_int_equal(errno, ENOMEM);
    p = hak_heap_alloc(q, fits2);
    assert_non_null(p);
    assert_int_equal(charged_bytes(q, NULL), L);
    hak_free(p);
    hak_free(s);
    hak_heap_destroy(q);
    hak_collect(1);
}

static void test_quota_large_exact(void **state) {
    (void)state;
    quota_large_exact(HT_MIB);
    quota_large_exact(4 * HT_MIB);
}

/* The quota is charged header + usable bytes for a large block (hak_large_charged), not the chunk rounding of
 * its mapping (address space only); realloc within the mapping charges or returns the difference. */
static void test_large_quota_charge(void **state) {
    (void)state;
    const size_t limit = 3 * HT_MIB;
    hak_heap_options_t o = {limit, "tiers-quota"};
    hak_heap_t *h = hak_heap_create(&o);
    assert_non_null(h);
    /* 2 MiB + 1: charged 2 MiB + 4 KiB, in a 4 MiB mapping that is larger than the whole quota */
    unsigned char *p = hak_heap_alloc(h, 2 * HT_MIB + 1);
    if (p == NULL)
        fail_msg("2 MiB + 1 in a 3 MiB heap failed (errno %d): charged for its 4 MiB mapping?", errno);
    hak_large_t *lh = hak_large_of(p, hak_region_kind(p));
    assert_non_null(lh);
    assert_int_equal(lh->map_size, 2 * HT_CHUNK);
    assert_int_equal(hak_large_charged(lh), 2 * HT_MIB + HT_PAGE);
    ht_fill(p, 2 * HT_MIB + 1, 40);
    hak_stats_t st = ht_stats(h);
    assert_int_equal(st.limit_bytes, limit);
    assert_int_equal(st.committed_bytes, 2 * HT_MIB + HT_PAGE);
    assert_int_equal(st.reserved_bytes, 2 * HT_CHUNK);
    /* 1 MiB - 4 KiB of quota left: a 1 MiB block (charged 1 MiB + 4 KiB) does not fit */
    HT_EXPECT_FAIL(hak_heap_alloc(h, HT_MIB), ENOMEM, "1 MiB over the quota");
    /* realloc within the mapping up to exactly the limit, then one page over it */
    unsigned char *q = hak_heap_realloc(h, p, limit - HT_LARGE_HEADER);
    assert_ptr_equal(q, p);
    assert_int_equal(hak_usable_size(p), limit - HT_LARGE_HEADER);
    assert_int_equal(ht_stats(h).committed_bytes, limit);
    HT_EXPECT_FAIL(hak_heap_realloc(h, p, limit - HT_LARGE_HEADER + 1), ENOMEM,
                   "realloc one page over the quota");
    assert_int_equal(hak_usable_size(p), limit - HT_LARGE_HEADER);
    HT_ASSERT_PATTERN(p, 0, 2 * HT_MIB + 1, 40, "block after a realloc refused by the quota");
    /* shrinking returns quota: 1 MiB left charged 1 MiB + 4 KiB, so 2 MiB - 4 KiB is free again */
    q = hak_heap_realloc(h, p, HT_MIB);
    assert_ptr_equal(q, p);
    assert_int_equal(ht_stats(h).committed_bytes, HT_MIB + HT_PAGE);
    unsigned char *r = hak_heap_alloc(h, 2 * HT_MIB - HT_PAGE - HT_LARGE_HEADER);
    if (r == NULL)
        fail_msg("the quota a shrink gave back cannot be used (errno %d)", errno);
    assert_int_equal(ht_stats(h).committed_bytes, limit);
    HT_EXPECT_FAIL(hak_heap_alloc(h, HAK_SLAB_MAX_SIZE + 1), ENOMEM, "large block over a full quota");
    HT_ASSERT_PATTERN(p, 0, HT_MIB, 40, "block after shrinking");
    hak_free(r);
    hak_free(p);
    assert_int_equal(ht_stats(h).committed_bytes, 0);
    hak_heap_destroy(h);
}

/* A cached mapping somewhat larger than the request (BigCache near fit) must not make a request that fits
 * the limit fail: the heap would hold L + 64 KiB. Either a fresh mapping or a trimmed one is fine. */
static void test_quota_large_with_bigger_cached_mapping(void **state) {
    (void)state;
    size_t L = 4 * HT_MIB;
    hak_collect(1);
    void *d = hak_alloc(L + HT_SLAB - HT_LARGE_HEADER); /* default heap: mapping L + 64 KiB */
    assert_non_null(d);
    hak_free(d); /* now in the BigCache */
    hak_heap_t *q = hak_heap_create(&(hak_heap_options_t){.limit_bytes = L, .name = "quota-cache"});
    assert_non_null(q);
    errno = 0;
    void *p = hak_heap_alloc(q, L - HT_LARGE_HEADER);
    int err = errno;
    uint64_t ch = charged_bytes(q, NULL);
    hak_free(p);
    hak_heap_destroy(q);
    hak_collect(1);
    if (p == NULL)
        fail_msg("limit %zu: hak_heap_alloc(L - 64) failed (errno %d) while a cached mapping of L + 64 KiB "
                 "existed; it succeeds with an empty BigCache",
                 L, err);
    assert_true(ch <= L);
}

/* After every block is freed and hak_collect(1) gave empty memory back, the whole limit is available to a
 * single large block again. */
static void test_quota_room_after_free_and_collect(void **state) {
    (void)state;
    size_t L = HT_MIB;
    hak_collect(1);
    hak_heap_t *q = hak_heap_create(&(hak_heap_options_t){.limit_bytes = L, .name = "quota-room"});
    assert_non_null(q);
    void **v;
    size_t k = fill(q, 64, L / 64 + 2, &v);
    assert_int_equal(errno, ENOMEM);
    free_all(v, k);
    hak_collect(1);
    uint64_t ch = charged_bytes(q, NULL);
    errno = 0;
    void *p = hak_heap_alloc(q, L - HT_LARGE_HEADER);
    int err = errno;
    hak_free(p);
    hak_heap_destroy(q);
    if (p == NULL)
        fail_msg(
            "after freeing all %zu blocks and hak_collect(1), the heap is still charged %llu bytes; a large "
            "block of L - 64 bytes fails (errno %d)",
            k, (unsigned long long)ch, err);
}

/* Threads fill the heap to its limit together, then exit with their blocks live; main frees every block
 * (remote frees into abandoned SuperSlabs) and must be able to allocate as much again. */
typedef struct {
    hak_heap_t *h;
    void **v;
    size_t k, cap;
    int err;
} qt_arg_t;

static void *qt_fill(void *arg) {
    qt_arg_t *a = arg;
    a->v = calloc(a->cap, sizeof *a->v);
    if (a->v == NULL)
        return NULL;
    errno = 0;
    for (a->k = 0; a->k < a->cap; a->k++) {
        a->v[a->k] = hak_heap_alloc(a->h, 64);
        if (a->v[a->k] == NULL)
            break;
    }
    a->err = errno;
    return NULL;
}

static void test_quota_threads_exit_then_free(void **state) {
    (void)state;
    size_t L = 4 * HT_MIB;
    hak_heap_t *q = hak_heap_create(&(hak_heap_options_t){.limit_bytes = L, .name = "quota-threads"});
    assert_non_null(q);
    qt_arg_t a[2];
    pthread_t t[2];
    for (int i = 0; i < 2; i++) {
        a[i] = (qt_arg_t){q, NULL, 0, L / 64 + 2, 0};
        assert_int_equal(pthread_create(&t[i], NULL, qt_fill, &a[i]), 0);
    }
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    size_t total = 0;
    for (int i = 0; i < 2; i++) {
        assert_non_null(a[i].v);
        assert_int_equal(a[i].err, ENOMEM);
        total += a[i].k;
    }
    assert_true(total * 64 <= L);
    assert_true(total * 64 >= L - 4 * HT_SLAB);
    /* main frees every block of the exited threads: no statistics call, no hak_collect in between */
    for (int i = 0; i < 2; i++)
        free_all(a[i].v, a[i].k);
    void **v;
    size_t k = fill(q, 64, L / 64 + 2, &v);
    int err = errno;
    uint64_t ch = charged_bytes(q, NULL);
    free_all(v, k);
    hak_heap_destroy(q);
    if (k + 4 * HT_SLAB / 64 < total)
        fail_msg("after the exited threads' %zu blocks were all freed, only %zu blocks of 64 B fit again "
                 "(errno %d)",
                 total, k, err);
    assert_true(ch <= L);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_quota_1m),
        cmocka_unit_test(test_quota_4m),
        cmocka_unit_test(test_quota_large_exact),
        cmocka_unit_test(test_large_quota_charge),
        cmocka_unit_test(test_quota_large_with_bigger_cached_mapping),
        cmocka_unit_test(test_quota_room_after_free_and_collect),
        cmocka_unit_test(test_quota_threads_exit_then_free),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
