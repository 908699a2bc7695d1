/* SPDX-License-Identifier: MIT */
/* Large mappings own their chunks whole, and the region map marks every one of them, for as long as the large
 * tier holds them (live or cached). So no foreign mapping can share a chunk with a large block (before, a
 * block aligned to 2 MiB or more had a page-granular mapping whose first and last chunks the kernel shared
 * with other mappings, and the override read that block's header to tell a foreign pointer in those chunks
 * from a hakmem one, racing with another thread unmapping it), and a pointer anywhere in a large block's
 * mapping is hakmem's. */
#include "hakmem_test.h"

static void expect_marked(const unsigned char *from, size_t len, const char *what) {
    for (size_t off = 0; off < len; off += HT_CHUNK) {
        unsigned kind = hak_region_kind(from + off);
        if (kind == HAK_REGION_NONE || kind == HAK_REGION_SUPERSLAB)
            fail_msg("%s: chunk %zu of the mapping (%p) is marked %u", what, off / HT_CHUNK,
                     (const void *)(from + off), kind);
    }
}

static void test_large_mappings_are_whole_marked_chunks(void **state) {
    (void)state;
    static const size_t aligns[] = {
        0, 4096, (size_t)1 << 20, (size_t)2 << 20, (size_t)4 << 20, (size_t)16 << 20};
    static const size_t sizes[] = {300 << 10, (size_t)3 << 20, (size_t)5 << 20};
    for (size_t a = 0; a < sizeof aligns / sizeof aligns[0]; a++)
        for (size_t z = 0; z < sizeof sizes / sizeof sizes[0]; z++) {
            size_t align = aligns[a], n = sizes[z];
            unsigned char *p = align ? hak_aligned_alloc(align, n) : hak_alloc(n);
            assert_non_null(p);
            if (align)
                assert_int_equal((uintptr_t)p % align, 0);
            unsigned kind = hak_region_kind(p);
            hak_large_t *h = hak_large_of(p, kind);
            if (h == NULL)
                fail_msg("align %zu size %zu: no large header for %p (kind %u)", align, n, (void *)p, kind);
            unsigned char *base = hak_large_map_base(h);
            if ((uintptr_t)base % HT_CHUNK != 0 || h->map_size % HT_CHUNK != 0)
                fail_msg("align %zu size %zu: mapping %p + %zu is not whole chunks", align, n, (void *)base,
                         h->map_size);
            expect_marked(base, h->map_size, "live block");
            memset(p, 0x5a, n);
            hak_free(p);
        }
}

int main(void) {
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_large_mappings_are_whole_marked_chunks)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
