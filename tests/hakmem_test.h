/* SPDX-License-Identifier: MIT */
/* hakmem_test.h: the one helper header of hakmem's tests. Header-only; every name starts with ht_ or HT_.
 *
 * Standalone part (the C library only):
 *   workload scale   HT_SLOWDOWN, HT_SANITIZED, HT_SCALE (defined by tests/CMakeLists.txt)
 *   constants        HT_KIB, HT_MIB, HT_PAGE, HT_CHUNK, HT_SLAB, HT_TINY_MAX, HT_SLAB_MAX, HT_LARGE_HEADER
 *   PRNG             ht_mix, ht_rng_t, ht_seed, ht_next
 *   patterns         ht_pat, ht_fill, ht_check (whole blocks), ht_fill_range, ht_check_range (sub-ranges),
 *                    ht_all_equal
 *   probes           ht_statm, ht_rss_bytes, ht_status_kib, ht_maps_count, ht_sleep_ms, ht_cmp_uptr,
 *                    ht_align_up
 *   captured runs    ht_env_merge, ht_capture (a child program with its stdout and stderr captured and a
 *                    timeout), ht_mentions_pointer, ht_count_lines, ht_status_text
 * cmocka part (cmocka.h, hakmem.h and hakmem's internal headers):
 *   failures         HT_ASSERT_PATTERN, HT_EXPECT_FAIL (NULL + errno), HT_THREAD_FAIL (from a worker thread)
 *   statistics       ht_stats, ht_get_stats, ht_try_stats, ht_class_index, ht_bigcache
 *   size classes     ht_design_class_size, ht_build_classes, ht_expected_class (from the design, not from
 *                    the library's tables)
 *   tiers and spans  ht_tier_t, ht_tier_of, ht_expected_tier, ht_span_info, ht_span_id, ht_span_slabs_for
 *   large blocks     ht_large_usable, ht_large_map, ht_chunks_req, ht_unmapped
 *   realloc          ht_realloc_step: one realloc with its checks (content, heap, tier, usable size)
 *   tracked blocks   ht_tier_sizes, ht_mixed_size; ht_stamp, ht_verify, ht_make (size and id in the first
 *                    16 bytes); ht_mark, ht_check_mark (size and tag, head and tail patterned)
 *   child processes  ht_run_child, ht_run_child_stderr, HT_CHILD_OK, ht_child_main: re-run one test of this
 *                    executable with extra environment variables (options such as HAKMEM_BIGCACHE_MAX are
 *                    read once at start-up), optionally capturing its stderr
 *   threads          ht_barrier_t
 *
 * This is the only test file that includes hakmem's internal headers (src/...): a test that needs an
 * internal value gets it here, directly (the internal headers are included below) or through a helper, so
 * that renames of the internals are fixed in one place.
 *
 * A test includes only this header. A program that is neither a cmocka test nor built with hakmem's
 * internals (tests/stress/stress.c, also built against plain malloc) defines HT_STANDALONE first and gets
 * the standalone part only; so do the cmocka tests of tests/security/, which include cmocka themselves and
 * use hakmem's public API only, so that the same sources also build against an older tree.
 */
#ifndef HAKMEM_TEST_H
#define HAKMEM_TEST_H

#include <ctype.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

/* ==== standalone part: the C library only =============================================================== */

/* ---- workload scale ---------------------------------------------------------------------------------------
 * tests/CMakeLists.txt defines, for every test program: HT_SLOWDOWN = 1, or 2 under ASan/UBSan and 10 under
 * TSan (divide workloads by it, see HT_SCALE); HT_SANITIZED = 1 in any sanitizer build (the runtimes keep
 * shadow memory resident and reserve terabytes of address space: RSS, page-fault and RLIMIT_AS checks are
 * skipped there). The fallbacks below are for a compile outside CMake. */
#ifndef HT_SLOWDOWN
#define HT_SLOWDOWN 1
#endif
#ifndef HT_SANITIZED
#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
#define HT_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer) || __has_feature(address_sanitizer)
#define HT_SANITIZED 1
#endif
#endif
#endif
#ifndef HT_SANITIZED
#define HT_SANITIZED 0
#endif
/* n divided by the slowdown, at least 1. */
#define HT_SCALE(n) ((size_t)(n) / HT_SLOWDOWN ? (size_t)(n) / HT_SLOWDOWN : 1)

/* ---- constants (docs/ARCHITECTURE.md; independent of the library's own definitions) ------------------- */
#define HT_KIB ((size_t)1 << 10)
#define HT_MIB ((size_t)1 << 20)
#define HT_PAGE ((size_t)4096)
#define HT_CHUNK ((size_t)2 << 20)      /* SuperSlab / region-map granule; large mappings are whole chunks */
#define HT_SLAB ((size_t)64 << 10)      /* a slab; spans are whole slabs */
#define HT_TINY_MAX ((size_t)8192)      /* largest tiny class */
#define HT_SLAB_MAX ((size_t)256 << 10) /* largest class served from slabs; larger blocks are large */
#define HT_LARGE_HEADER ((size_t)64)    /* large blocks start 64 bytes into their mapping */

/* ---- PRNG ---------------------------------------------------------------------------------------------- */
static inline uint64_t ht_mix(uint64_t x) {
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ull;
    x ^= x >> 33;
    return x;
}

typedef struct {
    uint64_t s;
} ht_rng_t;

static inline uint64_t ht_next(ht_rng_t *r) { /* xorshift64* */
    uint64_t x = r->s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    r->s = x;
    return x * 0x2545F4914F6CDD1Dull;
}

static inline void ht_seed(ht_rng_t *r, uint64_t seed) { r->s = ht_mix(seed) | 1; }

/* ---- patterns ---------------------------------------------------------------------------------------------
 * The byte at offset i of a block tagged `tag` depends on (tag, i) only, so a sub-range can be filled or
 * checked on its own and agrees byte for byte with a whole-block fill. */
static inline unsigned char ht_pat(uint64_t tag, size_t i) {
    return (unsigned char)(ht_mix(tag + (i >> 3)) >> ((i & 7) * 8));
}

/* Fill n bytes with the pattern of `tag` (8 bytes at a time). */
static inline void ht_fill(void *p, size_t n, uint64_t tag) {
    unsigned char *b = (unsigned char *)p;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t v = ht_mix(tag + (i >> 3));
        memcpy(b + i, &v, 8);
    }
    for (; i < n; i++)
        b[i] = ht_pat(tag, i);
}

/* Returns the first offset whose byte differs from the pattern, or (size_t)-1 if all n bytes match. */
static inline size_t ht_check(const void *p, size_t n, uint64_t tag) {
    const unsigned char *b = (const unsigned char *)p;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t v = ht_mix(tag + (i >> 3)), w;
        memcpy(&w, b + i, 8);
        if (v != w)
            break;
    }
    for (; i < n; i++)
        if (b[i] != ht_pat(tag, i))
            return i;
    return (size_t)-1;
}

/* Fill bytes [from, to) with the pattern of `tag` at their offsets. */
static inline void ht_fill_range(void *p, size_t from, size_t to, uint64_t tag) {
    unsigned char *b = (unsigned char *)p;
    size_t i = from;
    for (; i < to && (i & 7); i++)
        b[i] = ht_pat(tag, i);
    for (; i + 8 <= to; i += 8) {
        uint64_t v = ht_mix(tag + (i >> 3));
        memcpy(b + i, &v, 8);
    }
    for (; i < to; i++)
        b[i] = ht_pat(tag, i);
}

/* First offset in [from, to) that differs from the pattern, or (size_t)-1. */
static inline size_t ht_check_range(const void *p, size_t from, size_t to, uint64_t tag) {
    const unsigned char *b = (const unsigned char *)p;
    size_t i = from;
    for (; i < to && (i & 7); i++)
        if (b[i] != ht_pat(tag, i))
            return i;
    for (; i + 8 <= to; i += 8) {
        uint64_t v = ht_mix(tag + (i >> 3)), w;
        memcpy(&w, b + i, 8);
        if (v != w)
            break;
    }
    for (; i < to; i++)
        if (b[i] != ht_pat(tag, i))
            return i;
    return (size_t)-1;
}

static inline int ht_all_equal(const void *p, size_t n, unsigned char c) {
    const unsigned char *b = (const unsigned char *)p;
    for (size_t i = 0; i < n; i++)
        if (b[i] != c)
            return 0;
    return 1;
}

/* ---- probes -------------------------------------------------------------------------------------------- */
/* Virtual size and RSS of this process in bytes (/proc/self/statm); 0 if unavailable. Either pointer may be
 * NULL. */
static inline void ht_statm(size_t *vm, size_t *rss) {
    unsigned long a = 0, b = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f) {
        if (fscanf(f, "%lu %lu", &a, &b) != 2)
            a = b = 0;
        fclose(f);
    }
    size_t pg = (size_t)sysconf(_SC_PAGESIZE);
    if (vm)
        *vm = (size_t)a * pg;
    if (rss)
        *rss = (size_t)b * pg;
}

/* Resident set size of this process in bytes, 0 if unavailable. */
static inline size_t ht_rss_bytes(void) {
    size_t rss;
    ht_statm(NULL, &rss);
    return rss;
}

/* A field of /proc/self/status in KiB ("VmSize", "VmRSS"), -1 if missing. */
static inline long ht_status_kib(const char *field) {
    FILE *f = fopen("/proc/self/status", "r");
    if (f == NULL)
        return -1;
    char line[256];
    long v = -1;
    size_t n = strlen(field);
    while (fgets(line, sizeof line, f))
        if (strncmp(line, field, n) == 0 && line[n] == ':') {
            v = strtol(line + n + 1, NULL, 10);
            break;
        }
    fclose(f);
    return v;
}

/* Number of mappings of this process (lines of /proc/self/maps), -1 if unavailable. */
static inline long ht_maps_count(void) {
    FILE *f = fopen("/proc/self/maps", "r");
    if (f == NULL)
        return -1;
    long lines = 0;
    int c;
    while ((c = fgetc(f)) != EOF)
        if (c == '\n')
            lines++;
    fclose(f);
    return lines;
}

static inline void ht_sleep_ms(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* qsort / bsearch comparison of uintptr_t values. */
static inline int ht_cmp_uptr(const void *a, const void *b) {
    uintptr_t x = *(const uintptr_t *)a, y = *(const uintptr_t *)b;
    return x < y ? -1 : x > y;
}

static inline size_t ht_align_up(size_t n, size_t a) { return (n + a - 1) & ~(a - 1); }

/* ---- child processes with captured output (the C library only) ----------------------------------------
 * ht_env_merge: the current environment with `env` applied: "K=V" sets (overriding) K, a bare "K" removes it.
 * ht_capture: runs a program with such an environment, its stdout and stderr captured (cut at the buffers'
 * size), killed after timeout_s seconds. ht_mentions_pointer, ht_count_lines: what the output says.
 * ht_status_text: a wait status in words, for messages. The cmocka part builds ht_run_child on these. */

/* A calloc'd array (free it, not its strings), NULL when out of memory. */
static inline char **ht_env_merge(const char *const *env) {
    size_t n = 0, extra = 0;
    while (environ[n])
        n++;
    while (env && env[extra])
        extra++;
    char **envp = (char **)calloc(n + extra + 1, sizeof *envp);
    if (envp == NULL)
        return NULL;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        int overridden = 0;
        for (size_t j = 0; j < extra && !overridden; j++) {
            const char *eq = strchr(env[j], '=');
            size_t key = eq ? (size_t)(eq - env[j]) : strlen(env[j]);
            overridden = strncmp(environ[i], env[j], key) == 0 && environ[i][key] == '=';
        }
        if (!overridden)
            envp[k++] = environ[i];
    }
    for (size_t j = 0; j < extra; j++)
        if (strchr(env[j], '=') != NULL)
            envp[k++] = (char *)env[j];
    envp[k] = NULL;
    return envp;
}

typedef struct {
    int started;   /* 0: fork or pipe failed (nothing else is valid) */
    int timed_out; /* killed (SIGKILL) after the timeout */
    int status;    /* wait status */
    size_t out_len, err_len;
    char out[16384]; /* stdout, NUL-terminated */
    char err[32768]; /* stderr, NUL-terminated */
} ht_capture_t;

static inline void ht_capture_append(char *buf, size_t cap, size_t *len, const char *src, size_t n) {
    if (*len + n >= cap)
        n = cap - 1 - *len;
    memcpy(buf + *len, src, n);
    *len += n;
    buf[*len] = '\0';
}

/* Runs `path` with argv (NULL-terminated) and the environment ht_env_merge(env) makes; fills *r. */
static inline void ht_capture(const char *path, char *const argv[], const char *const *env, int timeout_s,
                              ht_capture_t *r) {
    memset(r, 0, sizeof *r);
    int po[2], pe[2];
    char **envp = ht_env_merge(env);
    if (envp == NULL)
        return;
    if (pipe(po) != 0) {
        free(envp);
        return;
    }
    if (pipe(pe) != 0) {
        close(po[0]);
        close(po[1]);
        free(envp);
        return;
    }
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) {
        close(po[0]);
        close(po[1]);
        close(pe[0]);
        close(pe[1]);
        free(envp);
        return;
    }
    if (pid == 0) {
        dup2(po[1], 1);
        dup2(pe[1], 2);
        close(po[0]);
        close(pe[0]);
        close(po[1]);
        close(pe[1]);
        execve(path, argv, envp);
        _exit(127);
    }
    r->started = 1;
    free(envp);
    close(po[1]);
    close(pe[1]);
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    long limit_ms = (long)timeout_s * 1000;
    struct pollfd fds[2] = {{po[0], POLLIN, 0}, {pe[0], POLLIN, 0}};
    int open_fds = 2, reaped = 0;
    for (;;) {
        clock_gettime(CLOCK_MONOTONIC, &t);
        long elapsed = (t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000;
        if (elapsed >= limit_ms) {
            kill(pid, SIGKILL);
            r->timed_out = 1;
            break;
        }
        if (open_fds == 0) { /* both pipes closed: wait for the exit (a child may close them early) */
            pid_t w = waitpid(pid, &r->status, WNOHANG);
            if (w == pid) {
                reaped = 1;
                break;
            }
            ht_sleep_ms(5);
            continue;
        }
        int rc = poll(fds, 2, (int)(limit_ms - elapsed < 100 ? limit_ms - elapsed : 100));
        if (rc < 0 && errno != EINTR)
            break;
        for (int i = 0; i < 2 && rc > 0; i++) {
            if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR)))
                continue;
            char buf[4096];
            ssize_t got = read(fds[i].fd, buf, sizeof buf);
            if (got <= 0) {
                close(fds[i].fd);
                fds[i].fd = -1;
                open_fds--;
            } else if (i == 0) {
                ht_capture_append(r->out, sizeof r->out, &r->out_len, buf, (size_t)got);
            } else {
                ht_capture_append(r->err, sizeof r->err, &r->err_len, buf, (size_t)got);
            }
        }
    }
    for (int i = 0; i < 2; i++)
        if (fds[i].fd >= 0)
            close(fds[i].fd);
    if (!reaped)
        while (waitpid(pid, &r->status, 0) < 0 && errno == EINTR) {
        }
}

/* Does text contain a hexadecimal number "0x..." equal to value (any case, any zero padding)? */
static inline int ht_mentions_pointer(const char *text, uintptr_t value) {
    for (const char *s = text; s[0] && s[1]; s++) {
        if (s[0] != '0' || (s[1] != 'x' && s[1] != 'X') || (s > text && isxdigit((unsigned char)s[-1])))
            continue;
        char *end;
        errno = 0;
        unsigned long long v = strtoull(s + 2, &end, 16);
        if (end != s + 2 && errno == 0 && (uintptr_t)v == value)
            return 1;
    }
    return 0;
}

/* Lines in text (a last line without its newline counts). */
static inline size_t ht_count_lines(const char *text) {
    size_t n = 0;
    for (const char *s = text; *s; s++)
        if (*s == '\n' || s[1] == '\0')
            n++;
    return n;
}

/* "exit 3", "signal 6 (SIGABRT)", "timed out": a capture's outcome, in buf. */
static inline const char *ht_status_text(const ht_capture_t *r, char *buf, size_t cap) {
    if (!r->started)
        snprintf(buf, cap, "not started");
    else if (r->timed_out)
        snprintf(buf, cap, "timed out (killed)");
    else if (WIFEXITED(r->status))
        snprintf(buf, cap, "exit %d", WEXITSTATUS(r->status));
    else if (WIFSIGNALED(r->status))
        snprintf(buf, cap, "signal %d (%s)", WTERMSIG(r->status), strsignal(WTERMSIG(r->status)));
    else
        snprintf(buf, cap, "wait status %#x", (unsigned)r->status);
    return buf;
}

#ifndef HT_STANDALONE
/* ==== cmocka tests: cmocka, hakmem's public and internal headers ======================================== */

#include <stdarg.h>
#include <setjmp.h>
#include <cmocka.h>

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/mman.h>

#include <hakmem/hakmem.h>

/* hakmem internals (src/...): included here only */
#include "bigcache/bigcache.h"
#include "bigcache/large.h"
#include "tiny/size_class.h"
#include "common/region_map.h"
#include "superslab/superslab.h"
#include "tiny/size_class.h"

/* ---- failures ------------------------------------------------------------------------------------------ */
#define HT_ASSERT_PATTERN(p, from, to, tag, ...)                                                             \
    do {                                                                                                     \
        size_t bad_ = ht_check_range((p), (from), (to), (tag));                                              \
        if (bad_ != (size_t)-1) {                                                                            \
            print_error("pattern broken at offset %zu of %p (checked [%zu, %zu)): ", bad_, (void *)(p),      \
                        (size_t)(from), (size_t)(to));                                                       \
            fail_msg(__VA_ARGS__);                                                                           \
        }                                                                                                    \
    } while (0)

/* expr must return NULL and set errno to err. */
#define HT_EXPECT_FAIL(expr, err, ...)                                                                       \
    do {                                                                                                     \
        errno = 0;                                                                                           \
        void *r_ = (expr);                                                                                   \
        int e_ = errno;                                                                                      \
        if (r_ != NULL) {                                                                                    \
            print_error("%s returned %p\n", #expr, r_);                                                      \
            fail_msg(__VA_ARGS__);                                                                           \
        }                                                                                                    \
        if (e_ != (err)) {                                                                                   \
            print_error("%s: errno %d, expected %d\n", #expr, e_, (err));                                    \
            fail_msg(__VA_ARGS__);                                                                           \
        }                                                                                                    \
    } while (0)

/* cmocka's assertions work on the main thread only: a worker thread reports a failure on stderr and counts it
 * in the atomic_int `counter`, which the main thread checks after joining it. */
#define HT_THREAD_FAIL(counter, ...)                                                                         \
    do {                                                                                                     \
        fprintf(stderr, __VA_ARGS__);                                                                        \
        fputc('\n', stderr);                                                                                 \
        atomic_fetch_add(&(counter), 1);                                                                     \
    } while (0)

/* ---- statistics ---------------------------------------------------------------------------------------- */
/* Statistics of heap (NULL: the process); a failing call fails the test. */
static inline hak_stats_t ht_stats(hak_heap_t *heap) {
    hak_stats_t st;
    memset(&st, 0, sizeof st);
    st.size = sizeof st;
    assert_int_equal(hak_heap_stats(heap, &st), 0);
    return st;
}

/* The same into *st; a failing call aborts (usable from any thread). */
static inline void ht_get_stats(hak_heap_t *heap, hak_stats_t *st) {
    memset(st, 0, sizeof *st);
    st->size = sizeof *st;
    int rc = hak_heap_stats(heap, st);
    if (rc != 0) {
        fprintf(stderr, "hak_heap_stats failed: %d\n", rc);
        abort();
    }
}

/* The same, for tests that can do without: returns 1 if the call succeeded and reported reserved memory. */
static inline int ht_try_stats(hak_heap_t *heap, hak_stats_t *st) {
    memset(st, 0, sizeof *st);
    st->size = sizeof *st;
    return hak_heap_stats(heap, st) == 0 && st->reserved_bytes != 0;
}

/* Index in st->classes of the entry with this block size, -1 if none. */
static inline int ht_class_index(const hak_stats_t *st, uint64_t block_size) {
    for (uint32_t c = 0; c < st->class_count && c < HAK_STATS_CLASSES_MAX; c++)
        if (st->classes[c].block_size == block_size)
            return (int)c;
    return -1;
}

/* A snapshot of the BigCache's counters. */
static inline hak_bigcache_info_t ht_bigcache(void) {
    hak_bigcache_info_t i;
    memset(&i, 0, sizeof i);
    hak_bigcache_info(&i);
    return i;
}

/* ---- expected size classes (docs/ARCHITECTURE.md, "Size classes"; not the library's tables) -----------
 * 16 B steps up to 128 B, then four classes per doubling: (128, 256] holds 160, 192, 224, 256, and so on. */
static inline size_t ht_design_class_size(unsigned c) {
    if (c < 8)
        return 16u * (c + 1u);
    size_t base = (size_t)128 << ((c - 8u) / 4u);
    return base + (base / 4u) * ((c - 8u) % 4u + 1u);
}

/* The design's classes up to the largest slab size, ascending: ht_classes[0 .. ht_class_count). */
enum { HT_MAX_CLASSES = 64 };
static size_t ht_classes[HT_MAX_CLASSES];
static unsigned ht_class_count;

static inline void ht_build_classes(void) {
    if (ht_class_count)
        return;
    unsigned n = 0;
    while (n < HT_MAX_CLASSES && ht_design_class_size(n) <= HAK_SLAB_MAX_SIZE) {
        ht_classes[n] = ht_design_class_size(n);
        n++;
    }
    ht_class_count = n;
}

/* Smallest class holding n bytes (n <= 256 KiB); 0 maps to the 16 B class. */
static inline size_t ht_expected_class(size_t n) {
    ht_build_classes();
    for (unsigned i = 0; i < ht_class_count; i++)
        if (ht_classes[i] >= n)
            return ht_classes[i];
    return 0;
}

/* ---- tiers and spans ----------------------------------------------------------------------------------- */
typedef enum { HT_TIER_NONE = 0, HT_TIER_TINY, HT_TIER_POOL, HT_TIER_LARGE } ht_tier_t;
static const char *const ht_tier_names[] = {"none", "tiny", "pool", "large"};

/* The span descriptor of a slab block p (a block of a SuperSlab). */
typedef struct {
    unsigned cls;        /* size class */
    unsigned block_size; /* bytes */
    unsigned span_slabs; /* slabs in the span */
} ht_span_info_t;

static inline ht_span_info_t ht_span_info(const void *p) {
    hak_span_t *s = hak_span_of(hak_ss_of(p), p);
    ht_span_info_t i = {s->cls, s->block_size, s->span_slabs};
    return i;
}

/* The span that holds slab block p, as a number: blocks of one span give the same one. */
static inline uintptr_t ht_span_id(const void *p) { return (uintptr_t)hak_span_of(hak_ss_of(p), p); }

/* Slabs in a span of class c. */
static inline unsigned ht_span_slabs_for(unsigned c) { return hak_span_slabs_for(c); }

/* Tier that owns p according to the region map and, for slab tiers, the span descriptor's size class. */
static inline ht_tier_t ht_tier_of(const void *p) {
    unsigned kind = hak_region_kind(p);
    if (kind == HAK_REGION_LARGE || kind == HAK_REGION_LARGE_FAR)
        return HT_TIER_LARGE;
    if (kind != HAK_REGION_SUPERSLAB)
        return HT_TIER_NONE;
    return ht_span_info(p).cls < HAK_TINY_CLASS_COUNT ? HT_TIER_TINY : HT_TIER_POOL;
}

/* Tier a request of n bytes should land in. */
static inline ht_tier_t ht_expected_tier(size_t n) {
    if (n > HAK_SLAB_MAX_SIZE)
        return HT_TIER_LARGE;
    return n <= HAK_TINY_MAX_SIZE ? HT_TIER_TINY : HT_TIER_POOL;
}

/* ---- large-block geometry (docs/ARCHITECTURE.md, "Large blocks and the BigCache") -------------------------
 * A large block of n bytes (alignment <= 64) starts 64 bytes into its mapping; its usable size is exact and
 * tight: header + n rounded up to a page, minus the header. Its mapping is that rounded up to whole chunks.
 */
static inline size_t ht_large_usable(size_t n) {
    return ((n + HT_LARGE_HEADER + HT_PAGE - 1) & ~(HT_PAGE - 1)) - HT_LARGE_HEADER;
}
static inline size_t ht_large_map(size_t n) {
    return (ht_large_usable(n) + HT_LARGE_HEADER + HT_CHUNK - 1) & ~(HT_CHUNK - 1);
}
/* The largest request whose mapping is exactly k chunks (its usable size is k chunks minus the header). */
static inline size_t ht_chunks_req(size_t k) { return k * HT_CHUNK - HT_LARGE_HEADER; }

/* True if no page of [p, p+len) is mapped (mincore fails with ENOMEM on an unmapped page). */
static inline int ht_unmapped(const void *p, size_t len) {
    unsigned char vec[1];
    for (size_t off = 0; off < len; off += HT_PAGE)
        if (mincore((void *)((uintptr_t)p + off), HT_PAGE, vec) == 0 || errno != ENOMEM)
            return 0;
    return 1;
}

/* ---- a checked realloc step --------------------------------------------------------------------------- */
/* Reallocates p, whose first *n bytes hold the positional pattern of tag, to m bytes (hak_heap_realloc on
 * heap, or hak_realloc if heap is NULL) and checks the result: 16-byte aligned, usable >= m, still owned by
 * its heap (heap, else owner, else the default heap), in the tier of m if it moved, the kept content intact.
 * Then patterns the new part and sets *n = m. */
static inline unsigned char *ht_realloc_step(hak_heap_t *heap, hak_heap_t *owner, unsigned char *p, size_t *n,
                                             size_t m, uint64_t tag) {
    owner = heap ? heap : owner ? owner : hak_heap_default();
    unsigned char *q = heap ? hak_heap_realloc(heap, p, m) : hak_realloc(p, m);
    if (q == NULL)
        fail_msg("realloc(%p [%zu bytes], %zu) returned NULL", (void *)p, *n, m);
    if ((uintptr_t)q % 16)
        fail_msg("realloc(.., %zu) = %p: not 16-byte aligned", m, (void *)q);
    size_t u = hak_usable_size(q);
    if (u < m)
        fail_msg("realloc(.., %zu): usable %zu", m, u);
    if (hak_heap_of(q) != owner)
        fail_msg("realloc(%zu -> %zu) changed the block's heap", *n, m);
    ht_tier_t t = ht_tier_of(q);
    /* a block that stayed in place may keep a bigger tier's block; a moved one must be in the size's tier */
    if (q != p && t != ht_expected_tier(m))
        fail_msg("realloc(%zu -> %zu) moved to tier %s, expected %s", *n, m, ht_tier_names[t],
                 ht_tier_names[ht_expected_tier(m)]);
    size_t keep = *n < m ? *n : m;
    HT_ASSERT_PATTERN(q, 0, keep, tag, "realloc(%zu -> %zu) %s", *n, m, q == p ? "in place" : "moved");
    if (m > keep)
        ht_fill_range(q, keep, m, tag);
    *n = m;
    return q;
}

/* ---- tracked blocks ------------------------------------------------------------------------------------ */
/* Sizes covering every tier: tiny (16 B .. 8 KiB), pool (8 KiB .. 256 KiB), large (> 256 KiB). */
static const size_t ht_tier_sizes[] = {
    1,       16,     24,     48,     100,
    128,     129,    500,    1000,   1024,
    2000,    4096,   8000,   8192,   8193,
    9000,    16384,  40000,  65536,  100000,
    200000,  262144, 262145, 300000, (size_t)1 << 20,
    3 << 20,
};
#define HT_TIER_SIZES (sizeof ht_tier_sizes / sizeof ht_tier_sizes[0])

/* A size from a mixed distribution: mostly tiny, some pool, a few large (1 in 128). */
static inline size_t ht_mixed_size(uint64_t r) {
    switch (r % 128) {
    case 0:
        return 262145 + (size_t)(r >> 8) % (768 * 1024);
    case 1:
    case 2:
    case 3:
    case 4:
        return 8193 + (size_t)(r >> 8) % (HT_SLAB_MAX - 8192);
    default:
        return 1 + (size_t)(r >> 8) % ((r >> 40) % 4 == 0 ? 8192 : 512);
    }
}

/* Stamped blocks carry (size, id) in their first 16 bytes and a pattern of id in the rest. */
typedef struct {
    uint64_t size;
    uint64_t id;
} ht_hdr_t;

static inline size_t ht_block_size(size_t n) { return n < sizeof(ht_hdr_t) ? sizeof(ht_hdr_t) : n; }

static inline void ht_stamp(void *p, size_t n, uint64_t id) {
    n = ht_block_size(n);
    ht_hdr_t h = {n, id};
    memcpy(p, &h, sizeof h);
    /* large blocks: pattern the first and last 4 KiB only (keeps multi-MiB blocks cheap) */
    if (n > 16384) {
        ht_fill((char *)p + sizeof h, 4096, id);
        ht_fill((char *)p + n - 4096, 4096, id ^ 0x5555);
    } else {
        ht_fill((char *)p + sizeof h, n - sizeof h, id);
    }
}

/* 0 if the stamped block is intact, else a code telling what is wrong. */
static inline int ht_verify(const void *p, uint64_t id) {
    ht_hdr_t h;
    memcpy(&h, p, sizeof h);
    if (h.id != id)
        return 1;
    if (hak_usable_size(p) < h.size)
        return 2;
    if (h.size > 16384) {
        if (ht_check((const char *)p + sizeof h, 4096, id) != (size_t)-1)
            return 3;
        if (ht_check((const char *)p + h.size - 4096, 4096, id ^ 0x5555) != (size_t)-1)
            return 4;
    } else if (ht_check((const char *)p + sizeof h, h.size - sizeof h, id) != (size_t)-1) {
        return 5;
    }
    return 0;
}

/* A stamped block of n bytes from heap, NULL if the allocation failed. */
static inline void *ht_make(hak_heap_t *heap, size_t n, uint64_t id) {
    void *p = hak_heap_alloc(heap, ht_block_size(n));
    if (p != NULL)
        ht_stamp(p, n, id);
    return p;
}

/* Marked blocks (n >= 16) carry their size and tag in their first 16 bytes, and the tag's positional pattern
 * in the rest of their first and last 2 KiB. */
static inline void ht_mark(unsigned char *p, size_t n, uint64_t tag) {
    uint64_t sz = n;
    memcpy(p, &sz, 8);
    memcpy(p + 8, &tag, 8);
    size_t head = n < 2048 ? n : 2048;
    ht_fill_range(p, 16, head, tag);
    if (n > 4096)
        ht_fill_range(p, n - 2048, n, tag);
}

/* Returns the first damaged offset of a marked block or (size_t)-1; *n_out and *tag_out receive the stored
 * size and tag. */
static inline size_t ht_check_mark(const unsigned char *p, size_t *n_out, uint64_t *tag_out) {
    uint64_t sz, tag;
    memcpy(&sz, p, 8);
    memcpy(&tag, p + 8, 8);
    *n_out = (size_t)sz;
    *tag_out = tag;
    size_t head = sz < 2048 ? (size_t)sz : 2048;
    size_t bad = ht_check_range(p, 16, head, tag);
    if (bad == (size_t)-1 && sz > 4096)
        bad = ht_check_range(p, (size_t)sz - 2048, (size_t)sz, tag);
    return bad;
}

/* ---- child processes ----------------------------------------------------------------------------------- */
/* Runs this executable again as `exe --child <name>` with `env` (NULL-terminated "K=V" strings) added to (and
 * overriding) the current environment. The child inherits stdout, and stderr unless err_fd >= 0 (then its
 * stderr goes there). Returns the wait status; kills the child after timeout_s seconds. */
static inline int ht_run_child_fd(const char *name, const char *const *env, int timeout_s, int err_fd) {
    char **envp = ht_env_merge(env);
    assert_non_null(envp);
    char *argv[] = {"/proc/self/exe", "--child", (char *)name, NULL};
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        if (err_fd >= 0)
            dup2(err_fd, 2);
        execve("/proc/self/exe", argv, envp);
        _exit(127);
    }
    free(envp);
    int status = 0;
    for (int waited_ms = 0;; waited_ms += 10) {
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid)
            break;
        assert_true(r == 0 || (r < 0 && errno == EINTR));
        if (waited_ms >= timeout_s * 1000) {
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            fail_msg("child '%s' timed out after %d s", name, timeout_s);
        }
        ht_sleep_ms(10);
    }
    return status;
}

static inline int ht_run_child(const char *name, const char *const *env, int timeout_s) {
    return ht_run_child_fd(name, env, timeout_s, -1);
}

/* Runs a child as ht_run_child does, with its stderr in buf (NUL-terminated, cut at cap - 1 bytes). */
static inline int ht_run_child_stderr(const char *name, const char *const *env, int timeout_s, char *buf,
                                      size_t cap) {
    char path[] = "/tmp/hakmem-test-stderr-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    unlink(path);
    int st = ht_run_child_fd(name, env, timeout_s, fd);
    ssize_t n = pread(fd, buf, cap - 1, 0);
    buf[n > 0 ? (size_t)n : 0] = '\0';
    close(fd);
    return st;
}

/* Runs a child and requires it to exit 0. */
#define HT_CHILD_OK(name, timeout_s, ...)                                                                    \
    do {                                                                                                     \
        const char *const env_[] = {__VA_ARGS__, NULL};                                                      \
        int st_ = ht_run_child((name), env_, (timeout_s));                                                   \
        if (!WIFEXITED(st_) || WEXITSTATUS(st_) != 0)                                                        \
            fail_msg("child '%s' failed: %s %d", (name), WIFEXITED(st_) ? "exit status" : "signal",          \
                     WIFEXITED(st_) ? WEXITSTATUS(st_) : WTERMSIG(st_));                                     \
    } while (0)

/* main() helper: `exe --child NAME` runs only the child test NAME from `children`. Returns -1 otherwise. */
static inline int ht_child_main(int argc, char **argv, const struct CMUnitTest *children, size_t count) {
    if (argc < 3 || strcmp(argv[1], "--child") != 0)
        return -1;
    for (size_t i = 0; i < count; i++)
        if (strcmp(children[i].name, argv[2]) == 0)
            return _cmocka_run_group_tests(argv[2], &children[i], 1, NULL, NULL) == 0 ? 0 : 1;
    fprintf(stderr, "unknown child test '%s'\n", argv[2]);
    return 2;
}

/* ---- a reusable barrier (pthread_barrier_t is optional in some libcs; this one also works under TSan) -- */
typedef struct {
    pthread_mutex_t m;
    pthread_cond_t c;
    unsigned count, waiting;
    unsigned long phase;
} ht_barrier_t;

static inline void ht_barrier_init(ht_barrier_t *b, unsigned count) {
    pthread_mutex_init(&b->m, NULL);
    pthread_cond_init(&b->c, NULL);
    b->count = count;
    b->waiting = 0;
    b->phase = 0;
}

static inline void ht_barrier_wait(ht_barrier_t *b) {
    pthread_mutex_lock(&b->m);
    unsigned long phase = b->phase;
    if (++b->waiting == b->count) {
        b->waiting = 0;
        b->phase++;
        pthread_cond_broadcast(&b->c);
    } else {
        while (phase == b->phase)
            pthread_cond_wait(&b->c, &b->m);
    }
    pthread_mutex_unlock(&b->m);
}

static inline void ht_barrier_destroy(ht_barrier_t *b) {
    pthread_cond_destroy(&b->c);
    pthread_mutex_destroy(&b->m);
}

#endif /* !HT_STANDALONE */
#endif /* HAKMEM_TEST_H */
