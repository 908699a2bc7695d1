/* SPDX-License-Identifier: MIT */
/* Bad option values (issue item 8). Before the hardening HAKMEM_* values were parsed without a word: a size
 * that overflows wrapped around (HAKMEM_BIGCACHE_MAX=99999999999999g became some other size), junk was
 * ignored or read as its leading digits, an unknown HAKMEM_ON_ERROR word meant abort and HAKMEM_SHOW_STATS=2
 * meant "no". Each bad value must now print exactly one line on stderr that names the variable, the value
 * and what is used instead ("...; using X"), and the process must run normally (a small workload over every
 * tier, exit 0). Options are read once at start-up, so each value gets its own child. */
#include "sec.h"

/* The child: a workload over the tiers, nothing else on stderr. */
static int options_workload(void) {
    static const size_t sizes[] = {16, 48, 1000, 8192, 20000, 200000, 1 << 20, 5 << 20};
    void *v[sizeof sizes / sizeof sizes[0]][8];
    for (int round = 0; round < 4; round++) {
        for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
            for (int k = 0; k < 8; k++) {
                v[i][k] = hak_alloc(sizes[i]);
                if (v[i][k] == NULL)
                    sec_bad("hak_alloc(%zu) failed", sizes[i]);
                memset(v[i][k], k, sizes[i] < 4096 ? sizes[i] : 4096);
            }
        for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
            for (int k = 0; k < 8; k++)
                hak_free(v[i][k]);
    }
    hak_collect(1);
    return sec_done();
}

/* `name`=`value`: one line on stderr naming both and saying what is used instead, and a normal run. */
static void bad_option(const char *name, const char *value) {
    char env[128];
    snprintf(env, sizeof env, "%s=%s", name, value);
    const char *extra[] = {env, NULL};
    ht_capture_t *r = malloc(sizeof *r);
    assert_non_null(r);
    sec_run("options_workload", NULL, extra, r);
    const char *mode = env;
    if (r->timed_out || !WIFEXITED(r->status) || WEXITSTATUS(r->status) != 0 || !strstr(r->out, "DONE"))
        SEC_FAIL("options_workload", mode, r, "%s: the process did not run normally", env);
    if (strstr(r->out, "BAD ") != NULL)
        SEC_FAIL("options_workload", mode, r, "%s: the workload failed", env);
    if (ht_count_lines(r->err) != 1)
        SEC_FAIL("options_workload", mode, r, "%s: %zu lines on stderr, expected exactly one", env,
                 ht_count_lines(r->err));
    if (strstr(r->err, name) == NULL || strstr(r->err, value) == NULL)
        SEC_FAIL("options_workload", mode, r, "%s: the line does not name the variable and its value", env);
    const char *used = strstr(r->err, "using ");
    if (used == NULL || used[6] == '\0' || used[6] == '\n' || used[6] == ' ')
        SEC_FAIL("options_workload", mode, r, "%s: the line does not say what is used instead ('using ...')",
                 env);
    if (strstr(r->err, "hakmem") == NULL)
        SEC_FAIL("options_workload", mode, r, "%s: the line does not say it is hakmem's", env);
    free(r);
}

static void test_bigcache_max_overflow(void **state) {
    (void)state;
    bad_option("HAKMEM_BIGCACHE_MAX", "99999999999999g");
}
static void test_purge_delay_junk(void **state) {
    (void)state;
    bad_option("HAKMEM_PURGE_DELAY_MS", "abc");
}
static void test_on_error_unknown(void **state) {
    (void)state;
    bad_option("HAKMEM_ON_ERROR", "maybe");
}
static void test_show_stats_unknown(void **state) {
    (void)state;
    bad_option("HAKMEM_SHOW_STATS", "2");
}
static void test_superslab_cache_negative(void **state) {
    (void)state;
    bad_option("HAKMEM_SUPERSLAB_CACHE", "-1");
}

int main(int argc, char **argv) {
    static const sec_attack_t attacks[] = {SEC_ATTACK(options_workload)};
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bigcache_max_overflow),    cmocka_unit_test(test_purge_delay_junk),
        cmocka_unit_test(test_on_error_unknown),         cmocka_unit_test(test_show_stats_unknown),
        cmocka_unit_test(test_superslab_cache_negative),
    };
    return SEC_MAIN(attacks, tests);
}
