/* The public API contract (DESIGN.md section 2) on the default heap. */
#include "hakmem_test.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <hakmem/hakmem.h>

extern char **environ;

#define BIG_PTRDIFF ((size_t)PTRDIFF_MAX + 1)

/* ------------------------------------------------------------------------------------------------------------
 */
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

static void test_overflow_enomem(void **state) {
    (void)state;
    static const size_t bad[] = {BIG_PTRDIFF, BIG_PTRDIFF + 4096, SIZE_MAX, SIZE_MAX - 15, SIZE_MAX - 4096};
    void *keep = hak_alloc(100);
    assert_non_null(keep);
    ht_fill(keep, 100, 42);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        errno = 0;
        assert_null(hak_alloc(bad[i]));
        assert_int_equal(errno, ENOMEM);
        errno = 0;
        assert_null(hak_aligned_alloc(64, bad[i]));
        assert_int_equal(errno, ENOMEM);
        errno = 0;
        assert_null(hak_calloc(1, bad[i]));
        assert_int_equal(errno, ENOMEM);
        errno = 0;
        assert_null(hak_calloc(bad[i], 1));
        assert_int_equal(errno, ENOMEM);
    }
    /* count * size overflows size_t */
    static const size_t pairs[][2] = {
        {SIZE_MAX / 2 + 1, 2}, {2, SIZE_MAX / 2 + 1},     {(size_t)1 << 33, (size_t)1 << 33},
        {SIZE_MAX, SIZE_MAX},  {65537, SIZE_MAX / 65536}, {(size_t)1 << 32, (size_t)1 << 32},
    };
    for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++) {
        errno = 0;
        assert_null(hak_calloc(pairs[i][0], pairs[i][1]));
        assert_int_equal(errno, ENOMEM);
    }
    /* product does not overflow but exceeds PTRDIFF_MAX */
    errno = 0;
    assert_null(hak_calloc((size_t)1 << 62, 2));
    assert_int_equal(errno, ENOMEM);
    /* failed realloc leaves the block untouched */
    errno = 0;
    assert_null(hak_realloc(keep, BIG_PTRDIFF));
    assert_int_equal(errno, ENOMEM);
    errno = 0;
    assert_null(hak_realloc(keep, SIZE_MAX));
    assert_int_equal(errno, ENOMEM);
    assert_int_equal(ht_check(keep, 100, 42), (size_t)-1);
    assert_true(hak_usable_size(keep) >= 100);
    hak_free(keep);
    /* allocation still works */
    void *q = hak_alloc(100);
    assert_non_null(q);
    hak_free(q);
}

static void test_aligned_bad_alignment(void **state) {
    (void)state;
    static const size_t bad[] = {0, 3, 5, 6, 7, 12, 24, 48, 96, 100, 4095, 4097, 3 << 20, SIZE_MAX};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        errno = 0;
        void *p = hak_aligned_alloc(bad[i], 64);
        if (p != NULL)
            fail_msg("hak_aligned_alloc(%zu, 64) returned %p, expected NULL", bad[i], p);
        if (errno != EINVAL)
            fail_msg("hak_aligned_alloc(%zu, 64): errno %d, expected EINVAL", bad[i], errno);
    }
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

/* Continues the fill pattern of p (tag) over bytes [from, to) (nothing if to <= from). */
static void extend_pattern(unsigned char *p, size_t from, size_t to, uint64_t tag) {
    if (to <= from)
        return;
    unsigned char *tmp = malloc(to);
    assert_non_null(tmp);
    ht_fill(tmp, to, tag);
    memcpy(p + from, tmp + from, to - from);
    free(tmp);
}

/* realloc growth 1 B -> 4 MiB and back, through tiny, pool and large, keeps content. */
static void test_realloc_walk(void **state) {
    (void)state;
    const uint64_t tag = 777;
    size_t cur = 1;
    unsigned char *p = hak_alloc(cur);
    assert_non_null(p);
    ht_fill(p, cur, tag);
    size_t steps[200];
    size_t ns = 0;
    for (size_t n = 1; n <= 4 * HT_MIB && ns < 200; n = n * 5 / 4 + 7)
        steps[ns++] = n;
    for (size_t i = 0; i < ns; i++) {
        size_t n = steps[i];
        unsigned char *q = hak_realloc(p, n);
        if (!q)
            fail_msg("hak_realloc(%p, %zu) = NULL", (void *)p, n);
        if (hak_usable_size(q) < n)
            fail_msg("usable %zu < %zu after realloc", hak_usable_size(q), n);
        size_t keep = cur < n ? cur : n;
        size_t bad = ht_check(q, keep, tag);
        if (bad != (size_t)-1)
            fail_msg("grow %zu -> %zu: byte %zu lost", cur, n, bad);
        assert_ptr_equal(hak_heap_of(q), hak_heap_default());
        extend_pattern(q, keep, n, tag);
        p = q;
        cur = n;
    }
    for (size_t i = ns; i-- > 0;) {
        size_t n = steps[i] / 2 + 1;
        unsigned char *q = hak_realloc(p, n);
        if (!q)
            fail_msg("hak_realloc(%p, %zu) = NULL", (void *)p, n);
        if (hak_usable_size(q) < n)
            fail_msg("usable %zu < %zu after realloc", hak_usable_size(q), n);
        size_t bad = ht_check(q, n < cur ? n : cur, tag);
        if (bad != (size_t)-1)
            fail_msg("shrink %zu -> %zu: byte %zu lost", cur, n, bad);
        extend_pattern(q, cur, n, tag);
        p = q;
        cur = n;
    }
    hak_free(p);
}

/* Big jumps between tiers in both directions. */
static void test_realloc_jumps(void **state) {
    (void)state;
    static const size_t seq[] = {24, 6000, 40, 200000, 100, 5 << 20, 16, 3 << 20, 9 << 20, 70000, 8};
    size_t cur = 10;
    unsigned char *p = hak_alloc(cur);
    assert_non_null(p);
    ht_fill(p, cur, 5);
    for (size_t i = 0; i < sizeof seq / sizeof seq[0]; i++) {
        size_t n = seq[i];
        unsigned char *q = hak_realloc(p, n);
        assert_non_null(q);
        assert_true(hak_usable_size(q) >= n);
        size_t keep = cur < n ? cur : n;
        size_t bad = ht_check(q, keep, 5);
        if (bad != (size_t)-1)
            fail_msg("realloc %zu -> %zu: byte %zu lost", cur, n, bad);
        ht_fill(q, n, 5);
        p = q;
        cur = n;
    }
    hak_free(p);
}

static void test_realloc_zero(void **state) {
    (void)state;
    static const size_t sizes[] = {1, 100, 5000, 100000, 2 << 20};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        void *p = hak_alloc(sizes[i]);
        assert_non_null(p);
        void *q = hak_realloc(p, 0);
        assert_non_null(q);
        assert_ptr_equal(hak_heap_of(q), hak_heap_default());
        hak_free(q);
    }
}

/* A new size within the usable size (and not far below it) returns p itself. */
static void test_realloc_in_place(void **state) {
    (void)state;
    static const size_t sizes[] = {1,     24,     100,    500,     1000,          3000,    8000,
                                   20000, 100000, 200000, 1 << 20, (5 << 20) + 3, 12 << 20};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        size_t n = sizes[i];
        void *p = hak_alloc(n);
        assert_non_null(p);
        size_t u = hak_usable_size(p);
        ht_fill(p, n, n);
        void *q = hak_realloc(p, u);
        if (q != p)
            fail_msg("hak_realloc(p, usable=%zu) of a %zu B block moved it", u, n);
        q = hak_realloc(p, n);
        if (q != p)
            fail_msg("hak_realloc(p, %zu) of a %zu B block (usable %zu) moved it", n, n, u);
        if (u > 1) {
            q = hak_realloc(p, u - 1);
            if (q != p)
                fail_msg("hak_realloc(p, %zu) of a %zu B block (usable %zu) moved it", u - 1, n, u);
        }
        assert_int_equal(ht_check(p, n, n), (size_t)-1);
        hak_free(p);
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

/* Aligned allocation for alignments 1..2 MiB and sizes through every tier. */
static void test_aligned_alloc(void **state) {
    (void)state;
    static const size_t sizes[] = {0, 1, 16, 33, 100, 1000, 4096, 10000, 70000, 300000, 2 << 20, 3 << 20};
    enum { NS = sizeof sizes / sizeof sizes[0] };
    void *p[NS];
    for (size_t align = 1; align <= ((size_t)1 << 21); align *= 2) {
        for (size_t i = 0; i < NS; i++) {
            size_t n = sizes[i];
            p[i] = hak_aligned_alloc(align, n);
            if (!p[i])
                fail_msg("hak_aligned_alloc(%zu, %zu) = NULL", align, n);
            size_t need = align < 16 ? 16 : align;
            if ((uintptr_t)p[i] % need)
                fail_msg("hak_aligned_alloc(%zu, %zu) = %p misaligned", align, n, p[i]);
            if (hak_usable_size(p[i]) < n)
                fail_msg("hak_aligned_alloc(%zu, %zu): usable %zu", align, n, hak_usable_size(p[i]));
            assert_ptr_equal(hak_heap_of(p[i]), hak_heap_default());
            ht_fill(p[i], n, align * 100 + i);
        }
        for (size_t i = 0; i < NS; i++) {
            size_t bad = ht_check(p[i], sizes[i], align * 100 + i);
            if (bad != (size_t)-1)
                fail_msg("aligned block (align %zu, size %zu) overwritten at %zu", align, sizes[i], bad);
        }
        /* an aligned block is a valid block: realloc keeps content, free works */
        size_t n = sizes[4];
        void *q = hak_realloc(p[4], 5000);
        assert_non_null(q);
        assert_int_equal(ht_check(q, n, align * 100 + 4), (size_t)-1);
        p[4] = q;
        for (size_t i = 0; i < NS; i++)
            hak_free(p[i]);
    }
}

/* Many small aligned blocks live at once: distinct, aligned, intact. */
static void test_aligned_many(void **state) {
    (void)state;
    enum { N = 2000 };
    static void *p[N];
    for (int i = 0; i < N; i++) {
        size_t align = (size_t)16 << (i % 9); /* 16 .. 4096 */
        size_t n = 8 + (size_t)(i * 37 % 700);
        p[i] = hak_aligned_alloc(align, n);
        assert_non_null(p[i]);
        assert_int_equal((uintptr_t)p[i] % align, 0);
        ht_fill(p[i], n, (uint64_t)i);
    }
    for (int i = 0; i < N; i++) {
        size_t n = 8 + (size_t)(i * 37 % 700);
        if (ht_check(p[i], n, (uint64_t)i) != (size_t)-1)
            fail_msg("aligned block %d overwritten", i);
        hak_free(p[i]);
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

/* ---- foreign-pointer frees, in a re-executed child ----------------------------------------------------- */
/* Child mode: argv = {exe, "--child", kind}. Prints "PTR <p>\n" on stdout, then hak_free(foreign). With
 * HAKMEM_ON_ERROR=warn it must return; it then checks the heap still works and exits 0. */
static int child_main(const char *kind) {
    char stackbuf[64];
    void *foreign = NULL;
    unsigned char *owner = NULL;
    void *glibc = NULL;
    /* Touch hakmem first so the heap is initialised in every case. */
    void *warm = hak_alloc(32);
    if (!warm)
        return 10;
    if (strcmp(kind, "glibc") == 0) {
        glibc = malloc(64);
        foreign = glibc;
    } else if (strcmp(kind, "stack") == 0) {
        memset(stackbuf, 1, sizeof stackbuf);
        foreign = stackbuf + 16;
    } else if (strcmp(kind, "interior") == 0) {
        owner = hak_alloc(64);
        if (!owner)
            return 11;
        memset(owner, 0x3C, 64);
        foreign = owner + 16;
    } else if (strcmp(kind, "double") == 0) {
        foreign = hak_alloc(64); /* freed once: it sits on top of the thread cache */
        if (!foreign)
            return 13;
        hak_free(foreign);
    } else if (strcmp(kind, "double_local") == 0) {
        /* the thread cache of the class is full, so the first free goes to the span's local list */
        enum { M = 200 };
        static void *others[M];
        foreign = hak_alloc(64);
        if (!foreign)
            return 13;
        for (int i = 0; i < M; i++)
            if (!(others[i] = hak_alloc(64)))
                return 14;
        for (int i = 0; i < M; i++)
            hak_free(others[i]);
        hak_free(foreign);
    } else {
        return 12;
    }
    printf("PTR %p\n", foreign);
    fflush(stdout);
    hak_free(foreign);
    /* Only with HAKMEM_ON_ERROR=warn do we get here. The heap must be intact and usable. */
    if (owner) {
        for (int i = 0; i < 64; i++)
            if (owner[i] != 0x3C)
                return 20;
        if (hak_usable_size(owner) < 64)
            return 21;
    }
    enum { N = 4000 };
    static unsigned char *blocks[N];
    for (int i = 0; i < N; i++) {
        size_t n = 16 + (size_t)(i % 200);
        blocks[i] = hak_alloc(n);
        if (!blocks[i])
            return 22;
        /* the live owner block must not be handed out again */
        if (owner && blocks[i] < owner + 64 && blocks[i] + n > owner)
            return 23;
        memset(blocks[i], i & 0xff, n);
    }
    for (int i = 0; i < N; i++) {
        size_t n = 16 + (size_t)(i % 200);
        for (size_t k = 0; k < n; k++)
            if (blocks[i][k] != (unsigned char)(i & 0xff))
                return 24;
        hak_free(blocks[i]);
    }
    if (owner) {
        for (int i = 0; i < 64; i++)
            if (owner[i] != 0x3C)
                return 25;
        hak_free(owner);
    }
    hak_free(warm);
    free(glibc);
    return 0;
}

typedef struct {
    int status;
    char out[4096];
    char err[16384];
} child_result_t;

static void append(char *buf, size_t cap, size_t *len, const char *src, size_t n) {
    if (*len + n >= cap)
        n = cap - 1 - *len;
    memcpy(buf + *len, src, n);
    *len += n;
    buf[*len] = 0;
}

/* Runs this executable as a child in the given mode, with HAKMEM_ON_ERROR set to on_error (NULL: unset). */
static void run_child(const char *kind, const char *on_error, child_result_t *r) {
    memset(r, 0, sizeof *r);
    int po[2], pe[2];
    assert_int_equal(pipe(po), 0);
    assert_int_equal(pipe(pe), 0);
    /* environment: ours minus HAKMEM_ON_ERROR, plus the requested value */
    size_t n = 0;
    while (environ[n])
        n++;
    char **envp = calloc(n + 2, sizeof *envp);
    assert_non_null(envp);
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (strncmp(environ[i], "HAKMEM_ON_ERROR=", 16) != 0)
            envp[k++] = environ[i];
    char envbuf[64];
    if (on_error) {
        snprintf(envbuf, sizeof envbuf, "HAKMEM_ON_ERROR=%s", on_error);
        envp[k++] = envbuf;
    }
    envp[k] = NULL;
    char *argv[] = {"/proc/self/exe", "--child", (char *)kind, NULL};
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        dup2(po[1], 1);
        dup2(pe[1], 2);
        close(po[0]);
        close(pe[0]);
        close(po[1]);
        close(pe[1]);
        execve("/proc/self/exe", argv, envp);
        _exit(127);
    }
    free(envp);
    close(po[1]);
    close(pe[1]);
    size_t lo = 0, le = 0;
    struct pollfd fds[2] = {{po[0], POLLIN, 0}, {pe[0], POLLIN, 0}};
    int open_fds = 2;
    while (open_fds > 0) {
        int rc = poll(fds, 2, 30000);
        if (rc < 0 && errno == EINTR)
            continue;
        if (rc <= 0) {
            kill(pid, SIGKILL);
            break;
        }
        for (int i = 0; i < 2; i++) {
            if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR)))
                continue;
            char buf[1024];
            ssize_t got = read(fds[i].fd, buf, sizeof buf);
            if (got <= 0) {
                close(fds[i].fd);
                fds[i].fd = -1;
                open_fds--;
            } else if (i == 0) {
                append(r->out, sizeof r->out, &lo, buf, (size_t)got);
            } else {
                append(r->err, sizeof r->err, &le, buf, (size_t)got);
            }
        }
    }
    for (int i = 0; i < 2; i++)
        if (fds[i].fd >= 0)
            close(fds[i].fd);
    while (waitpid(pid, &r->status, 0) < 0 && errno == EINTR) {
    }
}

/* Does text contain a hexadecimal number "0x..." equal to value? (any case, any zero padding) */
static int mentions_pointer(const char *text, uintptr_t value) {
    for (const char *s = text; s[0] && s[1]; s++) {
        if (s[0] != '0' || (s[1] != 'x' && s[1] != 'X'))
            continue;
        char *end;
        errno = 0;
        unsigned long long v = strtoull(s + 2, &end, 16);
        if (end != s + 2 && errno == 0 && (uintptr_t)v == value)
            return 1;
    }
    return 0;
}

static uintptr_t child_pointer(const child_result_t *r) {
    const char *s = strstr(r->out, "PTR ");
    if (!s)
        fail_msg("child printed no pointer; stdout: '%s' stderr: '%s'", r->out, r->err);
    return (uintptr_t)strtoull(s + 4, NULL, 16);
}

static void check_abort(const char *kind, const char *on_error) {
    child_result_t r;
    run_child(kind, on_error, &r);
    uintptr_t ptr = child_pointer(&r);
    if (!WIFSIGNALED(r.status) || WTERMSIG(r.status) != SIGABRT)
        fail_msg(
            "hak_free(%s pointer %#lx) with HAKMEM_ON_ERROR=%s: child %s %d, expected SIGABRT; stderr: '%s'",
            kind, (unsigned long)ptr, on_error ? on_error : "(unset)",
            WIFSIGNALED(r.status) ? "killed by signal" : "exited with",
            WIFSIGNALED(r.status) ? WTERMSIG(r.status) : WEXITSTATUS(r.status), r.err);
    if (!mentions_pointer(r.err, ptr))
        fail_msg("hak_free(%s pointer %#lx): report does not show the pointer; stderr: '%s'", kind,
                 (unsigned long)ptr, r.err);
}

static void check_warn(const char *kind) {
    child_result_t r;
    run_child(kind, "warn", &r);
    uintptr_t ptr = child_pointer(&r);
    if (!WIFEXITED(r.status) || WEXITSTATUS(r.status) != 0)
        fail_msg(
            "hak_free(%s pointer %#lx) with HAKMEM_ON_ERROR=warn: child %s %d, expected exit 0; stderr: '%s'",
            kind, (unsigned long)ptr, WIFSIGNALED(r.status) ? "killed by signal" : "exited with",
            WIFSIGNALED(r.status) ? WTERMSIG(r.status) : WEXITSTATUS(r.status), r.err);
    if (!mentions_pointer(r.err, ptr))
        fail_msg("hak_free(%s pointer %#lx) with warn: report does not show the pointer; stderr: '%s'", kind,
                 (unsigned long)ptr, r.err);
}

static void test_foreign_free_glibc_aborts(void **state) {
    (void)state;
    check_abort("glibc", NULL);
}
static void test_foreign_free_stack_aborts(void **state) {
    (void)state;
    check_abort("stack", NULL);
}
static void test_foreign_free_interior_aborts(void **state) {
    (void)state;
    check_abort("interior", NULL);
    check_abort("interior", "abort");
}
static void test_double_free_aborts(void **state) {
    (void)state;
    check_abort("double", NULL);
    check_abort("double_local", NULL);
}
static void test_double_free_warn(void **state) {
    (void)state;
    check_warn("double");
    check_warn("double_local");
}
static void test_foreign_free_glibc_warn(void **state) {
    (void)state;
    check_warn("glibc");
}
static void test_foreign_free_stack_warn(void **state) {
    (void)state;
    check_warn("stack");
}
static void test_foreign_free_interior_warn(void **state) {
    (void)state;
    check_warn("interior");
}

int main(int argc, char **argv) {
    if (argc >= 3 && strcmp(argv[1], "--child") == 0)
        return child_main(argv[2]);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_alloc_zero),
        cmocka_unit_test(test_overflow_enomem),
        cmocka_unit_test(test_aligned_bad_alignment),
        cmocka_unit_test(test_null_handling),
        cmocka_unit_test(test_alignment_16),
        cmocka_unit_test(test_usable_size_writable),
        cmocka_unit_test(test_realloc_walk),
        cmocka_unit_test(test_realloc_jumps),
        cmocka_unit_test(test_realloc_zero),
        cmocka_unit_test(test_realloc_in_place),
        cmocka_unit_test(test_calloc_zero),
        cmocka_unit_test(test_calloc_large),
        cmocka_unit_test(test_aligned_alloc),
        cmocka_unit_test(test_aligned_many),
        cmocka_unit_test(test_heap_of),
        cmocka_unit_test(test_foreign_free_glibc_aborts),
        cmocka_unit_test(test_foreign_free_stack_aborts),
        cmocka_unit_test(test_foreign_free_interior_aborts),
        cmocka_unit_test(test_foreign_free_glibc_warn),
        cmocka_unit_test(test_foreign_free_stack_warn),
        cmocka_unit_test(test_foreign_free_interior_warn),
        cmocka_unit_test(test_double_free_aborts),
        cmocka_unit_test(test_double_free_warn),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
