/* SPDX-License-Identifier: MIT */
/* The free path's block-start check (one multiply by the inverse of the block size's odd part) agrees with
 * division for every size class, at every offset of a whole SuperSlab, and for wrapped (below-span) offsets.
 */
#include "hakmem_test.h"

#include <stdint.h>

#include "superslab/superslab.h"
#include "tiny/size_class.h"

static bool reference(uint64_t off, uint64_t bs, uint64_t cap) { return off % bs == 0 && off / bs < cap; }

static void check_size(size_t bs) {
    hak_span_t s = {0};
    hak_span_set_divisors(&s, bs);
    uint64_t full = HAK_SS_SIZE / bs;
    uint64_t caps[] = {0, 1, full / 2, full};
    for (unsigned c = 0; c < sizeof caps / sizeof caps[0]; c++) {
        s.capacity = (uint32_t)caps[c];
        for (uint64_t off = 0; off <= HAK_SS_SIZE + bs; off++)
            if (hak_span_is_block_start(&s, off) != reference(off, bs, caps[c])) {
                fprintf(stderr, "block size %zu capacity %u offset %llu\n", bs, s.capacity,
                        (unsigned long long)off);
                fail();
            }
        /* A pointer below the span wraps to a huge offset; multiples of bs among them too. */
        for (uint64_t back = 1; back <= 4 * bs + 1; back++) {
            uint64_t off = (uint64_t)0 - back;
            assert_false(hak_span_is_block_start(&s, off));
            assert_false(hak_span_is_block_start(&s, off - off % bs));
        }
    }
}

static void test_every_class(void **state) {
    (void)state;
    for (unsigned cls = 0; cls < HAK_CLASS_COUNT; cls++)
        if (hak_class_size(cls) != 0)
            check_size(hak_class_size(cls));
}

static void test_odd_and_even_sizes(void **state) {
    (void)state;
    size_t sizes[] = {1, 3, 7, 24, 48, 80, 96, 112, 160, 192, 224, 320, 384, 448, 640, 768, 896, 1280, 3072};
    for (unsigned i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
        check_size(sizes[i]);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_class),
        cmocka_unit_test(test_odd_and_even_sizes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
