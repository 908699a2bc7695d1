/* Helpers shared by the tier tests (tests/tiers): the expected size classes computed independently of the
 * library's tables, the owning tier of a pointer, positional patterns over sub-ranges, BigCache snapshots,
 * and re-running one test of the same executable in a child process with extra environment variables
 * (options such as HAKMEM_BIGCACHE_MAX are read once at initialisation). Header-only; include after cmocka.h.
 */
#ifndef HAKMEM_TESTS_TIERS_UTIL_H
#define HAKMEM_TESTS_TIERS_UTIL_H

#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <hakmem/hakmem.h>

#include "bigcache/bigcache.h"
#include "bigcache/large.h"
#include "superslab/region_map.h"
#include "superslab/superslab.h"
#include "tiny/size_class.h"
#include "test_util.h"

extern char **environ;

#define TI_KIB ((size_t)1 << 10)
#define TI_MIB ((size_t)1 << 20)
#define TI_PAGE ((size_t)4096)
#define TI_LARGE_HEADER ((size_t)64) /* large blocks start 64 bytes into their mapping */
#define TI_CHUNK ((size_t)2 << 20)   /* large mappings are whole 2 MiB chunks, 2 MiB aligned */

#ifndef HAKMEM_TEST_SLOWDOWN
#define HAKMEM_TEST_SLOWDOWN 1
#endif

/* ---- expected size classes (from DESIGN.md, not from the library's tables) ----------------------------- */
enum { TI_MAX_CLASSES = 64 };
static size_t ti_classes[TI_MAX_CLASSES];
static unsigned ti_class_count;

static inline void ti_build_classes(void) {
    if (ti_class_count)
        return;
    unsigned n = 0;
    for (size_t s = 16; s <= 128; s += 16)
        ti_classes[n++] = s;
    for (size_t d = 128; d < HAK_SLAB_MAX_SIZE; d *= 2) {
        ti_classes[n++] = d + d / 4;
        ti_classes[n++] = d + d / 2;
        ti_classes[n++] = d + 3 * d / 4;
        ti_classes[n++] = 2 * d;
    }
    ti_class_count = n;
}

/* Smallest class holding n bytes (n <= 256 KiB); 0 maps to the 16 B class. */
static inline size_t ti_expected_class(size_t n) {
    ti_build_classes();
    for (unsigned i = 0; i < ti_class_count; i++)
        if (ti_classes[i] >= n)
            return ti_classes[i];
    return 0;
}

/* ---- tiers --------------------------------------------------------------------------------------------- */
typedef enum { TI_TIER_NONE = 0, TI_TIER_TINY, TI_TIER_POOL, TI_TIER_LARGE } ti_tier_t;
static const char *const ti_tier_names[] = {"none", "tiny", "pool", "large"};

/* Tier that owns p according to the region map and, for slab tiers, the span descriptor's size class. */
static inline ti_tier_t ti_tier_of(const void *p) {
    unsigned kind = hak_region_kind(p);
    if (kind == HAK_REGION_LARGE || kind == HAK_REGION_LARGE_FAR)
        return TI_TIER_LARGE;
    if (kind != HAK_REGION_SUPERSLAB)
        return TI_TIER_NONE;
    hak_slab_t *s = hak_slab_of(hak_ss_of(p), p);
    return s->cls < HAK_TINY_CLASS_COUNT ? TI_TIER_TINY : TI_TIER_POOL;
}

/* Tier a request of n bytes should land in. */
static inline ti_tier_t ti_expected_tier(size_t n) {
    if (n > HAK_SLAB_MAX_SIZE)
        return TI_TIER_LARGE;
    return n <= HAK_TINY_MAX_SIZE ? TI_TIER_TINY : TI_TIER_POOL;
}

/* ---- positional patterns over sub-ranges (agree byte for byte with tu_fill/tu_check) ------------------- */
static inline void ti_fill_range(void *p, size_t from, size_t to, uint64_t tag) {
    unsigned char *b = (unsigned char *)p;
    size_t i = from;
    for (; i < to && (i & 7); i++)
        b[i] = tu_pat(tag, i);
    for (; i + 8 <= to; i += 8) {
        uint64_t v = tu_mix(tag + (i >> 3));
        memcpy(b + i, &v, 8);
    }
    for (; i < to; i++)
        b[i] = tu_pat(tag, i);
}

/* First offset in [from, to) that differs from the pattern, or (size_t)-1. */
static inline size_t ti_check_range(const void *p, size_t from, size_t to, uint64_t tag) {
    const unsigned char *b = (const unsigned char *)p;
    size_t i = from;
    for (; i < to && (i & 7); i++)
        if (b[i] != tu_pat(tag, i))
            return i;
    for (; i + 8 <= to; i += 8) {
        uint64_t v = tu_mix(tag + (i >> 3)), w;
        memcpy(&w, b + i, 8);
        if (v != w)
            break;
    }
    for (; i < to; i++)
        if (b[i] != tu_pat(tag, i))
            return i;
    return (size_t)-1;
}

#define TI_ASSERT_PATTERN(p, from, to, tag, ...)                                                             \
    do {                                                                                                     \
        size_t bad_ = ti_check_range((p), (from), (to), (tag));                                              \
        if (bad_ != (size_t)-1) {                                                                            \
            print_error("pattern broken at offset %zu of %p (checked [%zu, %zu)): ", bad_, (void *)(p),      \
                        (size_t)(from), (size_t)(to));                                                       \
            fail_msg(__VA_ARGS__);                                                                           \
        }                                                                                                    \
    } while (0)

/* ---- large-block geometry (docs/ARCHITECTURE.md, "Large blocks and the BigCache") -------------------------
 * A large block of n bytes (alignment <= 64) starts 64 bytes into its mapping; its usable size is exact and
 * tight: header + n rounded up to a page, minus the header. Its mapping is that rounded up to whole chunks.
 */
static inline size_t ti_large_usable(size_t n) {
    return ((n + TI_LARGE_HEADER + TI_PAGE - 1) & ~(TI_PAGE - 1)) - TI_LARGE_HEADER;
}
static inline size_t ti_large_map(size_t n) {
    return (ti_large_usable(n) + TI_LARGE_HEADER + TI_CHUNK - 1) & ~(TI_CHUNK - 1);
}
/* The largest request whose mapping is exactly k chunks (its usable size is k chunks minus the header). */
static inline size_t ti_chunks_req(size_t k) { return k * TI_CHUNK - TI_LARGE_HEADER; }

/* True if no page of [p, p+len) is mapped (mincore fails with ENOMEM on an unmapped page). */
static inline int ti_unmapped(const void *p, size_t len) {
    unsigned char vec[1];
    for (size_t off = 0; off < len; off += TI_PAGE)
        if (mincore((void *)((uintptr_t)p + off), TI_PAGE, vec) == 0 || errno != ENOMEM)
            return 0;
    return 1;
}

/* ---- statistics ---------------------------------------------------------------------------------------- */
static inline hak_bigcache_info_t ti_bc(void) {
    hak_bigcache_info_t i;
    memset(&i, 0, sizeof i);
    hak_bigcache_info(&i);
    return i;
}

static inline hak_stats_t ti_stats(hak_heap_t *heap) {
    hak_stats_t st;
    memset(&st, 0, sizeof st);
    st.size = sizeof st;
    assert_int_equal(hak_heap_stats(heap, &st), 0);
    return st;
}

/* Virtual size and RSS of this process in bytes (/proc/self/statm). */
static inline void ti_statm(size_t *vm, size_t *rss) {
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

static inline void ti_sleep_ms(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* ---- child processes ----------------------------------------------------------------------------------- */
/* Runs this executable again as `exe --child <name>` with `env` (NULL-terminated "K=V" strings) added to (and
 * overriding) the current environment. The child inherits stdout/stderr. Returns the wait status; kills the
 * child after timeout_s seconds. */
static inline int ti_run_child(const char *name, const char *const *env, int timeout_s) {
    size_t n = 0, extra = 0;
    while (environ[n])
        n++;
    while (env && env[extra])
        extra++;
    char **envp = calloc(n + extra + 1, sizeof *envp);
    assert_non_null(envp);
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        int overridden = 0;
        for (size_t j = 0; j < extra; j++) {
            size_t key = (size_t)(strchr(env[j], '=') - env[j]);
            if (strncmp(environ[i], env[j], key + 1) == 0)
                overridden = 1;
        }
        if (!overridden)
            envp[k++] = environ[i];
    }
    for (size_t j = 0; j < extra; j++)
        envp[k++] = (char *)env[j];
    envp[k] = NULL;
    char *argv[] = {"/proc/self/exe", "--child", (char *)name, NULL};
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
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
        ti_sleep_ms(10);
    }
    return status;
}

/* Runs a child and requires it to exit 0. */
#define TI_CHILD_OK(name, timeout_s, ...)                                                                    \
    do {                                                                                                     \
        const char *const env_[] = {__VA_ARGS__, NULL};                                                      \
        int st_ = ti_run_child((name), env_, (timeout_s));                                                   \
        if (!WIFEXITED(st_) || WEXITSTATUS(st_) != 0)                                                        \
            fail_msg("child '%s' failed: %s %d", (name), WIFEXITED(st_) ? "exit status" : "signal",          \
                     WIFEXITED(st_) ? WEXITSTATUS(st_) : WTERMSIG(st_));                                     \
    } while (0)

/* main() helper: `exe --child NAME` runs only the child test NAME from `children`. Returns -1 otherwise. */
static inline int ti_child_main(int argc, char **argv, const struct CMUnitTest *children, size_t count) {
    if (argc < 3 || strcmp(argv[1], "--child") != 0)
        return -1;
    for (size_t i = 0; i < count; i++)
        if (strcmp(children[i].name, argv[2]) == 0)
            return _cmocka_run_group_tests(argv[2], &children[i], 1, NULL, NULL) == 0 ? 0 : 1;
    fprintf(stderr, "unknown child test '%s'\n", argv[2]);
    return 2;
}

#endif
