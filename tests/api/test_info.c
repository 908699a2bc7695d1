/* SPDX-License-Identifier: MIT */
/* The library's version (hak_version, hak_version_number, against the CMake project version), the options
 * from code (hak_option_get / hak_option_set: values, errors, effects at run time, from many threads at
 * once), and HAKMEM_VERBOSE. Children run with extra environment variables and their stderr captured. */
#include "hakmem_test.h"

#include <pthread.h>
#include <stdatomic.h>

#ifndef HT_PROJECT_VERSION
#error "tests/api/CMakeLists.txt defines HT_PROJECT_VERSION (the CMake project version)"
#endif

static void test_version(void **state) {
    (void)state;
    assert_string_equal(hak_version(), HT_PROJECT_VERSION);
    char expect[32];
    snprintf(expect, sizeof expect, "%d.%d.%d", HAKMEM_VERSION_MAJOR, HAKMEM_VERSION_MINOR,
             HAKMEM_VERSION_PATCH);
    assert_string_equal(hak_version(), expect);
    assert_int_equal(hak_version_number(), HAKMEM_VERSION_NUMBER);
    assert_int_equal(HAKMEM_VERSION_NUMBER,
                     HAKMEM_VERSION_MAJOR * 10000 + HAKMEM_VERSION_MINOR * 100 + HAKMEM_VERSION_PATCH);
}

static long long get(const char *name) {
    long long v = -1;
    if (hak_option_get(name, &v) != 0)
        fail_msg("hak_option_get(%s) failed: errno %d", name, errno);
    return v;
}

static void expect_einval_set(const char *name, long long v) {
    errno = 0;
    assert_int_equal(hak_option_set(name, v), -1);
    assert_int_equal(errno, EINVAL);
}

/* Defaults (in a child with none of the variables set), then values from the environment. */
static void child_defaults(void **state) {
    (void)state;
    assert_int_equal(get("HAKMEM_ON_ERROR"), 1);
    assert_int_equal(get("HAKMEM_SHOW_STATS"), 0);
    assert_int_equal(get("HAKMEM_PURGE_DELAY_MS"), 1000);
    assert_int_equal(get("HAKMEM_BIGCACHE_MAX"), 256ll << 20);
    assert_int_equal(get("HAKMEM_SUPERSLAB_CACHE"), 64);
    assert_int_equal(get("HAKMEM_VERBOSE"), 0);
}

static void child_from_environment(void **state) {
    (void)state;
    assert_int_equal(get("HAKMEM_ON_ERROR"), 0); /* warn */
    assert_int_equal(get("HAKMEM_PURGE_DELAY_MS"), 1234);
    assert_int_equal(get("HAKMEM_BIGCACHE_MAX"), 3ll << 20);
    assert_int_equal(get("HAKMEM_SUPERSLAB_CACHE"), 7);
}

static void test_options_defaults_and_environment(void **state) {
    (void)state;
    HT_CHILD_OK("child_defaults", 60, "HAKMEM_ON_ERROR=abort", "HAKMEM_SHOW_STATS=0",
                "HAKMEM_PURGE_DELAY_MS=1000", "HAKMEM_BIGCACHE_MAX=256m", "HAKMEM_SUPERSLAB_CACHE=64",
                "HAKMEM_VERBOSE=0");
    HT_CHILD_OK("child_from_environment", 60, "HAKMEM_ON_ERROR=warn", "HAKMEM_PURGE_DELAY_MS=1234",
                "HAKMEM_BIGCACHE_MAX=3M", "HAKMEM_SUPERSLAB_CACHE=7");
}

static void test_options_errors(void **state) {
    (void)state;
    long long v;
    errno = 0;
    assert_int_equal(hak_option_get("HAKMEM_NO_SUCH_OPTION", &v), -1);
    assert_int_equal(errno, EINVAL);
    errno = 0;
    assert_int_equal(hak_option_get(NULL, &v), -1);
    assert_int_equal(errno, EINVAL);
    errno = 0;
    assert_int_equal(hak_option_get("HAKMEM_VERBOSE", NULL), -1);
    assert_int_equal(errno, EINVAL);
    errno = 0;
    assert_int_equal(hak_option_get("hakmem_verbose", &v), -1); /* names are exact */
    assert_int_equal(errno, EINVAL);
    expect_einval_set("HAKMEM_NO_SUCH_OPTION", 1);
    expect_einval_set(NULL, 1);
    expect_einval_set("HAKMEM_PURGE_DELAY_MS", -1);
    expect_einval_set("HAKMEM_ON_ERROR", 2);
    expect_einval_set("HAKMEM_SHOW_STATS", 2);
    expect_einval_set("HAKMEM_VERBOSE", -5);
    expect_einval_set("HAKMEM_BIGCACHE_MAX", (1ll << 47) + 1);
    expect_einval_set("HAKMEM_SUPERSLAB_CACHE", 1ll << 40);
    expect_einval_set("HAKMEM_PURGE_DELAY_MS", (1ll << 53) + 1);
    /* a failed set changes nothing */
    long long before = get("HAKMEM_PURGE_DELAY_MS");
    expect_einval_set("HAKMEM_PURGE_DELAY_MS", -7);
    assert_int_equal(get("HAKMEM_PURGE_DELAY_MS"), before);
}

static void test_options_set_get(void **state) {
    (void)state;
    const char *names[] = {"HAKMEM_PURGE_DELAY_MS", "HAKMEM_BIGCACHE_MAX", "HAKMEM_SUPERSLAB_CACHE"};
    for (size_t i = 0; i < 3; i++) {
        long long old = get(names[i]);
        assert_int_equal(hak_option_set(names[i], 12345), 0);
        assert_int_equal(get(names[i]), 12345);
        assert_int_equal(hak_option_set(names[i], old), 0);
        assert_int_equal(get(names[i]), old);
    }
    assert_int_equal(hak_option_set("HAKMEM_BIGCACHE_MAX", 1ll << 47), 0); /* the largest value */
    assert_int_equal(hak_option_set("HAKMEM_BIGCACHE_MAX", 256ll << 20), 0);
}

/* Lowering the cache bounds takes effect at once: the BigCache and the SuperSlab cache are emptied. */
static void child_lower_bounds(void **state) {
    (void)state;
    void *big[4];
    for (int i = 0; i < 4; i++) {
        big[i] = hak_alloc(3 * HT_MIB);
        assert_non_null(big[i]);
        memset(big[i], 1, HT_PAGE);
    }
    for (int i = 0; i < 4; i++)
        hak_free(big[i]);
    assert_true(ht_bigcache().entries > 0);
    assert_int_equal(hak_option_set("HAKMEM_BIGCACHE_MAX", 0), 0);
    assert_int_equal(ht_bigcache().entries, 0);
    /* a SuperSlab emptied by a heap's destroy stays committed in the cache, until the bound is lowered */
    hak_heap_t *h = hak_heap_create(NULL);
    assert_non_null(h);
    assert_non_null(hak_heap_alloc(h, 100));
    hak_heap_destroy(h);
    uint64_t count, warm;
    hak_ss_cache_stats(&count, &warm);
    assert_true(warm > 0);
    assert_int_equal(hak_option_set("HAKMEM_SUPERSLAB_CACHE", 0), 0);
    hak_ss_cache_stats(&count, &warm);
    assert_int_equal(warm, 0);
    assert_true(count > 0); /* purged, still cached */
}

static void test_options_lower_bounds(void **state) {
    (void)state;
    HT_CHILD_OK("child_lower_bounds", 60, "HAKMEM_PURGE_DELAY_MS=600000", "HAKMEM_BIGCACHE_MAX=256M",
                "HAKMEM_SUPERSLAB_CACHE=64");
}

/* HAKMEM_ON_ERROR set from code: warn, a bad free is reported and ignored; abort again, the next one aborts.
 */
static void child_on_error(void **state) {
    (void)state;
    static char not_ours[64];
    assert_int_equal(hak_option_set("HAKMEM_ON_ERROR", 0), 0);
    hak_free(not_ours + 16);
    fprintf(stderr, "still running\n");
    fflush(stderr);
    assert_int_equal(hak_option_set("HAKMEM_ON_ERROR", 1), 0);
    hak_free(not_ours + 16);
    fprintf(stderr, "not reached\n");
}

static void test_options_on_error_at_run_time(void **state) {
    (void)state;
    char err[4096];
    const char *const env[] = {"HAKMEM_ON_ERROR=abort", NULL};
    int st = ht_run_child_stderr("child_on_error", env, 60, err, sizeof err);
    if (!WIFSIGNALED(st) || WTERMSIG(st) != SIGABRT)
        fail_msg("the second bad free did not abort (status %d); stderr:\n%s", st, err);
    assert_non_null(strstr(err, "(ignored)\nstill running\n"));
    assert_non_null(strstr(err, "(aborting; set HAKMEM_ON_ERROR=warn to continue)"));
    assert_null(strstr(err, "not reached"));
}

/* HAKMEM_SHOW_STATS turned on from code: the statistics appear at exit. */
static void child_show_stats(void **state) {
    (void)state;
    assert_int_equal(hak_option_set("HAKMEM_SHOW_STATS", 1), 0);
    assert_non_null(hak_alloc(100));
}

static void test_options_show_stats_at_run_time(void **state) {
    (void)state;
    char err[16384];
    const char *const env[] = {"HAKMEM_SHOW_STATS=0", NULL};
    int st = ht_run_child_stderr("child_show_stats", env, 60, err, sizeof err);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    assert_non_null(strstr(err, "hakmem stats (process)"));
}

/* HAKMEM_VERBOSE=1: the version, then one line per option with its value and where it came from. */
static void child_verbose(void **state) {
    (void)state;
    assert_int_equal(get("HAKMEM_VERBOSE"), 1);
    fprintf(stderr, "--- set from code\n");
    fflush(stderr);
    assert_int_equal(hak_option_set("HAKMEM_PURGE_DELAY_MS", 77), 0);
    assert_int_equal(hak_option_set("HAKMEM_VERBOSE", 1), 0); /* prints them again */
}

static void test_verbose(void **state) {
    (void)state;
    static char err[16384];
    const char *const env[] = {"HAKMEM_VERBOSE=1",     "HAKMEM_PURGE_DELAY_MS=250",
                               "HAKMEM_ON_ERROR=warn", "HAKMEM_BIGCACHE_MAX=junk",
                               "HAKMEM_SHOW_STATS=0",  NULL};
    int st = ht_run_child_stderr("child_verbose", env, 60, err, sizeof err);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
        fail_msg("child failed (%d); stderr:\n%s", st, err);
    char version[64];
    snprintf(version, sizeof version, "hakmem: version %s, options in effect:\n", hak_version());
    const char *at_init = strstr(err, version);
    assert_non_null(at_init);
    static const char *const lines[] = {
        "hakmem: option HAKMEM_ON_ERROR=warn (environment)\n",
        "hakmem: option HAKMEM_SHOW_STATS=0 (environment)\n",
        "hakmem: option HAKMEM_PURGE_DELAY_MS=250 (environment)\n",
        "hakmem: option HAKMEM_BIGCACHE_MAX=268435456 (default)\n", /* the bad value was reported, not used */
        "hakmem: option HAKMEM_SUPERSLAB_CACHE=64 (default)\n",
        "hakmem: option HAKMEM_VERBOSE=1 (environment)\n",
    };
    const char *at = at_init + strlen(version);
    for (size_t i = 0; i < sizeof lines / sizeof lines[0]; i++) {
        if (strncmp(at, lines[i], strlen(lines[i])) != 0)
            fail_msg("expected line %zu: %sstderr:\n%s", i, lines[i], err);
        at += strlen(lines[i]);
    }
    /* the option error came first, from the environment scan */
    const char *warning = strstr(err, "hakmem: warning: HAKMEM_BIGCACHE_MAX=junk");
    assert_non_null(warning);
    assert_true(warning < at_init);
    /* printed again after hak_option_set("HAKMEM_VERBOSE", 1) */
    const char *again = strstr(at, "--- set from code\n");
    assert_non_null(again);
    assert_non_null(strstr(again, version));
    assert_non_null(strstr(again, "hakmem: option HAKMEM_PURGE_DELAY_MS=77 (hak_option_set)\n"));
    assert_non_null(strstr(again, "hakmem: option HAKMEM_VERBOSE=1 (hak_option_set)\n"));
}

static void test_verbose_off(void **state) {
    (void)state;
    char err[4096];
    const char *const env[] = {"HAKMEM_VERBOSE=0", NULL};
    int st = ht_run_child_stderr("child_defaults", env, 60, err, sizeof err);
    assert_true(WIFEXITED(st));
    assert_null(strstr(err, "hakmem: option"));
}

/* Options changed from several threads while others allocate and free large blocks (the BigCache reads its
 * bound and the purge delay on every operation): no torn values, no races (tsan). */
static atomic_int thread_failures;

static void *option_setter(void *arg) {
    (void)arg;
    for (int i = 0; i < 2000; i++) {
        long long v = (i & 1) ? (64ll << 20) : (4ll << 20);
        if (hak_option_set("HAKMEM_BIGCACHE_MAX", v) != 0 || hak_option_set("HAKMEM_PURGE_DELAY_MS", i % 50))
            HT_THREAD_FAIL(thread_failures, "hak_option_set failed");
        long long got;
        if (hak_option_get("HAKMEM_BIGCACHE_MAX", &got) != 0 || (got != 4ll << 20 && got != 64ll << 20))
            HT_THREAD_FAIL(thread_failures, "HAKMEM_BIGCACHE_MAX read back as %lld", got);
    }
    return NULL;
}

static void *large_churn(void *arg) {
    int id = (int)(intptr_t)arg;
    for (size_t i = 0; i < HT_SCALE(400); i++) {
        void *p = hak_alloc((i % 4 + 1) * HT_MIB);
        if (p == NULL) {
            HT_THREAD_FAIL(thread_failures, "large allocation failed");
            return NULL;
        }
        memset(p, id, 4096);
        hak_free(p);
    }
    return NULL;
}

static void test_options_concurrent(void **state) {
    (void)state;
    pthread_t t[4];
    for (int i = 0; i < 4; i++)
        assert_int_equal(
            pthread_create(&t[i], NULL, i < 2 ? option_setter : large_churn, (void *)(intptr_t)i), 0);
    for (int i = 0; i < 4; i++)
        assert_int_equal(pthread_join(t[i], NULL), 0);
    assert_int_equal(atomic_load(&thread_failures), 0);
    assert_int_equal(hak_option_set("HAKMEM_BIGCACHE_MAX", 256ll << 20), 0);
    assert_int_equal(hak_option_set("HAKMEM_PURGE_DELAY_MS", 1000), 0);
}

int main(int argc, char **argv) {
    const struct CMUnitTest children[] = {
        cmocka_unit_test(child_defaults),     cmocka_unit_test(child_from_environment),
        cmocka_unit_test(child_lower_bounds), cmocka_unit_test(child_on_error),
        cmocka_unit_test(child_show_stats),   cmocka_unit_test(child_verbose),
    };
    int rc = ht_child_main(argc, argv, children, sizeof children / sizeof children[0]);
    if (rc >= 0)
        return rc;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_version),
        cmocka_unit_test(test_options_defaults_and_environment),
        cmocka_unit_test(test_options_errors),
        cmocka_unit_test(test_options_set_get),
        cmocka_unit_test(test_options_lower_bounds),
        cmocka_unit_test(test_options_on_error_at_run_time),
        cmocka_unit_test(test_options_show_stats_at_run_time),
        cmocka_unit_test(test_verbose),
        cmocka_unit_test(test_verbose_off),
        cmocka_unit_test(test_options_concurrent),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
