/* SPDX-License-Identifier: MIT */
/* Isolation of private heaps, single thread: interleaved allocations of two heaps in every tier never share
 * a 64 KiB slab or a 2 MiB chunk, hak_heap_of names the right heap, and each heap's statistics (live blocks
 * and bytes, large blocks, per-class counts) match what it holds, also after frees; a heap never gets slabs
 * in which another heap still has blocks, and slabs are not shared after reuse either. */
#include "hakmem_test.h"

#include <sys/mman.h>

typedef struct {
    void *p;
    int heap; /* 0 = A, 1 = B */
    size_t size;
} rec_t;

typedef struct {
    uintptr_t key;
    int heap;
} own_t;

static int cmp_own(const void *a, const void *b) {
    const own_t *x = a, *y = b;
    return x->key < y->key ? -1 : x->key > y->key;
}

/* Expected per-heap totals, computed from the blocks themselves. */
typedef struct {
    uint64_t blocks, bytes, large_blocks, large_bytes;
    uint64_t per_size_blocks[64];
    uint64_t per_size[64]; /* block sizes seen (slab tiers) */
    unsigned nsizes;
} expect_t;

static void expect_add(expect_t *e, const void *p, size_t size) {
    size_t u = hak_usable_size(p);
    e->blocks++;
    e->bytes += u;
    if (size > HT_SLAB_MAX) {
        e->large_blocks++;
        e->large_bytes += u;
        return;
    }
    for (unsigned i = 0; i < e->nsizes; i++)
        if (e->per_size[i] == u) {
            e->per_size_blocks[i]++;
            return;
        }
    assert_true(e->nsizes < 64);
    e->per_size[e->nsizes] = u;
    e->per_size_blocks[e->nsizes++] = 1;
}

static void check_heap_stats(hak_heap_t *h, const char *name, const expect_t *e) {
    hak_stats_t st;
    ht_get_stats(h, &st);
    assert_string_equal(st.name, name);
    assert_int_equal(st.live_blocks, e->blocks);
    assert_int_equal(st.live_bytes, e->bytes);
    assert_int_equal(st.large_blocks, e->large_blocks);
    assert_int_equal(st.large_bytes, e->large_bytes);
    assert_int_equal(st.limit_bytes, 0);
    assert_true(st.peak_live_bytes >= st.live_bytes);
    assert_true(st.reserved_bytes >= st.committed_bytes);
    assert_true(st.committed_bytes >= st.live_bytes);
    uint64_t class_total = 0;
    for (uint32_t c = 0; c < st.class_count; c++)
        class_total += st.classes[c].live_blocks;
    assert_int_equal(class_total, e->blocks - e->large_blocks);
    for (unsigned i = 0; i < e->nsizes; i++) {
        int c = ht_class_index(&st, e->per_size[i]);
        assert_true(c >= 0);
        assert_int_equal(st.classes[c].live_blocks, e->per_size_blocks[i]);
        assert_true(st.classes[c].slabs >= 1);
    }
}

/* 1. Interleaved allocations from A and B in every tier. */
static void test_isolation_all_tiers(void **state) {
    (void)state;
    hak_heap_options_t oa = {.limit_bytes = 0, .name = "heap-A"}, ob = {.limit_bytes = 0, .name = "heap-B"};
    hak_heap_t *A = hak_heap_create(&oa), *B = hak_heap_create(&ob);
    assert_non_null(A);
    assert_non_null(B);
    assert_ptr_not_equal(A, B);
    assert_ptr_not_equal(A, hak_heap_default());

    enum { PER = 40 }; /* blocks per heap per size (large sizes: 3) */
    size_t cap = HT_TIER_SIZES * PER * 2;
    rec_t *r = calloc(cap, sizeof *r);
    assert_non_null(r);
    size_t n = 0;
    for (size_t s = 0; s < HT_TIER_SIZES; s++) {
        size_t size = ht_tier_sizes[s];
        int per = size > HT_SLAB_MAX ? 3 : PER;
        for (int k = 0; k < per; k++)
            for (int h = 0; h < 2; h++) {
                void *p = hak_heap_alloc(h ? B : A, size);
                assert_non_null(p);
                assert_int_equal((uintptr_t)p % 16, 0);
                assert_true(hak_usable_size(p) >= size);
                r[n].p = p;
                r[n].heap = h;
                r[n].size = size;
                memset(p, 0xA0 + h, size < 4096 ? size : 4096);
                ((unsigned char *)p)[size - 1] = (unsigned char)(0xA0 + h);
                n++;
            }
    }

    /* ownership and contents */
    own_t *slabs = calloc(2 * n, sizeof *slabs), *chunks = calloc(2 * n, sizeof *chunks);
    assert_non_null(slabs);
    assert_non_null(chunks);
    size_t ns = 0, nc = 0;
    expect_t ea, eb;
    memset(&ea, 0, sizeof ea);
    memset(&eb, 0, sizeof eb);
    for (size_t i = 0; i < n; i++) {
        hak_heap_t *want = r[i].heap ? B : A;
        assert_ptr_equal(hak_heap_of(r[i].p), want);
        const unsigned char *b = r[i].p;
        unsigned char tag = (unsigned char)(0xA0 + r[i].heap);
        assert_true(ht_all_equal(b, r[i].size < 4096 ? r[i].size : 4096, tag));
        assert_int_equal(b[r[i].size - 1], tag);
        expect_add(r[i].heap ? &eb : &ea, r[i].p, r[i].size);
        uintptr_t first = (uintptr_t)r[i].p, last = first + hak_usable_size(r[i].p) - 1;
        if (r[i].size <= HT_SLAB_MAX) {
            for (uintptr_t k = first & ~(HT_SLAB - 1); k <= (last & ~(HT_SLAB - 1)); k += HT_SLAB) {
                slabs[ns].key = k;
                slabs[ns++].heap = r[i].heap;
                if (ns == 2 * n)
                    break;
            }
        }
        chunks[nc].key = first & ~(HT_CHUNK - 1);
        chunks[nc++].heap = r[i].heap;
    }
    qsort(slabs, ns, sizeof *slabs, cmp_own);
    for (size_t i = 1; i < ns; i++)
        if (slabs[i].key == slabs[i - 1].key && slabs[i].heap != slabs[i - 1].heap)
            fail_msg("64 KiB slab %#lx holds blocks of heap A and heap B", (unsigned long)slabs[i].key);
    /* SuperSlabs (2 MiB) and large mappings belong to one heap too */
    qsort(chunks, nc, sizeof *chunks, cmp_own);
    for (size_t i = 1; i < nc; i++)
        if (chunks[i].key == chunks[i - 1].key && chunks[i].heap != chunks[i - 1].heap)
            fail_msg("2 MiB chunk %#lx holds blocks of heap A and heap B", (unsigned long)chunks[i].key);

    check_heap_stats(A, "heap-A", &ea);
    check_heap_stats(B, "heap-B", &eb);

    /* free every other block of A (and all large blocks of B): the statistics follow */
    memset(&ea, 0, sizeof ea);
    memset(&eb, 0, sizeof eb);
    for (size_t i = 0; i < n; i++) {
        int drop = r[i].heap == 0 ? (i / 2) % 2 == 0 : r[i].size > HT_SLAB_MAX;
        if (drop) {
            hak_free(r[i].p);
            r[i].p = NULL;
        } else {
            expect_add(r[i].heap ? &eb : &ea, r[i].p, r[i].size);
        }
    }
    check_heap_stats(A, "heap-A", &ea);
    check_heap_stats(B, "heap-B", &eb);
    for (size_t i = 0; i < n; i++)
        if (r[i].p)
            assert_ptr_equal(hak_heap_of(r[i].p), r[i].heap ? B : A);

    for (size_t i = 0; i < n; i++)
        hak_free(r[i].p);
    memset(&ea, 0, sizeof ea);
    check_heap_stats(A, "heap-A", &ea);
    check_heap_stats(B, "heap-B", &ea);
    free(slabs);
    free(chunks);
    free(r);
    hak_heap_destroy(A);
    hak_heap_destroy(B);
}

/* 1b. A heap's blocks never land in slabs freed by another heap: B reuses memory A gave back only after A
 * released the whole slab, and never while A still has blocks there. */
static void test_isolation_after_frees(void **state) {
    (void)state;
    hak_heap_t *A = hak_heap_create(&(hak_heap_options_t){0, "iso-A"});
    hak_heap_t *B = hak_heap_create(&(hak_heap_options_t){0, "iso-B"});
    assert_non_null(A);
    assert_non_null(B);
    enum { N = 20000 };
    void **a = calloc(N, sizeof *a), **b = calloc(N, sizeof *b);
    assert_non_null(a);
    assert_non_null(b);
    for (int i = 0; i < N; i++) {
        a[i] = hak_heap_alloc(A, 48);
        assert_non_null(a[i]);
    }
    /* free all but one block per 64 KiB slab of A: B must not get any of those slabs */
    for (int i = 0; i < N; i++)
        if (i % 1000 != 0) {
            hak_free(a[i]);
            a[i] = NULL;
        }
    for (int i = 0; i < N; i++) {
        b[i] = hak_heap_alloc(B, 48);
        assert_non_null(b[i]);
        assert_ptr_equal(hak_heap_of(b[i]), B);
    }
    for (int i = 0; i < N; i += 1000) {
        uintptr_t slab = (uintptr_t)a[i] & ~(HT_SLAB - 1);
        for (int j = 0; j < N; j++)
            if (((uintptr_t)b[j] & ~(HT_SLAB - 1)) == slab)
                fail_msg("B block %p in the slab of live A block %p", b[j], a[i]);
    }
    /* A allocates again: its new blocks avoid B's slabs */
    for (int i = 0; i < N; i++)
        if (a[i] == NULL) {
            a[i] = hak_heap_alloc(A, 48);
            assert_non_null(a[i]);
            assert_ptr_equal(hak_heap_of(a[i]), A);
        }
    own_t *o = calloc(2 * N, sizeof *o);
    assert_non_null(o);
    for (int i = 0; i < N; i++) {
        o[2 * i] = (own_t){(uintptr_t)a[i] & ~(HT_SLAB - 1), 0};
        o[2 * i + 1] = (own_t){(uintptr_t)b[i] & ~(HT_SLAB - 1), 1};
    }
    qsort(o, 2 * N, sizeof *o, cmp_own);
    for (int i = 1; i < 2 * N; i++)
        if (o[i].key == o[i - 1].key && o[i].heap != o[i - 1].heap)
            fail_msg("slab %#lx shared by A and B after reuse", (unsigned long)o[i].key);
    hak_stats_t st;
    ht_get_stats(A, &st);
    assert_int_equal(st.live_blocks, N);
    ht_get_stats(B, &st);
    assert_int_equal(st.live_blocks, N);
    free(o);
    for (int i = 0; i < N; i++) {
        hak_free(a[i]);
        hak_free(b[i]);
    }
    free(a);
    free(b);
    hak_heap_destroy(A);
    hak_heap_destroy(B);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_isolation_all_tiers),
        cmocka_unit_test(test_isolation_after_frees),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
