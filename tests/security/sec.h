/* SPDX-License-Identifier: MIT */
/* sec.h: the common part of the security tests (tests/security/): each attack of the hardening issue runs in
 * a child process (this executable, re-run as `exe --child NAME`), and the test checks what the child and
 * hakmem said.
 *
 * Attack bodies use hakmem's public API (or, in test_override.c, the malloc family) and the C library only,
 * so the same sources build against an older tree (see run_old_tree.sh). They talk to the parent through
 * stdout, one line at a time, written with write(2) so that nothing is lost when the child aborts:
 *   EXPECT <p> [<q> ...]  a report must follow that names one of these pointers (the test knows the value)
 *   BAD <what>            something the hardening must prevent happened (malloc returned the attacker's
 *                         address, a block was handed out twice, a mapping vanished...): the child exits 3
 *                         at once, and the test fails whatever else happened
 *   DONE                  the attack ran to its end (HAKMEM_ON_ERROR=warn: hakmem reported and carried on)
 *
 * Parent side: sec_expect_abort (default mode: report, SIGABRT, no BAD), sec_expect_warn
 * (HAKMEM_ON_ERROR=warn: report, DONE, exit 0, no BAD), sec_expect_clean (no report, DONE, exit 0) and
 * sec_attack (both of the first two). Tests of what HAKMEM_CHECKS=OFF compiles out start with
 * SEC_NEEDS_CHECKS(), a cmocka skip in such builds. Attacks this suite found uncaught go in a separate list
 * of tests run by `exe --known-bugs` (SEC_MAIN_KNOWN), registered as security_found_* in CMakeLists.txt. */
#ifndef HAKMEM_SECURITY_SEC_H
#define HAKMEM_SECURITY_SEC_H

#define HT_STANDALONE /* the libc-only helpers: no hakmem internals, so this builds against any tree */
#include "hakmem_test.h"

#include <stdarg.h>
#include <setjmp.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdint.h>
#include <sys/mman.h>

#include <hakmem/hakmem.h>

#ifndef HAKMEM_CHECKS
#define HAKMEM_CHECKS 1 /* set by the top-level CMakeLists.txt; the default build has the checks on */
#endif

#define SEC_NEEDS_CHECKS()                                                                                   \
    do {                                                                                                     \
        if (!HAKMEM_CHECKS)                                                                                  \
            skip(); /* the build compiled the checks out (-DHAKMEM_CHECKS=OFF) */                            \
    } while (0)

#define SEC_TIMEOUT_S (20 * HT_SLOWDOWN) /* a child that takes longer hangs (see sec_timeout_s) */

/* ==== child side ==== */

/* One line on stdout, in one write(2). */
__attribute__((format(printf, 1, 2))) static inline void sec_say(const char *fmt, ...) {
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf - 1, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n > sizeof buf - 2)
        n = (int)sizeof buf - 2;
    if (n == 0 || buf[n - 1] != '\n')
        buf[n++] = '\n';
    for (const char *p = buf; n > 0;) {
        ssize_t w = write(1, p, (size_t)n);
        if (w <= 0)
            return;
        p += w;
        n -= (int)w;
    }
}

/* The next report must name p (or, SEC_EXPECT2, one of p and q). */
#define SEC_EXPECT(p) sec_say("EXPECT %p", (const void *)(p))
#define SEC_EXPECT2(p, q) sec_say("EXPECT %p %p", (const void *)(p), (const void *)(q))

/* Something bad happened: says what, and ends the child (exit 3). */
__attribute__((format(printf, 1, 2), noreturn)) static inline void sec_bad(const char *fmt, ...) {
    char buf[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    sec_say("BAD %s", buf);
    _exit(3);
}

/* HAKMEM_ON_ERROR=warn is set: past a report, the child must show that hakmem left the bad pointer alone.
 * (In default mode a child that gets past its attack was not stopped by a report.) */
static inline int sec_warn_mode(void) {
    const char *v = getenv("HAKMEM_ON_ERROR");
    return v != NULL && strcmp(v, "warn") == 0;
}

static inline int sec_done(void) {
    sec_say("DONE");
    return 0;
}

/* The attacker's chosen address: a global that a corrupted free list would hand out (writable and zero, so
 * that an allocator that follows it does not crash first and the test sees what it returned). */
static unsigned char sec_target[4096] __attribute__((aligned(4096), unused));

static inline int sec_is_target(const void *p) {
    uintptr_t a = (uintptr_t)p, t = (uintptr_t)sec_target;
    return a >= t && a < t + sizeof sec_target;
}

static inline void sec_check_not_target(const void *p, const char *what) {
    if (sec_is_target(p))
        sec_bad("%s returned %p, the attacker's address (a global)", what, p);
}

static inline int sec_cmp_ptr(const void *a, const void *b) {
    uintptr_t x = (uintptr_t) * (void *const *)a, y = (uintptr_t) * (void *const *)b;
    return x < y ? -1 : x > y;
}

/* v[0..n) are live blocks of at least `size` bytes each: none is NULL or the attacker's address, and no two
 * overlap (a block handed out twice). Sorts v. */
static inline void sec_check_distinct(void **v, size_t n, size_t size, const char *what) {
    for (size_t i = 0; i < n; i++) {
        if (v[i] == NULL)
            sec_bad("%s: allocation %zu of %zu bytes failed", what, i, size);
        sec_check_not_target(v[i], what);
    }
    qsort(v, n, sizeof *v, sec_cmp_ptr);
    for (size_t i = 1; i < n; i++)
        if (v[i] == v[i - 1])
            sec_bad("%s: block %p handed out twice", what, v[i]);
        else if ((uintptr_t)v[i] < (uintptr_t)v[i - 1] + size)
            sec_bad("%s: blocks %p and %p overlap", what, v[i - 1], v[i]);
}

/* Allocates n blocks of `size` with alloc_fn and checks them together with the live blocks live[0..nlive)
 * (sec_check_distinct: every block taken as `size` bytes), writes and frees them (free_fn); live stays. */
static inline void sec_churn(void *(*alloc_fn)(size_t), void (*free_fn)(void *), size_t size, size_t n,
                             void *const *live, size_t nlive, const char *what) {
    void **v = calloc(n + nlive, sizeof *v), **mine = calloc(n, sizeof *mine);
    if (v == NULL || mine == NULL)
        sec_bad("%s: out of memory for the test's own arrays", what);
    for (size_t i = 0; i < n; i++) {
        v[i] = mine[i] = alloc_fn(size);
        sec_check_not_target(v[i], what);
    }
    for (size_t i = 0; i < nlive; i++)
        v[n + i] = live[i];
    sec_check_distinct(v, n + nlive, size, what);
    for (size_t i = 0; i < n; i++)
        memset(mine[i], (int)(i & 0xff), size);
    for (size_t i = 0; i < n; i++)
        free_fn(mine[i]);
    free(mine);
    free(v);
}

/* True if every page of [p, p + len) is mapped (mincore fails with ENOMEM on an unmapped page). */
static inline int sec_mapped(const void *p, size_t len) {
    uintptr_t a = (uintptr_t)p & ~(uintptr_t)4095, end = (uintptr_t)p + len;
    unsigned char vec[64];
    while (a < end) {
        size_t pages = (end - a + 4095) / 4096;
        if (pages > sizeof vec)
            pages = sizeof vec;
        if (mincore((void *)a, pages * 4096, vec) != 0)
            return 0;
        a += pages * 4096;
    }
    return 1;
}

/* Runs fn(arg) in a new thread and joins it (the child ends if the thread cannot start). */
static inline void sec_in_thread(void *(*fn)(void *), void *arg) {
    pthread_t t;
    if (pthread_create(&t, NULL, fn, arg) != 0)
        sec_bad("pthread_create failed");
    pthread_join(t, NULL);
}

/* ==== parent side ==== */

typedef struct {
    const char *name;
    int (*fn)(void);
} sec_attack_t;

/* The timeout of the next children, in seconds (a test that runs a long child raises it). */
static int sec_timeout_s __attribute__((unused)) = SEC_TIMEOUT_S;

/* Extra environment of every child ("K=V", or a bare "K" to remove K); test_override.c adds LD_PRELOAD. */
static const char *sec_child_env[4] __attribute__((unused));

/* Runs the child `name` with HAKMEM_ON_ERROR=on_error (NULL: unset) and `extra` (NULL-terminated, or NULL).
 */
static inline void sec_run(const char *name, const char *on_error, const char *const *extra,
                           ht_capture_t *r) {
    const char *env[16];
    size_t k = 0;
    static char on_error_buf[64];
    if (on_error != NULL) {
        snprintf(on_error_buf, sizeof on_error_buf, "HAKMEM_ON_ERROR=%s", on_error);
        env[k++] = on_error_buf;
    } else {
        env[k++] = "HAKMEM_ON_ERROR";
    }
    env[k++] = "HAKMEM_SHOW_STATS"; /* stderr holds what the attack made hakmem say, nothing else */
    for (size_t i = 0; i < sizeof sec_child_env / sizeof sec_child_env[0] && sec_child_env[i]; i++)
        env[k++] = sec_child_env[i];
    for (size_t i = 0; extra != NULL && extra[i] != NULL && k + 1 < sizeof env / sizeof env[0]; i++)
        env[k++] = extra[i];
    env[k] = NULL;
    char *argv[] = {"/proc/self/exe", "--child", (char *)name, NULL};
    ht_capture("/proc/self/exe", argv, env, sec_timeout_s, r);
    if (!r->started)
        fail_msg("child '%s' could not be started", name);
}

/* The child's output, for failure messages. */
static inline void sec_print_output(const char *name, const char *mode, const ht_capture_t *r) {
    char st[64];
    print_error("child '%s' (%s): %s\n---- stdout ----\n%s---- stderr ----\n%s----\n", name, mode,
                ht_status_text(r, st, sizeof st), r->out, r->err);
}

#define SEC_FAIL(name, mode, r, ...)                                                                         \
    do {                                                                                                     \
        sec_print_output((name), (mode), (r));                                                               \
        fail_msg(__VA_ARGS__);                                                                               \
    } while (0)

/* Does some line of stderr start with "hakmem: error:" and name the pointer v? */
static inline int sec_reported(const char *err, uintptr_t v) {
    for (const char *line = err; line && *line;) {
        const char *nl = strchr(line, '\n');
        size_t len = nl ? (size_t)(nl - line) : strlen(line);
        if (strncmp(line, "hakmem: error:", 14) == 0) {
            char buf[512];
            size_t n = len < sizeof buf - 1 ? len : sizeof buf - 1;
            memcpy(buf, line, n);
            buf[n] = '\0';
            if (ht_mentions_pointer(buf, v))
                return 1;
        }
        line = nl ? nl + 1 : NULL;
    }
    return 0;
}

/* What every run must show: it ended by itself, said nothing BAD, and every EXPECT line was answered by a
 * hakmem error report naming one of its pointers (if `reported`), or there is no report at all. */
static inline void sec_check_common(const char *name, const char *mode, const ht_capture_t *r, int reported) {
    if (r->timed_out)
        SEC_FAIL(name, mode, r, "child '%s' (%s) hung: killed after %d s", name, mode, sec_timeout_s);
    const char *bad = strstr(r->out, "BAD ");
    if (bad != NULL) {
        const char *nl = strchr(bad, '\n');
        SEC_FAIL(name, mode, r, "child '%s' (%s): %.*s", name, mode, nl ? (int)(nl - bad) : (int)strlen(bad),
                 bad);
    }
    if (WIFSIGNALED(r->status) && WTERMSIG(r->status) != SIGABRT)
        SEC_FAIL(name, mode, r, "child '%s' (%s) crashed: signal %d (%s)", name, mode, WTERMSIG(r->status),
                 strsignal(WTERMSIG(r->status)));
    int any_report = strstr(r->err, "hakmem: error:") != NULL;
    if (!reported) {
        if (any_report)
            SEC_FAIL(name, mode, r, "child '%s' (%s): hakmem reported an error where nothing was wrong", name,
                     mode);
        return;
    }
    if (!any_report)
        SEC_FAIL(name, mode, r, "child '%s' (%s): no 'hakmem: error:' report", name, mode);
    int expects = 0;
    for (const char *e = strstr(r->out, "EXPECT "); e != NULL; e = strstr(e + 1, "EXPECT ")) {
        expects++;
        const char *s = e + 7;
        int found = 0;
        while (*s != '\n' && *s != '\0') {
            char *end;
            unsigned long long v = strtoull(s, &end, 16);
            if (end == s)
                break;
            found |= sec_reported(r->err, (uintptr_t)v);
            s = end;
            while (*s == ' ')
                s++;
        }
        if (!found) {
            const char *nl = strchr(e, '\n');
            SEC_FAIL(name, mode, r, "child '%s' (%s): no hakmem report names the pointer of '%.*s'", name,
                     mode, nl ? (int)(nl - e) : (int)strlen(e), e);
        }
    }
    if (expects == 0)
        SEC_FAIL(name, mode, r, "child '%s' (%s) never reached its attack (no EXPECT line)", name, mode);
}

/* Default mode: the attack is reported and the child aborts (SIGABRT); nothing bad before that. */
static inline void sec_expect_abort(const char *name, const char *const *extra) {
    ht_capture_t *r = malloc(sizeof *r);
    assert_non_null(r);
    sec_run(name, NULL, extra, r);
    sec_check_common(name, "default mode", r, 1);
    if (r->timed_out || !WIFSIGNALED(r->status) || WTERMSIG(r->status) != SIGABRT) {
        char st[64];
        SEC_FAIL(name, "default mode", r, "child '%s' (default mode): %s, expected SIGABRT", name,
                 ht_status_text(r, st, sizeof st));
    }
    free(r);
}

/* HAKMEM_ON_ERROR=warn: reported, then the child carries on to its end (DONE) and exits 0. */
static inline void sec_expect_warn(const char *name, const char *const *extra) {
    ht_capture_t *r = malloc(sizeof *r);
    assert_non_null(r);
    sec_run(name, "warn", extra, r);
    sec_check_common(name, "HAKMEM_ON_ERROR=warn", r, 1);
    if (!WIFEXITED(r->status) || WEXITSTATUS(r->status) != 0 || strstr(r->out, "DONE") == NULL) {
        char st[64];
        SEC_FAIL(name, "HAKMEM_ON_ERROR=warn", r, "child '%s' (HAKMEM_ON_ERROR=warn): %s%s, expected exit 0",
                 name, ht_status_text(r, st, sizeof st), strstr(r->out, "DONE") ? "" : " before its end");
    }
    free(r);
}

/* Nothing wrong: no report at all, the child runs to its end and exits 0. */
static inline void sec_expect_clean(const char *name, const char *const *extra) {
    ht_capture_t *r = malloc(sizeof *r);
    assert_non_null(r);
    sec_run(name, NULL, extra, r);
    sec_check_common(name, "default mode", r, 0);
    if (!WIFEXITED(r->status) || WEXITSTATUS(r->status) != 0 || strstr(r->out, "DONE") == NULL) {
        char st[64];
        SEC_FAIL(name, "default mode", r, "child '%s': %s, expected exit 0 after its end", name,
                 ht_status_text(r, st, sizeof st));
    }
    free(r);
}

/* Both modes. */
static inline void sec_attack(const char *name) {
    sec_expect_abort(name, NULL);
    sec_expect_warn(name, NULL);
}

/* main(): `exe --child NAME` runs the attack NAME; `exe --known-bugs` runs the tests of `known` (attacks the
 * the suite found uncaught, fixed since, registered as security_found_* in CMake);
 * anything else runs the cmocka tests. */
static inline int sec_main(int argc, char **argv, const sec_attack_t *attacks, size_t n_attacks,
                           const struct CMUnitTest *tests, size_t n_tests, const struct CMUnitTest *known,
                           size_t n_known, const char *group) {
    if (argc >= 3 && strcmp(argv[1], "--child") == 0) {
        for (size_t i = 0; i < n_attacks; i++)
            if (strcmp(attacks[i].name, argv[2]) == 0)
                return attacks[i].fn();
        fprintf(stderr, "unknown child '%s'\n", argv[2]);
        return 2;
    }
    if (argc >= 2 && strcmp(argv[1], "--known-bugs") == 0) {
        if (n_known == 0) {
            fprintf(stderr, "%s: no known bugs\n", group);
            return 0;
        }
        return _cmocka_run_group_tests("known bugs", known, n_known, NULL, NULL);
    }
    return _cmocka_run_group_tests(group, tests, n_tests, NULL, NULL);
}

#define SEC_ATTACK(fn)                                                                                       \
    { #fn, fn }
#define SEC_COUNT(a) (sizeof(a) / sizeof((a)[0]))
#define SEC_MAIN(attacks, tests)                                                                             \
    sec_main(argc, argv, attacks, SEC_COUNT(attacks), tests, SEC_COUNT(tests), NULL, 0, __FILE__)
#define SEC_MAIN_KNOWN(attacks, tests, known)                                                                \
    sec_main(argc, argv, attacks, SEC_COUNT(attacks), tests, SEC_COUNT(tests), known, SEC_COUNT(known),      \
             __FILE__)

#endif
