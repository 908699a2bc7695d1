/* SPDX-License-Identifier: MIT */
/* Errors and bad input: sizes near SIZE_MAX and PTRDIFF_MAX (or too large for the address space) and calloc
 * products that overflow fail with ENOMEM on every entry point (also a private heap's) and leave live blocks
 * and the statistics untouched, a failed realloc keeps the block, invalid alignments fail with EINVAL and too
 * large ones with ENOMEM, nothing leaks; frees
 * of foreign pointers (glibc, stack, interior) and double frees are reported with the pointer and abort by
 * default, or are ignored with HAKMEM_ON_ERROR=warn and leave the heap working (in re-executed children). */
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

#define BIG_PTRDIFF ((size_t)PTRDIFF_MAX + 1)

#define PMAX ((size_t)PTRDIFF_MAX)

static const size_t huge_sizes[] = {
    SIZE_MAX,        SIZE_MAX - 1,    SIZE_MAX - 4095,
    SIZE_MAX / 2,    PMAX + 1,        PMAX,
    PMAX - 1,        PMAX - HT_CHUNK, PMAX - HT_CHUNK - 4096 - 64,
    (size_t)1 << 62, (size_t)1 << 48, ((size_t)1 << 47) + 1,
    (size_t)1 << 47,
};
#define NHUGE (sizeof huge_sizes / sizeof huge_sizes[0])

static void test_huge_sizes_enomem(void **state) {
    (void)state;
    hak_heap_options_t o = {0, "tiers-huge"};
    hak_heap_t *h = hak_heap_create(&o);
    assert_non_null(h);
    /* one live block per tier, patterned: failed calls must not touch them */
    static const size_t keep_sizes[] = {24, 5000, 100000, 3 * HT_MIB};
    unsigned char *keep[4];
    for (int i = 0; i < 4; i++) {
        keep[i] = hak_alloc(keep_sizes[i]);
        assert_non_null(keep[i]);
        ht_fill(keep[i], keep_sizes[i], (uint64_t)i + 50);
    }
    hak_stats_t s0 = ht_stats(hak_heap_default()), sp0 = ht_stats(h);
    size_t vm0;
    ht_statm(&vm0, NULL);
    for (size_t i = 0; i < NHUGE; i++) {
        size_t n = huge_sizes[i];
        HT_EXPECT_FAIL(hak_alloc(n), ENOMEM, "size %#zx", n);
        HT_EXPECT_FAIL(hak_calloc(1, n), ENOMEM, "size %#zx", n);
        HT_EXPECT_FAIL(hak_calloc(n, 1), ENOMEM, "size %#zx", n);
        HT_EXPECT_FAIL(hak_aligned_alloc(64, n), ENOMEM, "size %#zx", n);
        HT_EXPECT_FAIL(hak_aligned_alloc(4096, n), ENOMEM, "size %#zx", n);
        HT_EXPECT_FAIL(hak_aligned_alloc(2 * HT_MIB, n), ENOMEM, "size %#zx", n);
        HT_EXPECT_FAIL(hak_aligned_alloc(64 * HT_MIB, n), ENOMEM, "size %#zx", n);
        HT_EXPECT_FAIL(hak_heap_alloc(h, n), ENOMEM, "size %#zx", n);
        HT_EXPECT_FAIL(hak_heap_calloc(h, 1, n), ENOMEM, "size %#zx", n);
        HT_EXPECT_FAIL(hak_heap_aligned_alloc(h, 256, n), ENOMEM, "size %#zx", n);
        for (int k = 0; k < 4; k++) {
            size_t u = hak_usable_size(keep[k]);
            HT_EXPECT_FAIL(hak_realloc(keep[k], n), ENOMEM, "realloc(block of %zu, %#zx)", keep_sizes[k], n);
            HT_EXPECT_FAIL(hak_heap_realloc(h, keep[k], n), ENOMEM, "heap_realloc(block of %zu, %#zx)",
                           keep_sizes[k], n);
            if (hak_usable_size(keep[k]) != u)
                fail_msg("failed realloc changed the block's usable size");
        }
    }
    /* count * size overflows */
    static const size_t pairs[][2] = {
        {SIZE_MAX / 2 + 1, 2},
        {2, SIZE_MAX / 2 + 1},
        {(size_t)1 << 32, (size_t)1 << 32},
        {SIZE_MAX, SIZE_MAX},
        {3, SIZE_MAX / 3 + 1},
        {PMAX / 16 + 1, 16}, /* > PTRDIFF_MAX, no wrap */
        {PMAX, 2},
        {(size_t)1 << 40, (size_t)1 << 24},
    };
    for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++) {
        HT_EXPECT_FAIL(hak_calloc(pairs[i][0], pairs[i][1]), ENOMEM, "calloc(%#zx, %#zx)", pairs[i][0],
                       pairs[i][1]);
        HT_EXPECT_FAIL(hak_heap_calloc(h, pairs[i][0], pairs[i][1]), ENOMEM, "heap_calloc(%#zx, %#zx)",
                       pairs[i][0], pairs[i][1]);
    }
    /* zero products are fine */
    void *z = hak_calloc(0, SIZE_MAX);
    assert_non_null(z);
    hak_free(z);
    z = hak_calloc(SIZE_MAX, 0);
    assert_non_null(z);
    hak_free(z);
    /* alignments that are not powers of two: EINVAL, whatever the size */
    static const size_t bad_align[] = {0,    3,          24,   48,       1000,
                                       4097, 3 * HT_MIB, PMAX, SIZE_MAX, ((size_t)1 << 63) + 16};
    static const size_t asz[] = {0, 16, 100000, 3 * HT_MIB, SIZE_MAX};
    for (size_t i = 0; i < sizeof bad_align / sizeof bad_align[0]; i++)
        for (size_t j = 0; j < sizeof asz / sizeof asz[0]; j++) {
            HT_EXPECT_FAIL(hak_aligned_alloc(bad_align[i], asz[j]), EINVAL, "alignment %#zx size %#zx",
                           bad_align[i], asz[j]);
            HT_EXPECT_FAIL(hak_heap_aligned_alloc(h, bad_align[i], asz[j]), EINVAL, "alignment %#zx",
                           bad_align[i]);
        }
    /* power-of-two alignments too large for the address space: ENOMEM */
    for (unsigned sh = 47; sh <= 63; sh++)
        for (size_t j = 0; j < 4; j++)
            HT_EXPECT_FAIL(hak_aligned_alloc((size_t)1 << sh, asz[j]), ENOMEM, "alignment 2^%u size %zu", sh,
                           asz[j]);
    /* a 1 GiB alignment is satisfiable: aligned, writable, freed */
    for (size_t j = 0; j < 4; j++) {
        unsigned char *p = hak_aligned_alloc((size_t)1 << 30, asz[j]);
        if (p == NULL)
            fail_msg("hak_aligned_alloc(1 GiB, %zu) failed: errno %d", asz[j], errno);
        assert_int_equal((uintptr_t)p & (((size_t)1 << 30) - 1), 0);
        assert_true(hak_usable_size(p) >= asz[j]);
        memset(p, 0x3c, asz[j] ? asz[j] : 1);
        hak_free(p);
    }
    /* nothing leaked, nothing harmed */
    hak_stats_t s1 = ht_stats(hak_heap_default()), sp1 = ht_stats(h);
    assert_int_equal(s1.live_blocks, s0.live_blocks);
    assert_int_equal(s1.live_bytes, s0.live_bytes);
    assert_int_equal(s1.large_blocks, s0.large_blocks);
    assert_int_equal(sp1.live_blocks, sp0.live_blocks);
    assert_int_equal(sp1.live_bytes, sp0.live_bytes);
    hak_collect(1);
    size_t vm1;
    ht_statm(&vm1, NULL);
    if (vm1 > vm0 + 16 * HT_MIB)
        fail_msg("address space grew by %zu MiB over failed calls", (vm1 - vm0) >> 20);
    for (int i = 0; i < 4; i++) {
        HT_ASSERT_PATTERN(keep[i], 0, keep_sizes[i], (uint64_t)i + 50, "kept block of %zu bytes",
                          keep_sizes[i]);
        hak_free(keep[i]);
    }
    hak_heap_destroy(h);
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
        cmocka_unit_test(test_overflow_enomem),
        cmocka_unit_test(test_aligned_bad_alignment),
        cmocka_unit_test(test_huge_sizes_enomem),
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
