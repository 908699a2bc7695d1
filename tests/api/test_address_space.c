/* SPDX-License-Identifier: MIT */
/* Address space comes back (the footprint issue): after a program fills its address-space limit with small
 * blocks, frees them all and calls hak_collect(1), other tiers (and other mmap users) can use that address
 * space again. Before, SuperSlabs were never unmapped, so under `ulimit -v` a 300 KB or a 5 MiB block still
 * failed and the process could not map anything. Now a cached SuperSlab gives its body back (its 8 KiB header
 * stays, for the late remote-free notices that may still touch it). In a child process under RLIMIT_AS. */
#include "hakmem_test.h"

#include <sys/mman.h>
#include <sys/resource.h>

#define MAX_SMALL 200000
static void *blocks[MAX_SMALL];

static void child_address_space_returns(void **state) {
    (void)state;
    size_t vm;
    ht_statm(&vm, NULL);
    struct rlimit rl = {vm + 64 * HT_MIB, vm + 64 * HT_MIB};
    assert_int_equal(setrlimit(RLIMIT_AS, &rl), 0);
    size_t n = 0;
    while (n < MAX_SMALL && (blocks[n] = hak_alloc(1000)) != NULL)
        n++;
    assert_int_equal(errno, ENOMEM);
    assert_true(n > 20000); /* tens of MiB of SuperSlabs */
    for (size_t i = 0; i < n; i++)
        hak_free(blocks[i]);
    hak_collect(1);
    size_t vm_after;
    ht_statm(&vm_after, NULL);
    print_message(
        "%zu blocks of 1000 B until ENOMEM; after freeing them and hak_collect(1) the address space is "
        "%zu KiB above the start\n",
        n, vm_after > vm ? (vm_after - vm) >> 10 : 0);
    void *mid = hak_alloc(300000), *big = hak_alloc(5 * HT_MIB);
    if (mid == NULL || big == NULL)
        fail_msg("after freeing everything and hak_collect(1): hak_alloc(300000) %p, hak_alloc(5 MiB) %p",
                 mid, big);
    memset(big, 1, 5 * HT_MIB);
    void *m = mmap(NULL, 8 * HT_MIB, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED)
        fail_msg("the process cannot mmap 8 MiB after freeing everything and hak_collect(1)");
    munmap(m, 8 * HT_MIB);
    hak_free(mid);
    hak_free(big);
    /* and the small tier works again */
    for (int i = 0; i < 1000; i++) {
        void *p = hak_alloc(1000);
        assert_non_null(p);
        hak_free(p);
    }
}

static void test_address_space_returns(void **state) {
    (void)state;
#if HT_SANITIZED
    skip(); /* sanitizer runtimes reserve terabytes of shadow memory: RLIMIT_AS cannot be small */
#else
    HT_CHILD_OK("child_address_space_returns", 60, "HAKMEM_PURGE_DELAY_MS=1000");
#endif
}

int main(int argc, char **argv) {
    const struct CMUnitTest children[] = {cmocka_unit_test(child_address_space_returns)};
    int rc = ht_child_main(argc, argv, children, 1);
    if (rc >= 0)
        return rc;
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_address_space_returns)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
