/* SPDX-License-Identifier: MIT */
/* The completions of the API: strdup and strndup (default heap and private heaps), aligned calloc and aligned
 * realloc (the alignment kept across sizes and tiers), and the zeroing realloc. (Visiting a heap and
 * hak_heap_contains: heap/test_visit.c.) */
#include "hakmem_test.h"

/* ---- strings ---- */

static void test_strdup(void **state) {
    (void)state;
    hak_heap_t *h = hak_heap_create(&(hak_heap_options_t){0, "strings"});
    assert_non_null(h);
    static char long_text[100000];
    memset(long_text, 'x', sizeof long_text - 1);
    const char *texts[] = {"", "a", "hello, world", long_text};
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
        char *a = hak_strdup(texts[i]), *b = hak_heap_strdup(h, texts[i]),
             *c = hak_heap_strdup(NULL, texts[i]);
        assert_non_null(a);
        assert_non_null(b);
        assert_non_null(c);
        assert_string_equal(a, texts[i]);
        assert_string_equal(b, texts[i]);
        assert_string_equal(c, texts[i]);
        assert_ptr_equal(hak_heap_of(a), hak_heap_default());
        assert_ptr_equal(hak_heap_of(b), h);
        assert_ptr_equal(hak_heap_of(c), hak_heap_default());
        assert_true(hak_usable_size(a) >= strlen(texts[i]) + 1);
        hak_free(a);
        hak_free(b);
        hak_free(c);
    }
    errno = 0;
    assert_null(hak_strdup(NULL));
    assert_int_equal(errno, EINVAL);
    hak_heap_destroy(h);
}

static void test_strndup(void **state) {
    (void)state;
    hak_heap_t *h = hak_heap_create(&(hak_heap_options_t){0, "strings"});
    assert_non_null(h);
    const char *s = "0123456789";
    static const struct {
        size_t n;
        const char *expect;
    } cases[] = {
        {0, ""}, {1, "0"}, {5, "01234"}, {10, "0123456789"}, {11, "0123456789"}, {SIZE_MAX, "0123456789"}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *a = hak_strndup(s, cases[i].n), *b = hak_heap_strndup(h, s, cases[i].n);
        assert_non_null(a);
        assert_non_null(b);
        assert_string_equal(a, cases[i].expect);
        assert_string_equal(b, cases[i].expect);
        assert_ptr_equal(hak_heap_of(b), h);
        hak_free(a);
        hak_free(b);
    }
    /* only n bytes are read: a buffer without a terminator */
    char raw[4] = {'a', 'b', 'c', 'd'};
    char *d = hak_heap_strndup(h, raw, sizeof raw);
    assert_non_null(d);
    assert_string_equal(d, "abcd");
    hak_free(d);
    errno = 0;
    assert_null(hak_heap_strndup(h, NULL, 3));
    assert_int_equal(errno, EINVAL);
    hak_heap_destroy(h);
}

/* ---- aligned calloc ---- */

static const size_t aligns[] = {1,     16,    32,     64,      256,     4096,   8192,
                                16384, 65536, 262144, 1 << 20, 2 << 20, 4 << 20};
static const size_t sizes[] = {0, 1, 24, 100, 1000, 5000, 8192, 40000, 100000, 262144, 300000, 3 << 20};

/* Makes the next blocks of about n bytes come from dirty memory. */
static void dirty(hak_heap_t *h, size_t n) {
    void *d[4];
    for (int i = 0; i < 4; i++) {
        d[i] = hak_heap_alloc(h, n + (size_t)i * 512);
        assert_non_null(d[i]);
        memset(d[i], 0xa5, hak_usable_size(d[i]));
    }
    for (int i = 0; i < 4; i++)
        hak_free(d[i]);
}

static void test_aligned_calloc(void **state) {
    (void)state;
    hak_heap_t *h = hak_heap_create(&(hak_heap_options_t){0, "aligned-calloc"});
    assert_non_null(h);
    for (size_t a = 0; a < sizeof aligns / sizeof aligns[0]; a++)
        for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
            size_t align = aligns[a], n = sizes[s];
            dirty(h, n);
            unsigned char *p = hak_heap_aligned_calloc(h, align, 1, n);
            unsigned char *q = hak_aligned_calloc(align, n, 1);
            if (p == NULL || q == NULL)
                fail_msg("aligned calloc(%zu, %zu) failed", align, n);
            if ((uintptr_t)p % align || (uintptr_t)q % align || (uintptr_t)p % 16)
                fail_msg("aligned calloc(%zu, %zu) = %p, %p: not aligned", align, n, (void *)p, (void *)q);
            if (!ht_all_equal(p, n, 0) || !ht_all_equal(q, n, 0))
                fail_msg("aligned calloc(%zu, %zu): not zeroed", align, n);
            assert_true(hak_usable_size(p) >= n);
            assert_ptr_equal(hak_heap_of(p), h);
            assert_ptr_equal(hak_heap_of(q), hak_heap_default());
            hak_free(p);
            hak_free(q);
        }
    /* count * size: the product is what is zeroed and aligned */
    uint64_t *v = hak_aligned_calloc(64, 1000, sizeof *v);
    assert_non_null(v);
    assert_true((uintptr_t)v % 64 == 0);
    assert_true(ht_all_equal(v, 1000 * sizeof *v, 0));
    hak_free(v);
    HT_EXPECT_FAIL(hak_aligned_calloc(48, 1, 10), EINVAL, "hak_aligned_calloc(48, 1, 10)");
    HT_EXPECT_FAIL(hak_aligned_calloc(0, 1, 10), EINVAL, "hak_aligned_calloc(0, 1, 10)");
    HT_EXPECT_FAIL(hak_heap_aligned_calloc(h, 64, SIZE_MAX / 2, 3), ENOMEM,
                   "hak_heap_aligned_calloc(h, 64, SIZE_MAX / 2, 3)");
    HT_EXPECT_FAIL(hak_aligned_calloc(64, (size_t)1 << 62, 4), ENOMEM,
                   "hak_aligned_calloc(64, (size_t)1 << 62, 4)");
    hak_heap_destroy(h);
}

/* ---- aligned realloc ---- */

/* Reallocates p (n bytes patterned with tag) to m bytes at alignment `align` and checks the result. */
static unsigned char *aligned_step(hak_heap_t *h, unsigned char *p, size_t *n, size_t m, size_t align,
                                   uint64_t tag) {
    unsigned char *q = h ? hak_heap_aligned_realloc(h, p, align, m) : hak_aligned_realloc(p, align, m);
    if (q == NULL)
        fail_msg("aligned realloc(%zu -> %zu, align %zu) failed", *n, m, align);
    if ((uintptr_t)q % align || (uintptr_t)q % 16)
        fail_msg("aligned realloc(%zu -> %zu, align %zu) = %p: not aligned", *n, m, align, (void *)q);
    if (hak_usable_size(q) < m)
        fail_msg("aligned realloc(.., %zu): usable %zu", m, hak_usable_size(q));
    size_t keep = *n < m ? *n : m;
    HT_ASSERT_PATTERN(q, 0, keep, tag, "aligned realloc(%zu -> %zu, align %zu)", *n, m, align);
    ht_fill_range(q, keep, m, tag);
    *n = m;
    return q;
}

static void test_aligned_realloc(void **state) {
    (void)state;
    hak_heap_t *h = hak_heap_create(&(hak_heap_options_t){0, "aligned-realloc"});
    assert_non_null(h);
    static const size_t path[] = {10,      100,     5000,   70000, 262144, 300000,
                                  5 << 20, 3 << 20, 200000, 40,    8000,   1};
    for (size_t a = 0; a < sizeof aligns / sizeof aligns[0]; a++) {
        size_t align = aligns[a], n = 0;
        uint64_t tag = 0x1234 + a;
        hak_heap_t *heap = (a & 1) ? h : NULL;
        unsigned char *p =
            heap ? hak_heap_aligned_realloc(heap, NULL, align, 50) : hak_aligned_realloc(NULL, align, 50);
        assert_non_null(p);
        assert_true((uintptr_t)p % align == 0);
        n = 50;
        ht_fill(p, n, tag);
        for (size_t k = 0; k < sizeof path / sizeof path[0]; k++) {
            p = aligned_step(heap, p, &n, path[k], align, tag);
            assert_ptr_equal(hak_heap_of(p), heap ? heap : hak_heap_default());
        }
        hak_free(p);
    }
    /* a block from hak_heap_alloc gets the alignment, and keeps its heap whatever heap is named */
    unsigned char *p = hak_heap_alloc(h, 1000);
    assert_non_null(p);
    size_t n = 1000;
    ht_fill(p, n, 77);
    p = aligned_step(NULL, p, &n, 1000, 4096, 77);
    assert_ptr_equal(hak_heap_of(p), h);
    /* a bad alignment fails and leaves the block alone */
    HT_EXPECT_FAIL(hak_aligned_realloc(p, 24, 10), EINVAL, "hak_aligned_realloc(p, 24, 10)");
    HT_ASSERT_PATTERN(p, 0, n, 77, "after a failed aligned realloc");
    HT_EXPECT_FAIL(hak_aligned_realloc(p, 64, (size_t)PTRDIFF_MAX + 1), ENOMEM,
                   "hak_aligned_realloc(p, 64, (size_t)PTRDIFF_MAX + 1)");
    hak_free(p);
    hak_heap_destroy(h);
}

/* ---- zeroing realloc ---- */

static void test_rezalloc(void **state) {
    (void)state;
    hak_heap_t *h = hak_heap_create(&(hak_heap_options_t){0, "rezalloc"});
    assert_non_null(h);
    static const size_t path[] = {1,       17,      100,     1000, 9000, 100000, 262144, 300000,
                                  3 << 20, 9 << 20, 4 << 20, 5000, 64,   200000, 7 << 20};
    for (int round = 0; round < 2; round++) {
        hak_heap_t *heap = round ? h : NULL;
        /* dirty memory of every size first, so that reused blocks are not zero by chance */
        for (size_t k = 0; k < sizeof path / sizeof path[0]; k++)
            dirty(heap ? heap : hak_heap_default(), path[k]);
        dirty(heap ? heap : hak_heap_default(), 40);
        unsigned char *p = heap ? hak_heap_rezalloc(heap, NULL, 40) : hak_rezalloc(NULL, 40);
        assert_non_null(p);
        assert_true(hak_usable_size(p) > 40);
        assert_true(ht_all_equal(p, hak_usable_size(p), 0)); /* a reused dirty block, all of it cleared */
        size_t n = 40;
        uint64_t tag = 99 + (uint64_t)round;
        ht_fill(p, n, tag);
        for (size_t k = 0; k < sizeof path / sizeof path[0]; k++) {
            size_t m = path[k], old_usable = hak_usable_size(p);
            unsigned char *q = heap ? hak_heap_rezalloc(heap, p, m) : hak_rezalloc(p, m);
            if (q == NULL)
                fail_msg("rezalloc(%zu -> %zu) failed", n, m);
            size_t usable = hak_usable_size(q), keep = n < m ? n : m;
            assert_true(usable >= m);
            HT_ASSERT_PATTERN(q, 0, keep, tag, "rezalloc(%zu -> %zu)", n, m);
            if (usable > old_usable && !ht_all_equal(q + old_usable, usable - old_usable, 0))
                fail_msg("rezalloc(%zu -> %zu): bytes %zu..%zu not zero", n, m, old_usable, usable);
            assert_ptr_equal(hak_heap_of(q), heap ? heap : hak_heap_default());
            /* the whole block is known: the pattern up to m, zero after it (so the next step can check) */
            ht_fill_range(q, keep, m, tag);
            memset(q + m, 0, usable - m);
            p = q;
            n = m;
        }
        hak_free(p);
    }
    HT_EXPECT_FAIL(hak_rezalloc(NULL, (size_t)PTRDIFF_MAX + 1), ENOMEM,
                   "hak_rezalloc(NULL, (size_t)PTRDIFF_MAX + 1)");
    hak_heap_destroy(h);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_strdup),         cmocka_unit_test(test_strndup),
        cmocka_unit_test(test_aligned_calloc), cmocka_unit_test(test_aligned_realloc),
        cmocka_unit_test(test_rezalloc),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
