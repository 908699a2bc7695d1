/* SPDX-License-Identifier: MIT */
/* Edge cases of the malloc family as the override defines them, called through the real symbols.
 *
 * Built twice: as a plain program run under LD_PRELOAD=libhakmem_override.so (hakmem's API is then looked up
 * with dlsym(RTLD_DEFAULT), which also proves the preload took effect), and with -DOVERRIDE_STATIC linked
 * against libhakmem_override.a (whole archive), where malloc must resolve to hakmem without any preload.
 * Every block must belong to hakmem's default heap; glibc blocks (from __libc_malloc) must be handled by
 * glibc. Exits 0 when every check passes, 1 otherwise (every failure is printed). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <errno.h>
#include <malloc.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <hakmem/hakmem.h>

/* glibc's own allocator (exported by libc.so.6): the source of "foreign" blocks. */
extern void *__libc_malloc(size_t size);
extern void __libc_free(void *p);

static hak_heap_t *(*p_heap_of)(const void *);
static hak_heap_t *(*p_heap_default)(void);
static int (*p_heap_stats)(hak_heap_t *, hak_stats_t *);
static void (*p_cfree)(void *);

static int failures;

#define CHECK(cond)                                                                                          \
    do {                                                                                                     \
        if (!(cond)) {                                                                                       \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);                          \
            failures++;                                                                                      \
        }                                                                                                    \
    } while (0)

#define CHECK_MSG(cond, ...)                                                                                 \
    do {                                                                                                     \
        if (!(cond)) {                                                                                       \
            fprintf(stderr, "%s:%d: check failed: %s: ", __FILE__, __LINE__, #cond);                          \
            fprintf(stderr, __VA_ARGS__);                                                                    \
            fputc('\n', stderr);                                                                             \
            failures++;                                                                                      \
        }                                                                                                    \
    } while (0)

/* Opaque calls keep the compiler from folding malloc/free pairs or reasoning about their results. */
static void *volatile sink;
static void *(*volatile v_malloc)(size_t) = malloc;
static void *(*volatile v_calloc)(size_t, size_t) = calloc;
static void *(*volatile v_realloc)(void *, size_t) = realloc;
static void *(*volatile v_reallocarray)(void *, size_t, size_t) = reallocarray;
static void *(*volatile v_aligned_alloc)(size_t, size_t) = aligned_alloc;
static void *(*volatile v_memalign)(size_t, size_t) = memalign;
static void *(*volatile v_valloc)(size_t) = valloc;
static void *(*volatile v_pvalloc)(size_t) = pvalloc;

static int ours(const void *p) { return p != NULL && p_heap_of(p) == p_heap_default(); }

static uint64_t live_blocks(void) {
    hak_stats_t st;
    memset(&st, 0, sizeof st);
    st.size = sizeof st;
    if (p_heap_stats(p_heap_default(), &st) != 0)
        return UINT64_MAX;
    return st.live_blocks;
}

static int aligned_to(const void *p, size_t a) { return ((uintptr_t)p & (a - 1)) == 0; }

static void fill_check(unsigned char *p, size_t n, unsigned char v) {
    memset(p, v, n);
    CHECK(p[0] == v && p[n - 1] == v);
}

static void resolve_api(void) {
#ifdef OVERRIDE_STATIC
    p_heap_of = hak_heap_of;
    p_heap_default = hak_heap_default;
    p_heap_stats = hak_heap_stats;
#else
    p_heap_of = (hak_heap_t * (*)(const void *)) dlsym(RTLD_DEFAULT, "hak_heap_of");
    p_heap_default = (hak_heap_t * (*)(void)) dlsym(RTLD_DEFAULT, "hak_heap_default");
    p_heap_stats = (int (*)(hak_heap_t *, hak_stats_t *))dlsym(RTLD_DEFAULT, "hak_heap_stats");
    if (p_heap_of == NULL || p_heap_default == NULL || p_heap_stats == NULL) {
        fprintf(stderr, "hakmem's API is not in the process: run with LD_PRELOAD=libhakmem_override.so\n");
        exit(1);
    }
#endif
    /* cfree is only a compat symbol in glibc (no default version to link against): look it up. */
    p_cfree = (void (*)(void *))dlsym(RTLD_DEFAULT, "cfree");
}

static void test_ownership(void) {
    void *p = v_malloc(10);
    CHECK(ours(p));
    free(p);
    char *s = strdup("allocated inside libc"); /* libc's internal calls must reach the override too */
    CHECK(ours(s));
    free(s);
    FILE *f = fopen("/dev/null", "w"); /* stdio buffers and FILE objects come from malloc as well */
    CHECK(f != NULL);
    if (f != NULL) {
        CHECK(ours(f));
        fprintf(f, "%d\n", 42);
        fclose(f);
    }
}

static void test_malloc_zero_and_huge(void) {
    void *a = v_malloc(0), *b = v_malloc(0);
    CHECK(a != NULL && b != NULL && a != b);
    CHECK(ours(a) && ours(b));
    free(a);
    free(b);
    errno = 0;
    CHECK(v_malloc(SIZE_MAX) == NULL);
    CHECK(errno == ENOMEM);
    errno = 0;
    CHECK(v_malloc((size_t)PTRDIFF_MAX + 1) == NULL);
    CHECK(errno == ENOMEM);
    free(NULL);
}

static void test_calloc(void) {
    errno = 0;
    CHECK(v_calloc(SIZE_MAX / 2, 3) == NULL);
    CHECK(errno == ENOMEM);
    errno = 0;
    CHECK(v_calloc((size_t)1 << 33, (size_t)1 << 33) == NULL);
    CHECK(errno == ENOMEM);
    void *z = v_calloc(0, 0);
    CHECK(z != NULL && ours(z));
    free(z);
    /* Dirty blocks come back zeroed, small and large. */
    static const size_t sizes[] = {16, 64, 1000, 8192, 100000, (size_t)1 << 20, (size_t)3 << 20};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        size_t n = sizes[i];
        unsigned char *d = v_malloc(n);
        CHECK(d != NULL);
        if (d == NULL)
            continue;
        memset(d, 0xa5, n);
        free(d);
        unsigned char *c = v_calloc(1, n);
        CHECK(ours(c));
        if (c == NULL)
            continue;
        size_t bad = 0;
        for (size_t j = 0; j < n; j++)
            bad += c[j] != 0;
        CHECK_MSG(bad == 0, "calloc(1, %zu): %zu non-zero bytes", n, bad);
        free(c);
    }
}

static void test_realloc(void) {
    /* realloc(NULL, n) is malloc(n). */
    char *p = v_realloc(NULL, 100);
    CHECK(ours(p));
    CHECK(malloc_usable_size(p) >= 100);
    free(p);

    /* realloc(p, 0) frees p and returns NULL without touching errno (glibc's behaviour). */
    uint64_t before = live_blocks();
    p = v_malloc(200);
    CHECK(live_blocks() == before + 1);
    errno = EDOM;
    CHECK(v_realloc(p, 0) == NULL);
    CHECK(errno == EDOM);
    CHECK_MSG(live_blocks() == before, "live blocks %llu, expected %llu", (unsigned long long)live_blocks(),
              (unsigned long long)before);
    p = v_malloc((size_t)1 << 20); /* large block too */
    CHECK(v_realloc(p, 0) == NULL);
    CHECK(live_blocks() == before);

    /* Growth and shrinking keep the contents, through every tier. */
    static const size_t steps[] = {1, 24, 100, 1000, 8192, 9000, 70000, 300000, (size_t)2 << 20,
                                   (size_t)9 << 20, 500000, 5000, 40, 1};
    size_t prev = 0;
    p = NULL;
    for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
        size_t n = steps[i];
        char *q = v_realloc(p, n);
        CHECK_MSG(ours(q), "realloc to %zu", n);
        if (q == NULL)
            return;
        size_t keep = prev < n ? prev : n;
        size_t bad = 0;
        for (size_t j = 0; j < keep; j++)
            bad += q[j] != (char)(j * 7 + 3);
        CHECK_MSG(bad == 0, "realloc %zu -> %zu lost %zu bytes", prev, n, bad);
        for (size_t j = 0; j < n; j++)
            q[j] = (char)(j * 7 + 3);
        p = q;
        prev = n;
    }
    free(p);

    /* A failing realloc leaves the block alone. */
    p = v_malloc(64);
    memset(p, 0x5a, 64);
    errno = 0;
    CHECK(v_realloc(p, SIZE_MAX - 4096) == NULL);
    CHECK(errno == ENOMEM);
    CHECK(ours(p) && p[0] == 0x5a && p[63] == 0x5a);
    free(p);
}

static void test_reallocarray(void) {
    char *p = v_reallocarray(NULL, 10, 10);
    CHECK(ours(p));
    memset(p, 0x11, 100);
    errno = 0;
    CHECK(v_reallocarray(p, SIZE_MAX / 2, 3) == NULL);
    CHECK(errno == ENOMEM);
    CHECK(p[0] == 0x11 && p[99] == 0x11); /* untouched */
    char *q = v_reallocarray(p, 100, 100);
    CHECK(ours(q));
    if (q != NULL)
        CHECK(q[0] == 0x11 && q[99] == 0x11);
    free(q);
}

static void test_posix_memalign(void) {
    static const size_t bad[] = {0, 1, 3, 12, 24, 48, sizeof(void *) / 2, sizeof(void *) + 1, 100,
                                 (size_t)1 << 63 | 8};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        void *out = (void *)0x1234;
        errno = EDOM;
        int rc = posix_memalign(&out, bad[i], 64);
        CHECK_MSG(rc == EINVAL, "posix_memalign(%zu) returned %d", bad[i], rc);
        CHECK_MSG(out == (void *)0x1234, "posix_memalign(%zu) changed the out-pointer on error", bad[i]);
        CHECK_MSG(errno == EDOM, "posix_memalign(%zu) set errno to %d", bad[i], errno);
    }
    void *out = (void *)0x1234;
    errno = EDOM;
    CHECK(posix_memalign(&out, 64, SIZE_MAX - 100) == ENOMEM);
    CHECK(out == (void *)0x1234);
    CHECK(errno == EDOM);

    static const size_t sizes[] = {0, 1, 100, 5000, 300000, (size_t)3 << 20};
    for (size_t a = sizeof(void *); a <= ((size_t)1 << 20); a <<= 1) { /* 2 MiB and up: test_far_alignment */
        for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
            void *p = NULL;
            errno = EDOM;
            int rc = posix_memalign(&p, a, sizes[i]);
            CHECK_MSG(rc == 0 && ours(p) && aligned_to(p, a), "posix_memalign(%zu, %zu): rc %d p %p", a,
                      sizes[i], rc, p);
            CHECK(errno == EDOM);
            if (p == NULL)
                continue;
            CHECK(malloc_usable_size(p) >= sizes[i]);
            if (sizes[i] != 0)
                fill_check(p, sizes[i], 0x77);
            free(p);
        }
    }
}

static void test_aligned_alloc(void) {
    errno = 0;
    CHECK(v_aligned_alloc(24, 48) == NULL);
    CHECK(errno == EINVAL);
    errno = 0;
    CHECK(v_aligned_alloc(0, 16) == NULL);
    CHECK(errno == EINVAL);
    errno = 0;
    CHECK(v_aligned_alloc(64, SIZE_MAX - 100) == NULL);
    CHECK(errno == ENOMEM);
    for (size_t a = 1; a <= ((size_t)1 << 20); a <<= 1) {
        size_t n = a * 3;
        void *p = v_aligned_alloc(a, n);
        CHECK_MSG(ours(p) && aligned_to(p, a), "aligned_alloc(%zu, %zu) = %p", a, n, p);
        if (p == NULL)
            continue;
        CHECK(malloc_usable_size(p) >= n);
        fill_check(p, n, 0x33);
        free(p);
    }
}

static void test_memalign(void) {
    static const size_t al[] = {0, 1, 8, 16, 32, 64, 4096, 65536, (size_t)1 << 20};
    for (size_t i = 0; i < sizeof al / sizeof al[0]; i++) {
        void *p = v_memalign(al[i], 1000);
        size_t a = al[i] < 16 ? 16 : al[i];
        CHECK_MSG(ours(p) && aligned_to(p, a), "memalign(%zu) = %p", al[i], p);
        CHECK(malloc_usable_size(p) >= 1000);
        free(p);
    }
    /* glibc rounds an alignment that is not a power of two up to the next one. */
    void *p = v_memalign(24, 100);
    CHECK(ours(p) && aligned_to(p, 32));
    free(p);
    p = v_memalign(100, 100);
    CHECK(ours(p) && aligned_to(p, 128));
    free(p);
    p = v_memalign(3, 10); /* small alignments are malloc's */
    CHECK(ours(p) && aligned_to(p, 16));
    free(p);
    p = v_memalign(5000, 10);
    CHECK(ours(p) && aligned_to(p, 8192));
    free(p);
    errno = 0;
    CHECK(v_memalign(SIZE_MAX / 2 + 2, 16) == NULL);
    CHECK(errno == EINVAL);
    errno = 0;
    CHECK(v_memalign(64, SIZE_MAX - 100) == NULL);
    CHECK(errno == ENOMEM);
}

static void test_valloc_pvalloc(void) {
    size_t ps = (size_t)sysconf(_SC_PAGESIZE);
    static const size_t sizes[] = {0, 1, 100, 4095, 4096, 4097, 70000, (size_t)1 << 20};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        size_t n = sizes[i];
        void *v = v_valloc(n);
        CHECK_MSG(ours(v) && aligned_to(v, ps), "valloc(%zu) = %p", n, v);
        CHECK(malloc_usable_size(v) >= n);
        free(v);
        void *pv = v_pvalloc(n);
        size_t want = n == 0 ? ps : (n + ps - 1) / ps * ps;
        CHECK_MSG(ours(pv) && aligned_to(pv, ps), "pvalloc(%zu) = %p", n, pv);
        CHECK_MSG(malloc_usable_size(pv) >= want, "pvalloc(%zu): usable %zu < %zu", n, malloc_usable_size(pv),
                  want);
        if (pv != NULL)
            fill_check(pv, want, 0x44);
        free(pv);
    }
    errno = 0;
    CHECK(v_pvalloc(SIZE_MAX) == NULL);
    CHECK(errno == ENOMEM);
    errno = 0;
    CHECK(v_valloc(SIZE_MAX - 100) == NULL);
    CHECK(errno == ENOMEM);
}

static void test_usable_size(void) {
    CHECK(malloc_usable_size(NULL) == 0);
    for (size_t n = 1; n <= 8192; n++) {
        unsigned char *p = v_malloc(n);
        if (!ours(p)) {
            CHECK_MSG(0, "malloc(%zu) = %p is not hakmem's", n, (void *)p);
            free(p);
            continue;
        }
        size_t u = malloc_usable_size(p);
        CHECK_MSG(u >= n && u <= n + n / 4 + 16, "malloc_usable_size(malloc(%zu)) = %zu", n, u);
        p[0] = 1;
        p[u - 1] = 2;
        free(p);
    }
    static const size_t large[] = {10000, 65536, 100000, 262144, 262145, (size_t)1 << 20, (size_t)3 << 20,
                                   (size_t)64 << 20};
    for (size_t i = 0; i < sizeof large / sizeof large[0]; i++) {
        size_t n = large[i];
        unsigned char *p = v_malloc(n);
        CHECK_MSG(ours(p), "malloc(%zu)", n);
        if (p == NULL)
            continue;
        size_t u = malloc_usable_size(p);
        CHECK_MSG(u >= n, "malloc_usable_size(malloc(%zu)) = %zu", n, u);
        p[0] = 1;
        p[n / 2] = 3;
        p[u - 1] = 2;
        free(p);
    }
}

static void test_cfree_and_errno(void) {
    uint64_t before = live_blocks();
    void *p = v_malloc(48);
    if (p_cfree != NULL) {
        p_cfree(p);
        CHECK(live_blocks() == before);
    } else {
        free(p);
    }
    /* free keeps errno (glibc >= 2.33, POSIX.1-2024), on every path. */
    void *blocks[4] = {v_malloc(32), v_malloc(100000), v_malloc((size_t)4 << 20), __libc_malloc(64)};
    for (int i = 0; i < 4; i++) {
        errno = EDOM;
        free(blocks[i]);
        CHECK_MSG(errno == EDOM, "free changed errno (block %d)", i);
    }
}

/* glibc's mmapped chunks tend to land in the unused rest of the 2 MiB chunk of a hakmem large block (which
 * the region map marks as hakmem's): they are still glibc's. Runs first, before BigCache holds mappings. */
static void test_foreign_near_large(void) {
    void *h[8], *f[32];
    int shared = 0;
    for (int i = 0; i < 8; i++)
        h[i] = v_malloc(300000);
    for (int i = 0; i < 32; i++) {
        f[i] = __libc_malloc(200000);
        for (int j = 0; j < 8; j++)
            shared += ((uintptr_t)f[i] >> 21) == ((uintptr_t)h[j] >> 21);
    }
    for (int i = 0; i < 32; i++) {
        CHECK(f[i] != NULL && p_heap_of(f[i]) == NULL);
        CHECK(malloc_usable_size(f[i]) >= 200000);
        f[i] = v_realloc(f[i], 210000);
        CHECK(f[i] != NULL && p_heap_of(f[i]) == NULL);
        free(f[i]);
    }
    for (int i = 0; i < 8; i++) {
        CHECK(ours(h[i]));
        free(h[i]);
    }
    printf("foreign: %d of 32 glibc blocks shared a 2 MiB chunk with a hakmem large block\n", shared);
}

/* glibc blocks that reach the override go back to glibc. */
static void test_foreign(void) {
    char *g = __libc_malloc(100);
    CHECK(g != NULL);
    CHECK(p_heap_of(g) == NULL);
    memset(g, 0x21, 100);
    CHECK(malloc_usable_size(g) >= 100);
    char *g2 = v_realloc(g, 5000);
    CHECK(g2 != NULL && p_heap_of(g2) == NULL);
    if (g2 != NULL) {
        CHECK(g2[0] == 0x21 && g2[99] == 0x21);
        free(g2);
    }
    char *big = __libc_malloc((size_t)1 << 20); /* an mmapped glibc chunk */
    CHECK(big != NULL && p_heap_of(big) == NULL);
    CHECK(malloc_usable_size(big) >= ((size_t)1 << 20));
    free(big);
    char *z = __libc_malloc(10);
    CHECK(v_realloc(z, 0) == NULL); /* glibc frees it */
    for (int i = 0; i < 1000; i++) { /* many, to catch heap corruption on either side */
        void *a = __libc_malloc((size_t)i * 8 + 1), *b = v_malloc((size_t)i * 8 + 1);
        free(a);
        free(b);
    }
}

/* An interior pointer of a hakmem block is still reported: the default policy aborts (in a child). */
static void test_interior_aborts(void) {
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        char *p = v_malloc(64);
        sink = p;
        fprintf(stderr, "(expected) ");
        free(p + 16);
        _exit(0);
    }
    int st = 0;
    CHECK(pid > 0 && waitpid(pid, &st, 0) == pid);
    CHECK_MSG(WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT, "child status 0x%x", st);
}

/* Alignments of 2 MiB and more (a block that starts a 2 MiB chunk, its header one page below), then ordinary
 * large blocks of similar sizes, which must not reuse those mappings as if they were chunk-aligned. */
static void test_far_alignment(void) {
    static const size_t sizes[] = {0, 1, 500000, (size_t)3 << 20};
    for (size_t a = (size_t)2 << 20; a <= ((size_t)8 << 20); a <<= 1) {
        for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
            void *p = NULL;
            int rc = posix_memalign(&p, a, sizes[i]);
            CHECK_MSG(rc == 0 && ours(p) && aligned_to(p, a), "posix_memalign(%zu, %zu) = %p", a, sizes[i], p);
            void *q = v_aligned_alloc(a, sizes[i] + 1);
            CHECK_MSG(ours(q) && aligned_to(q, a), "aligned_alloc(%zu, %zu) = %p", a, sizes[i] + 1, q);
            void *m = v_memalign(a, sizes[i]);
            CHECK_MSG(ours(m) && aligned_to(m, a), "memalign(%zu, %zu) = %p", a, sizes[i], m);
            if (q != NULL)
                fill_check(q, sizes[i] + 1, 0x55);
            free(p);
            free(q);
            free(m);
        }
    }
    /* 507840 and 3149760: a 64-byte header plus these is exactly the mapping size of the far blocks of
     * 500000 and 3 MiB above (a page plus the size), the likeliest to be handed out again. */
    static const size_t again[] = {300000, 500000, 507840, (size_t)1 << 20, (size_t)3 << 20, 3149760};
    for (size_t i = 0; i < sizeof again / sizeof again[0]; i++) {
        void *p = v_malloc(again[i]);
        CHECK_MSG(ours(p), "malloc(%zu) = %p after freeing far-aligned blocks", again[i], p);
        void *q = v_aligned_alloc((size_t)128 << 10, again[i]);
        CHECK_MSG(ours(q) && aligned_to(q, (size_t)128 << 10), "aligned_alloc(128 KiB, %zu) = %p after freeing "
                  "far-aligned blocks", again[i], q);
        if (ours(p))
            free(p);
        if (ours(q))
            free(q);
    }
}

int main(void) {
    resolve_api();
    test_foreign_near_large();
    test_ownership();
    test_malloc_zero_and_huge();
    test_calloc();
    test_realloc();
    test_reallocarray();
    test_posix_memalign();
    test_aligned_alloc();
    test_memalign();
    test_valloc_pvalloc();
    test_usable_size();
    test_cfree_and_errno();
    test_foreign();
    test_interior_aborts();
    test_far_alignment();
    if (failures != 0) {
        fprintf(stderr, "%d check(s) failed\n", failures);
        return 1;
    }
    printf("override api: all checks passed\n");
    return 0;
}
