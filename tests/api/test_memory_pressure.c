/* SPDX-License-Identifier: MIT */
/* Memory pressure: under a small RLIMIT_AS (a child process) every tier fails cleanly with ENOMEM, earlier
 * blocks stay intact, a failed realloc keeps the block, allocation works again after frees (with
 * hak_collect(1) where the BigCache holds the address space), and a block of exactly the whole chunks left
 * fits while one chunk more fails. */
#include "hakmem_test.h"
#include <sys/resource.h>

/* ---- RLIMIT_AS ----------------------------------------------------------------------------------------- */
#define RL_MAX_LARGE 256
#define RL_MAX_MID 4096
#define RL_MAX_SMALL 200000
static unsigned char *rl_large[RL_MAX_LARGE], *rl_mid[RL_MAX_MID], *rl_small[RL_MAX_SMALL];

/* Allocates blocks of n bytes until one fails; patterns each. Returns the count; the failure must be ENOMEM.
 */
static size_t fill_until_enomem(unsigned char **arr, size_t max, size_t n, uint64_t tagbase,
                                const char *what) {
    for (size_t i = 0; i < max; i++) {
        errno = 0;
        unsigned char *p = hak_alloc(n);
        if (p == NULL) {
            if (errno != ENOMEM)
                fail_msg("%s: allocation %zu of %zu bytes failed with errno %d, not ENOMEM", what, i, n,
                         errno);
            return i;
        }
        ht_fill_range(p, 0, n, tagbase + i);
        arr[i] = p;
    }
    fail_msg("%s: %zu allocations of %zu bytes never failed under RLIMIT_AS", what, max, n);
    return max;
}

static void verify_all(unsigned char **arr, size_t count, size_t n, uint64_t tagbase, const char *what) {
    for (size_t i = 0; i < count; i++)
        if (arr[i])
            HT_ASSERT_PATTERN(arr[i], 0, n, tagbase + i, "%s block %zu damaged under memory pressure", what,
                              i);
}

static void child_rlimit(void **state) {
    (void)state;
    /* warm up every tier once so that lazily created metadata exists (as in any running program) */
    void *w[3] = {hak_alloc(100), hak_alloc(100000), hak_alloc(HT_MIB)};
    for (int i = 0; i < 3; i++) {
        assert_non_null(w[i]);
        hak_free(w[i]);
    }
    hak_collect(1);
    size_t vm;
    ht_statm(&vm, NULL);
    struct rlimit rl = {vm + 64 * HT_MIB, vm + 64 * HT_MIB};
    assert_int_equal(setrlimit(RLIMIT_AS, &rl), 0);
    const size_t LN = HT_MIB, MN = 64 * HT_KIB, SN = 1000;
    /* large blocks until ENOMEM; then give back 6 of them for the small tier to run out in, and 6 more for
     * the mid tier. A 1 MiB block's mapping is one whole 2 MiB chunk (docs/ARCHITECTURE.md), so at most 32
     * fit in 64 MiB of address space; fewer than 28 would mean mappings cost more than their chunks
     * (over-mapping for alignment, or leaked address space). */
    size_t nl = fill_until_enomem(rl_large, RL_MAX_LARGE, LN, 1000, "large");
    if (nl < 28 || nl > 32)
        fail_msg("%zu blocks of 1 MiB (one 2 MiB chunk each) fit in 64 MiB of address space, expected 28-32",
                 nl);
    for (size_t i = nl - 6; i < nl; i++)
        hak_free(rl_large[i]), rl_large[i] = NULL;
    hak_collect(1);
    size_t ns = fill_until_enomem(rl_small, RL_MAX_SMALL, SN, 20000, "small");
    for (size_t i = nl - 12; i < nl - 6; i++)
        hak_free(rl_large[i]), rl_large[i] = NULL;
    hak_collect(1);
    size_t nm = fill_until_enomem(rl_mid, RL_MAX_MID, MN, 5000, "mid");
    assert_true(ns > 0);
    assert_true(nm > 0);
    /* once full, every tier keeps failing cleanly */
    HT_EXPECT_FAIL(hak_alloc(4 * HT_MIB), ENOMEM, "large after exhaustion");
    HT_EXPECT_FAIL(hak_aligned_alloc(4 * HT_MIB, 100), ENOMEM, "far-aligned after exhaustion");
    HT_EXPECT_FAIL(hak_calloc(1, 8 * HT_MIB), ENOMEM, "calloc after exhaustion");
    print_message("RLIMIT_AS = VM + 64 MiB: %zu x 1 MiB until ENOMEM; 6 freed: %zu x 1000 B until ENOMEM; 6 "
                  "more freed: "
                  "%zu x 64 KiB until ENOMEM\n",
                  nl, ns, nm);
    verify_all(rl_large, nl, LN, 1000, "large");
    verify_all(rl_mid, nm, MN, 5000, "mid");
    verify_all(rl_small, ns, SN, 20000, "small");
    /* a failing realloc of a live block leaves it intact */
    HT_EXPECT_FAIL(hak_realloc(rl_large[0], 40 * HT_MIB), ENOMEM, "realloc growth under RLIMIT_AS");
    HT_ASSERT_PATTERN(rl_large[0], 0, LN, 1000, "block after a failed realloc");
    /* free half of every tier; the same sizes come back without hak_collect */
    size_t freed_large = 0;
    for (size_t i = 0; i < nl; i += 2)
        if (rl_large[i])
            hak_free(rl_large[i]), rl_large[i] = NULL, freed_large++;
    for (size_t i = 0; i < nm; i += 2)
        hak_free(rl_mid[i]), rl_mid[i] = NULL;
    for (size_t i = 0; i < ns; i += 2)
        hak_free(rl_small[i]), rl_small[i] = NULL;
    unsigned char *a = hak_alloc(LN), *b = hak_alloc(MN), *c = hak_alloc(SN);
    if (!a || !b || !c)
        fail_msg("after freeing half, same-size allocation failed (large %p mid %p small %p)", (void *)a,
                 (void *)b, (void *)c);
    memset(a, 1, LN);
    memset(b, 2, MN);
    memset(c, 3, SN);
    hak_free(a);
    hak_free(b);
    hak_free(c);
    /* a bigger block than any freed one: may need the cached mappings returned first (the freed 1 MiB blocks
     * held a 2 MiB chunk each, so this fits in the address space they held) */
    size_t big = (freed_large - 3) * HT_MIB;
    errno = 0;
    unsigned char *d = hak_alloc(big);
    int before_collect = d != NULL, err = errno;
    if (!d) {
        assert_int_equal(err, ENOMEM);
        hak_collect(1);
        d = hak_alloc(big);
    }
    print_message("after freeing half: %zu MiB block %s\n", big >> 20,
                  before_collect ? "succeeded without hak_collect" : "failed (ENOMEM) until hak_collect(1)");
    if (d == NULL)
        fail_msg("%zu MiB block fails even after freeing and hak_collect(1): errno %d", big >> 20, errno);
    memset(d, 4, big);
    hak_free(d);
    /* small blocks of a class not used yet need new SuperSlabs: the freed large blocks are in the BigCache,
     * holding the address space; hak_collect(1) may be needed to give it back */
    enum { NEW_SMALL = 1500 };
    static unsigned char *fresh[NEW_SMALL];
    size_t nf = 0, collected_at = 0;
    for (; nf < NEW_SMALL; nf++) {
        errno = 0;
        fresh[nf] = hak_alloc(5000);
        if (fresh[nf] == NULL) {
            if (errno != ENOMEM)
                fail_msg("small allocation failed with errno %d", errno);
            if (collected_at)
                fail_msg("small allocation %zu fails even after hak_collect(1)", nf);
            collected_at = nf + 1;
            hak_collect(1);
            fresh[nf] = hak_alloc(5000);
            if (fresh[nf] == NULL)
                fail_msg("small allocation %zu fails even after hak_collect(1)", nf);
        }
        ht_fill_range(fresh[nf], 0, 5000, 90000 + nf);
    }
    print_message("after freeing half: %d new-class 5000 B blocks %s\n", NEW_SMALL,
                  collected_at ? "needed hak_collect(1) (ENOMEM before it)"
                               : "succeeded without hak_collect");
    if (collected_at)
        print_message("  (first ENOMEM at block %zu)\n", collected_at - 1);
    verify_all(fresh, nf, 5000, 90000, "new-class small");
    for (size_t i = 0; i < nf; i++)
        hak_free(fresh[i]);
    /* survivors intact, then everything freed and allocation works in every tier */
    verify_all(rl_large, nl, LN, 1000, "large");
    verify_all(rl_mid, nm, MN, 5000, "mid");
    verify_all(rl_small, ns, SN, 20000, "small");
    for (size_t i = 0; i < nl; i++)
        hak_free(rl_large[i]);
    for (size_t i = 0; i < nm; i++)
        hak_free(rl_mid[i]);
    for (size_t i = 0; i < ns; i++)
        hak_free(rl_small[i]);
    hak_collect(1);
    /* Everything is freed and collected: the cached SuperSlabs give their bodies back at hak_collect(1) (only
     * their 8 KiB headers stay, docs/ARCHITECTURE.md; tests/api/test_address_space.c checks that the space
     * comes back). What must hold here: what stays held is within what the tiers used (<= 40 MiB of the 64),
     * and a block of exactly the whole chunks left fits, while one byte more (one more chunk) fails cleanly.
     */
    size_t vm_end;
    ht_statm(&vm_end, NULL);
    size_t held = vm_end > vm ? vm_end - vm : 0, left = vm + 64 * HT_MIB - vm_end;
    print_message("all freed + hak_collect(1): address space %zu KiB above the start (SuperSlabs are kept), "
                  "%zu KiB left under RLIMIT_AS\n",
                  held >> 10, left >> 10);
    if (held > 40 * HT_MIB)
        fail_msg("%zu MiB of address space still held after freeing everything and hak_collect(1)",
                 held >> 20);
    size_t chunks = left / HT_CHUNK;
    assert_true(chunks >= 12);
    HT_EXPECT_FAIL(hak_alloc(chunks * HT_CHUNK - HT_LARGE_HEADER + 1), ENOMEM,
                   "a block one chunk larger than the %zu chunks left", chunks);
    size_t en = ht_chunks_req(chunks);
    unsigned char *e = hak_alloc(en);
    if (e == NULL)
        fail_msg("a block of the %zu whole chunks left (%zu bytes) fails: errno %d", chunks, en, errno);
    hak_large_t *eh = hak_large_of(e, hak_region_kind(e));
    assert_non_null(eh);
    assert_int_equal(eh->map_size, chunks * HT_CHUNK);
    memset(e, 5, en);
    hak_free(e);
    for (int i = 0; i < 1000; i++) {
        unsigned char *f = hak_alloc((size_t)(i % 50) * 1000 + 1);
        assert_non_null(f);
        hak_free(f);
    }
}

static void test_rlimit_as(void **state) {
    (void)state;
#if HT_SANITIZED
    skip(); /* sanitizer runtimes reserve terabytes of shadow memory: RLIMIT_AS cannot be small */
#else
    HT_CHILD_OK("child_rlimit", 60, "HAKMEM_TIERS_CHILD=1");
#endif
}

int main(int argc, char **argv) {
    const struct CMUnitTest children[] = {cmocka_unit_test(child_rlimit)};
    int rc = ht_child_main(argc, argv, children, 1);
    if (rc >= 0)
        return rc;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rlimit_as),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
