/* SPDX-License-Identifier: MIT */
/* The allocation contract on the default heap (hak_alloc, hak_calloc, hak_usable_size, hak_heap_of):
 * hak_alloc(0) gives distinct 16-byte aligned blocks; NULL is handled by hak_free, hak_usable_size,
 * hak_heap_of and hak_realloc; every block up to 8 MiB is 16-byte aligned with usable >= requested, writable
 * in full up to its usable size without touching live neighbours; calloc zeroes, also dirty reused blocks,
 * large ones and every tier edge; hak_heap_of names the default heap for its blocks and NULL for the stack,
 * glibc blocks and code. */
#include "hakmem_test.h"

static void test_alloc_zero(void **state) {
    (void)state;
    enum { N = 1000 };
    static void *p[N];
    for (int i = 0; i < N; i++) {
        p[i] = hak_alloc(0);
        assert_non_null(p[i]);
        assert_int_equal((uintptr_t)p[i] % 16, 0);
    }
    uintptr_t sorted[N];
    for (int i = 0; i < N; i++)
        sorted[i] = (uintptr_t)p[i];
    qsort(sorted, N, sizeof sorted[0], ht_cmp_uptr);
    for (int i = 1; i < N; i++)
        if (sorted[i] == sorted[i - 1])
            fail_msg("hak_alloc(0) returned %p twice", (void *)sorted[i]);
    for (int i = 0; i < N; i++)
        hak_free(p[i]);
    /* and it keeps working after the frees */
    void *q = hak_alloc(0);
    assert_non_null(q);
    hak_free(q);
}

static void test_null_handling(void **state) {
    (void)state;
    hak_free(NULL);
    assert_int_equal(hak_usable_size(NULL), 0);
    assert_null(hak_heap_of(NULL));
    void *p = hak_realloc(NULL, 100);
    assert_non_null(p);
    assert_true(hak_usable_size(p) >= 100);
    assert_ptr_equal(hak_heap_of(p), hak_heap_default());
    memset(p, 0x11, 100);
    hak_free(p);
    p = hak_realloc(NULL, 300000);
    assert_non_null(p);
    assert_true(hak_usable_size(p) >= 300000);
    memset(p, 0x11, 300000);
    hak_free(p);
}

/* Every block is 16-byte aligned, usable >= requested, for sizes 0..20000 and some large ones. */
static void test_alignment_16(void **state) {
    (void)state;
    enum { KEEP = 64 };
    void *ring[KEEP] = {0};
    size_t k = 0;
    for (size_t n = 0; n <= 20000; n += (n < 2100 ? 1 : 13)) {
        void *p = hak_alloc(n);
        if (!p)
            fail_msg("hak_alloc(%zu) = NULL", n);
        if ((uintptr_t)p % 16 != 0)
            fail_msg("hak_alloc(%zu) = %p not 16-byte aligned", n, p);
        if (hak_usable_size(p) < n)
            fail_msg("hak_usable_size(hak_alloc(%zu)) = %zu", n, hak_usable_size(p));
        if (n)
            ((unsigned char *)p)[n - 1] = 1;
        hak_free(ring[k % KEEP]);
        ring[k++ % KEEP] = p;
    }
    for (size_t n = 20000; n <= 8 * HT_MIB; n = n * 3 / 2 + 17) {
        void *p = hak_alloc(n);
        if (!p)
            fail_msg("hak_alloc(%zu) = NULL", n);
        if ((uintptr_t)p % 16 != 0)
            fail_msg("hak_alloc(%zu) = %p not 16-byte aligned", n, p);
        if (hak_usable_size(p) < n)
            fail_msg("hak_usable_size(hak_alloc(%zu)) = %zu", n, hak_usable_size(p));
        ((unsigned char *)p)[n - 1] = 1;
        hak_free(p);
    }
    for (size_t i = 0; i < KEEP; i++)
        hak_free(ring[i]);
}

/* Blocks can be written in full up to their usable size, and live blocks do not overlap. */
static void test_usable_size_writable(void **state) {
    (void)state;
    static const size_t sizes[] = {1,      8,      15,     16,     17,      100,           128,    129,
                                   1000,   1024,   1025,   4000,   8192,    8193,          20000,  65536,
                                   100000, 262144, 262145, 500000, 1 << 20, (1 << 20) + 1, 3 << 20};
    enum { MAXN = 64 };
    void *p[MAXN];
    size_t u[MAXN];
    for (size_t si = 0; si < sizeof sizes / sizeof sizes[0]; si++) {
        size_t n = sizes[si];
        size_t count = (8 * HT_MIB) / n;
        if (count > MAXN)
            count = MAXN;
        if (count < 3)
            count = 3;
        for (size_t i = 0; i < count; i++) {
            p[i] = hak_alloc(n);
            assert_non_null(p[i]);
            u[i] = hak_usable_size(p[i]);
            if (u[i] < n)
                fail_msg("usable %zu < %zu", u[i], n);
            ht_fill(p[i], u[i], n * 1000 + i);
        }
        for (size_t i = 0; i < count; i++) {
            size_t bad = ht_check(p[i], u[i], n * 1000 + i);
            if (bad != (size_t)-1)
                fail_msg("size %zu block %zu (%p, usable %zu): byte %zu overwritten", n, i, p[i], u[i], bad);
            assert_int_equal(hak_usable_size(p[i]), u[i]);
        }
        for (size_t i = 0; i < count; i++)
            hak_free(p[i]);
    }
}

/* calloc zeroes, also when it reuses dirty blocks of the same size. */
static void test_calloc_zero(void **state) {
    (void)state;
    static const size_t sizes[] = {1, 16, 64, 100, 512, 1000, 4096, 8192, 20000, 100000, 262144};
    enum { N = 64 };
    void *p[N];
    for (size_t si = 0; si < sizeof sizes / sizeof sizes[0]; si++) {
        size_t n = sizes[si];
        for (int round = 0; round < 2; round++) {
            for (int i = 0; i < N; i++) {
                p[i] = hak_alloc(n);
                assert_non_null(p[i]);
                memset(p[i], 0xA5, hak_usable_size(p[i]));
            }
            for (int i = N; i-- > 0;)
                hak_free(p[i]);
            for (int i = 0; i < N; i++) {
                p[i] = (i & 1) ? hak_calloc(1, n) : hak_calloc(n, 1);
                assert_non_null(p[i]);
                if (!ht_all_equal(p[i], n, 0))
                    fail_msg("hak_calloc of %zu B (block %d) not zeroed", n, i);
            }
            for (int i = 0; i < N; i++)
                hak_free(p[i]);
        }
    }
    /* count * size form */
    unsigned *a = hak_calloc(1000, sizeof(unsigned));
    assert_non_null(a);
    assert_true(ht_all_equal(a, 1000 * sizeof(unsigned), 0));
    hak_free(a);
    errno = 0;
}

static void test_calloc_large(void **state) {
    (void)state;
    static const size_t sizes[] = {300000, 1 << 20, 3 << 20, 8 << 20, 33 << 20};
    for (size_t si = 0; si < sizeof sizes / sizeof sizes[0]; si++) {
        size_t n = sizes[si];
        for (int round = 0; round < 3; round++) {
            unsigned char *d = hak_alloc(n);
            assert_non_null(d);
            memset(d, 0x5A, n);
            hak_free(d);
            unsigned char *c = hak_calloc(n / 16, 16);
            assert_non_null(c);
            if (!ht_all_equal(c, n, 0))
                fail_msg("hak_calloc of %zu B not zeroed (round %d)", n, round);
            memset(c, 0x77, n);
            hak_free(c);
        }
    }
}

/* hak_calloc in every tier and at the edges: zeroed in full (usable size), even when the block is reused. */
static void test_calloc_edges(void **state) {
    (void)state;
    static const size_t sizes[] = {1,     16,     17,     8191,   8192,   8193,
                                   65536, 262143, 262144, 262145, HT_MIB, 3 * HT_MIB + 1};
    for (int round = 0; round < 2; round++)
        for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
            size_t n = sizes[i];
            /* dirty a block of the same size first so the calloc may reuse it */
            unsigned char *d = hak_alloc(n);
            assert_non_null(d);
            memset(d, 0xee, hak_usable_size(d));
            hak_free(d);
            unsigned char *p = hak_calloc(1, n);
            if (p == NULL)
                fail_msg("hak_calloc(1, %zu) returned NULL", n);
            if (ht_tier_of(p) != ht_expected_tier(n))
                fail_msg("hak_calloc(1, %zu): wrong tier", n);
            if (!ht_all_equal(p, n, 0))
                fail_msg("hak_calloc(1, %zu) (reused: %d) is not zeroed", n, p == d);
            hak_free(p);
        }
}

static void test_heap_of(void **state) {
    (void)state;
    hak_heap_t *def = hak_heap_default();
    assert_non_null(def);
    assert_ptr_equal(hak_heap_default(), def);
    static const size_t sizes[] = {0, 1, 64, 1000, 8192, 9000, 100000, 262144, 300000, 4 << 20};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        void *p = hak_alloc(sizes[i]);
        assert_non_null(p);
        if (hak_heap_of(p) != def)
            fail_msg("hak_heap_of(hak_alloc(%zu)) != default heap", sizes[i]);
        hak_free(p);
    }
    int local = 0;
    assert_null(hak_heap_of(&local));
    void *g = malloc(64);
    assert_non_null(g);
    assert_null(hak_heap_of(g));
    free(g);
    void *big = malloc(4 << 20);
    assert_non_null(big);
    assert_null(hak_heap_of(big));
    free(big);
    assert_null(hak_heap_of((void *)(uintptr_t)test_heap_of));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_alloc_zero),   cmocka_unit_test(test_null_handling),
        cmocka_unit_test(test_alignment_16), cmocka_unit_test(test_usable_size_writable),
        cmocka_unit_test(test_calloc_zero),  cmocka_unit_test(test_calloc_large),
        cmocka_unit_test(test_calloc_edges), cmocka_unit_test(test_heap_of),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
