/* calloc at the tier edges. */
#include "hakmem_test.h"

/* hak_calloc in every tier and at the edges: zeroed in full (usable size), even when the block is reused. */
static void test_calloc_edges(void **state) {
    (void)state;
    static const size_t sizes[] = {1,     16,     17,     8191,   8192,   8193,
                                   65536, 262143, 262144, 262145, HT_MIB, 3 * HT_MIB + 1};
    for (int round = 0; round < 2; round++)
        for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
            size_t n = sizes[i];
            /* dirty a block of the same size first so the calloc may reuse it */
            unsigned char *d = hak_alloc(n);
            assert_non_null(d);
            memset(d, 0xee, hak_usable_size(d));
            hak_free(d);
            unsigned char *p = hak_calloc(1, n);
            if (p == NULL)
                fail_msg("hak_calloc(1, %zu) returned NULL", n);
            if (ht_tier_of(p) != ht_expected_tier(n))
                fail_msg("hak_calloc(1, %zu): wrong tier", n);
            if (!ht_all_equal(p, n, 0))
                fail_msg("hak_calloc(1, %zu) (reused: %d) is not zeroed", n, p == d);
            hak_free(p);
        }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_calloc_edges),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
