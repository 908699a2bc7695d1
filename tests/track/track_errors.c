/* SPDX-License-Identifier: MIT */
/* Seeded memory errors for the tracking builds (HAKMEM_VALGRIND, HAKMEM_ASAN): `track_errors <case>` runs one
 * case. Each seeded case makes exactly one kind of mistake with hakmem's API, which Valgrind memcheck or ASan
 * must report; `clean` exercises every tier (tiny, pool and large blocks, calloc, realloc in place and
 * moving, aligned blocks, private heaps, destroy with live blocks, another thread's frees, hak_collect) and
 * must run without a single report. tests/track/CMakeLists.txt runs each case under the tool of the build and
 * checks the exit status and the report.
 *
 * Without tracking, hakmem's blocks live in its own mappings, which the tools take for one big valid region:
 * every seeded case then runs silently to the end (exit 0). */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hakmem/hakmem.h"

#define HT_STANDALONE    /* no cmocka: the tools run this program and judge it */
#include "hakmem_test.h" /* ht_fill, ht_check */

/* Accesses through a volatile pointer, so that the compiler keeps the seeded errors; what is read goes to a
 * volatile sink, so that Valgrind does not drop the load either (it removes loads whose value is unused). */
static volatile unsigned char sink;
static void poke(void *p, size_t at) { ((volatile unsigned char *)p)[at] = 0x5a; }
static void peek(const void *p, size_t at) { sink = ((const volatile unsigned char *)p)[at]; }

static int fail(const char *what) {
    fprintf(stderr, "track_errors: %s\n", what);
    return 2;
}

/* ---- seeded errors ---- */

static int overflow(void) {
    char *p = hak_alloc(24); /* a 32-byte block: the first byte past the request is slack */
    if (p == NULL)
        return fail("hak_alloc failed");
    memset(p, 1, 24);
    poke(p, 24);
    hak_free(p);
    return 0;
}

static int overflow_heap(void) {
    hak_heap_t *heap = hak_heap_create(NULL);
    char *p = heap ? hak_heap_alloc(heap, 40) : NULL;
    if (p == NULL)
        return fail("private heap allocation failed");
    memset(p, 1, 40);
    poke(p, 40);
    hak_free(p);
    hak_heap_destroy(heap);
    return 0;
}

static int overflow_large(void) {
    size_t n = (size_t)300 << 10; /* a large block: the rest of its page and of its mapping is no-access */
    char *p = hak_alloc(n + 100);
    if (p == NULL)
        return fail("hak_alloc failed");
    memset(p, 1, n + 100);
    poke(p, n + 100);
    hak_free(p);
    return 0;
}

static int uaf(void) {
    char *p = hak_alloc(24);
    if (p == NULL)
        return fail("hak_alloc failed");
    memset(p, 1, 24);
    hak_free(p);
    peek(p, 16); /* freed: reading it is the error */
    return 0;
}

static int uaf_large(void) {
    char *p = hak_alloc((size_t)1 << 20);
    if (p == NULL)
        return fail("hak_alloc failed");
    memset(p, 1, (size_t)1 << 20);
    hak_free(p);
    peek(p, 4096);
    return 0;
}

static int uaf_destroy(void) {
    hak_heap_t *heap = hak_heap_create(NULL);
    char *p = heap ? hak_heap_alloc(heap, 100) : NULL;
    if (p == NULL)
        return fail("private heap allocation failed");
    memset(p, 1, 100);
    hak_heap_destroy(heap); /* frees p with every other block of the heap */
    peek(p, 50);
    return 0;
}

/* The only pointer to the block dies with this frame (noinline: not kept in main's registers). */
static __attribute__((noinline)) void leak_one(void) {
    void *volatile p = hak_alloc(100);
    if (p != NULL)
        memset(p, 1, 100);
    p = NULL;
}

static int leak(void) {
    void *keep = hak_alloc(100); /* not the leaked one: freed below */
    leak_one();
    hak_free(keep);
    return 0;
}

/* ---- no error at all ---- */

/* n bytes of p hold the pattern of `tag` (hakmem_test.h): every one of them was written, and kept. */
static int holds(const void *p, size_t n, uint64_t tag) { return ht_check(p, n, tag) == (size_t)-1; }

static int all_zero(const unsigned char *p, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (p[i] != 0)
            return 0;
    return 1;
}

#define REMOTE_N 256
static void *remote_blocks[REMOTE_N];

static void *free_remote(void *arg) {
    (void)arg;
    for (int i = 0; i < REMOTE_N; i++)
        hak_free(remote_blocks[i]);
    return NULL;
}

static int clean(void) {
    /* Every size class and some large sizes, each byte written and read back. */
    static const size_t sizes[] = {0,      1,      8,      15,     16,      17,      24,
                                   100,    1000,   4096,   8000,   8193,    20000,   65536,
                                   100000, 262144, 262145, 300000, 1 << 20, 3 << 20, 5000000};
    enum { N = sizeof sizes / sizeof sizes[0] };
    unsigned char *p[N];
    for (int i = 0; i < N; i++) {
        p[i] = hak_alloc(sizes[i]);
        if (p[i] == NULL)
            return fail("hak_alloc failed");
        ht_fill(p[i], sizes[i], (uint64_t)i);
    }
    for (int i = 0; i < N; i++) {
        if (!holds(p[i], sizes[i], (uint64_t)i))
            return fail("block contents changed");
        size_t u = hak_usable_size(p[i]); /* the block may be used up to there from now on */
        if (u < sizes[i])
            return fail("usable size below the request");
        ht_fill(p[i], u, (uint64_t)i);
        hak_free(p[i]);
    }

    /* Many blocks of one class: several spans, the thread cache, lists of freed blocks. */
    enum { M = 3000 };
    static void *many[M];
    for (int r = 0; r < 3; r++) {
        for (int i = 0; i < M; i++) {
            many[i] = hak_alloc(16 + (size_t)(i % 7) * 24);
            if (many[i] == NULL)
                return fail("hak_alloc failed");
            memset(many[i], r, 16 + (size_t)(i % 7) * 24);
        }
        for (int i = r % 2; i < M; i += 2)
            hak_free(many[i]);
        for (int i = 1 - r % 2; i < M; i += 2)
            hak_free(many[i]);
    }

    /* calloc: every byte defined and zero. */
    unsigned char *z = hak_calloc(100, 7), *zl = hak_calloc(1, (size_t)600 << 10);
    if (z == NULL || zl == NULL || !all_zero(z, 700) || !all_zero(zl, (size_t)600 << 10))
        return fail("calloc");
    hak_free(z);
    hak_free(zl);
    zl = hak_alloc((size_t)600 << 10); /* reuses the cached mapping: calloc must clear it */
    if (zl == NULL)
        return fail("hak_alloc failed");
    memset(zl, 0xee, (size_t)600 << 10);
    hak_free(zl);
    zl = hak_calloc(1, (size_t)600 << 10);
    if (zl == NULL || !all_zero(zl, (size_t)600 << 10))
        return fail("calloc of a reused mapping");
    hak_free(zl);

    /* realloc: in place (shrink, grow within the block), to another class, tiny to large and back, large
     * growth in place and by moving; the contents that are kept stay defined. */
    unsigned char *r = hak_alloc(20);
    if (r == NULL)
        return fail("hak_alloc failed");
    ht_fill(r, 20, 0x11);
    static const size_t steps[] = {30, 10, 32, 200, 5000, 100000, 400000, 3000000, 9000000, 700000, 50, 7};
    size_t have = 20;
    for (size_t k = 0; k < sizeof steps / sizeof steps[0]; k++) {
        unsigned char *q = hak_realloc(r, steps[k]);
        if (q == NULL)
            return fail("hak_realloc failed");
        size_t kept = have < steps[k] ? have : steps[k];
        if (!holds(q, kept, 0x11))
            return fail("realloc lost the contents");
        ht_fill(q, steps[k], 0x11);
        r = q;
        have = steps[k];
    }
    hak_free(r);
    r = hak_realloc(NULL, 64);
    if (r == NULL)
        return fail("hak_realloc(NULL) failed");
    memset(r, 3, 64);
    r = hak_realloc(r, 0); /* a zero-byte block (kept in place), freed below */
    hak_free(r);

    /* Aligned blocks: natural classes, over-allocated ones (aligned pointers inside their blocks), large. */
    static const size_t aligns[] = {
        8, 16, 64, 256, 4096, 8192, 16384, 65536, (size_t)1 << 20, (size_t)4 << 20};
    for (size_t k = 0; k < sizeof aligns / sizeof aligns[0]; k++) {
        size_t n = 100 + k * 1000;
        unsigned char *a = hak_aligned_alloc(aligns[k], n);
        if (a == NULL || ((uintptr_t)a & (aligns[k] - 1)) != 0)
            return fail("hak_aligned_alloc");
        ht_fill(a, n, k);
        if (!holds(a, n, k) || hak_usable_size(a) < n)
            return fail("aligned block");
        hak_free(a);
    }

    /* Private heaps: blocks freed one by one, then a destroy with live blocks of every tier. */
    hak_heap_t *heap = hak_heap_create(NULL);
    if (heap == NULL)
        return fail("hak_heap_create failed");
    for (int i = 0; i < N; i++) {
        p[i] = hak_heap_alloc(heap, sizes[i]);
        if (p[i] == NULL)
            return fail("hak_heap_alloc failed");
        memset(p[i], 9, sizes[i]);
    }
    for (int i = 0; i < N; i += 2)
        hak_free(p[i]);
    unsigned char *hc = hak_heap_calloc(heap, 10, 10), *ha = hak_heap_aligned_alloc(heap, 4096, 3000);
    unsigned char *hr = hak_heap_realloc(heap, NULL, 10);
    if (hc == NULL || ha == NULL || hr == NULL || !all_zero(hc, 100))
        return fail("private heap calloc, aligned or realloc");
    memset(ha, 1, 3000);
    hr = hak_heap_realloc(heap, hr, 500000);
    if (hr == NULL)
        return fail("hak_heap_realloc failed");
    memset(hr, 2, 500000);
    hak_heap_destroy(heap); /* frees the odd-numbered blocks, hc, ha and hr */

    /* A second heap, created and destroyed again, reuses the first one's memory. */
    heap = hak_heap_create(NULL);
    if (heap == NULL)
        return fail("hak_heap_create failed");
    for (int i = 0; i < N; i++) {
        p[i] = hak_heap_alloc(heap, sizes[i]);
        if (p[i] == NULL)
            return fail("hak_heap_alloc failed");
        memset(p[i], 4, sizes[i]);
    }
    hak_heap_destroy(heap);

    /* Another thread frees blocks of this thread (remote frees), then this thread allocates again. */
    for (int i = 0; i < REMOTE_N; i++) {
        remote_blocks[i] = hak_alloc(48);
        if (remote_blocks[i] == NULL)
            return fail("hak_alloc failed");
        memset(remote_blocks[i], 6, 48);
    }
    pthread_t t;
    if (pthread_create(&t, NULL, free_remote, NULL) != 0 || pthread_join(t, NULL) != 0)
        return fail("pthread");
    for (int i = 0; i < REMOTE_N; i++) {
        remote_blocks[i] = hak_alloc(48);
        if (remote_blocks[i] == NULL)
            return fail("hak_alloc failed");
        memset(remote_blocks[i], 7, 48);
    }
    for (int i = 0; i < REMOTE_N; i++)
        hak_free(remote_blocks[i]);

    hak_collect(1);
    return 0;
}

int main(int argc, char **argv) {
    static const struct {
        const char *name;
        int (*run)(void);
    } cases[] = {
        {"overflow", overflow},
        {"overflow_heap", overflow_heap},
        {"overflow_large", overflow_large},
        {"uaf", uaf},
        {"uaf_large", uaf_large},
        {"uaf_destroy", uaf_destroy},
        {"leak", leak},
        {"clean", clean},
    };
    if (argc == 2)
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
            if (strcmp(argv[1], cases[i].name) == 0)
                return cases[i].run();
    fprintf(stderr, "usage: %s overflow|overflow_heap|overflow_large|uaf|uaf_large|uaf_destroy|leak|clean\n",
            argv[0]);
    return 2;
}
