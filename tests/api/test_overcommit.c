/* SPDX-License-Identifier: MIT */
/* Impossible sizes fail like glibc's: a request that the kernel's overcommit policy refuses (larger than the
 * machine's memory and swap, under the default heuristic or strict mode) returns NULL with ENOMEM at once,
 * for every large-block entry point, instead of a pointer the OOM killer collects later. Earlier blocks are
 * untouched. Skipped (visibly) where the policy is "always overcommit" (vm.overcommit_memory = 1) or the
 * machine has more memory than the sizes tried. */
#include "hakmem_test.h"

#include <sys/mman.h>

/* Memory and swap of the machine, in bytes (0 if /proc/meminfo cannot be read). */
static size_t ram_and_swap(void) {
    FILE *f = fopen("/proc/meminfo", "r");
    if (f == NULL)
        return 0;
    char key[64];
    unsigned long long kib;
    size_t total = 0;
    while (fscanf(f, "%63s %llu kB", key, &kib) == 2)
        if (strcmp(key, "MemTotal:") == 0 || strcmp(key, "SwapTotal:") == 0)
            total += (size_t)kib << 10;
    fclose(f);
    return total;
}

static int overcommit_policy(void) {
    FILE *f = fopen("/proc/sys/vm/overcommit_memory", "r");
    int v = -1;
    if (f != NULL) {
        if (fscanf(f, "%d", &v) != 1)
            v = -1;
        fclose(f);
    }
    return v;
}

static void test_impossible_sizes_fail_with_enomem(void **state) {
    (void)state;
    int policy = overcommit_policy();
    size_t machine = ram_and_swap();
    if (policy == 1 || policy < 0 || machine == 0)
        skip(); /* "always overcommit": the kernel accepts any size, as it does for glibc */
    size_t sizes[] = {(size_t)64 << 40, (size_t)256 << 30, machine + ((size_t)8 << 30)};
    unsigned char *keep = hak_alloc(1000);
    assert_non_null(keep);
    ht_fill(keep, 1000, 7);
    hak_heap_t *h = hak_heap_create(NULL);
    assert_non_null(h);
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        size_t n = sizes[i];
        if (n <= machine)
            continue; /* this machine could hold it */
        errno = 0;
        void *p = hak_alloc(n);
        if (p != NULL || errno != ENOMEM)
            fail_msg("hak_alloc(%zu GiB) on a machine with %zu GiB: %p, errno %d (expected NULL, ENOMEM)",
                     n >> 30, machine >> 30, p, errno);
        HT_EXPECT_FAIL(hak_calloc(1, n), ENOMEM, "hak_calloc(1, %zu)", n);
        HT_EXPECT_FAIL(hak_aligned_alloc((size_t)1 << 21, n), ENOMEM, "hak_aligned_alloc(2 MiB, %zu)", n);
        HT_EXPECT_FAIL(hak_heap_alloc(h, n), ENOMEM, "hak_heap_alloc(%zu)", n);
        void *r = hak_alloc(300000);
        assert_non_null(r);
        HT_EXPECT_FAIL(hak_realloc(r, n), ENOMEM, "hak_realloc to %zu", n);
        hak_free(r);
    }
    HT_ASSERT_PATTERN(keep, 0, 1000, 7, "a block allocated before the failures changed");
    hak_free(keep);
    hak_heap_destroy(h);
}

int main(void) {
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_impossible_sizes_fail_with_enomem)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
