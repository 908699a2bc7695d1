/* SPDX-License-Identifier: MIT */
/* Size classes (docs/ARCHITECTURE.md, "Size classes"), the table alone, no allocation: multiples of 16, 16 B
 * steps to 128 B, then four classes per doubling up to 256 KiB, as the design computes them
 * (ht_design_class_size); every size 0 .. 256 KiB maps to the smallest class that holds it; known sizes;
 * the waste above 128 B stays under 25%. */
#include "hakmem_test.h"

static void test_class_table(void **state) {
    (void)state;
    assert_true(HAK_CLASS_COUNT <= HAK_STATS_CLASSES_MAX);
    for (unsigned c = 0; c < HAK_CLASS_COUNT; c++) {
        size_t s = hak_class_size(c);
        assert_int_equal(s % 16, 0);
        assert_int_equal(s, ht_design_class_size(c));
        if (c > 0)
            assert_true(hak_class_size(c - 1) < s);
        /* a class size maps to its own class */
        assert_int_equal(hak_size_class(s), c);
    }
    assert_int_equal(hak_class_size(HAK_CLASS_COUNT - 1), HAK_SLAB_MAX_SIZE);
    assert_int_equal(hak_class_size(HAK_TINY_CLASS_COUNT - 1), HAK_TINY_MAX_SIZE);
    /* 16 B steps up to 128 */
    for (unsigned c = 0; c < 8; c++)
        assert_int_equal(hak_class_size(c), 16u * (c + 1u));
    /* then exactly four classes in every doubling (128, 256], (256, 512], ... */
    for (size_t lo = 128; lo < HAK_SLAB_MAX_SIZE; lo *= 2) {
        unsigned n = 0;
        for (unsigned c = 0; c < HAK_CLASS_COUNT; c++)
            if (hak_class_size(c) > lo && hak_class_size(c) <= 2 * lo)
                n++;
        assert_int_equal(n, 4);
    }
}

/* The library's class table against the classes DESIGN.md describes. */
static void test_class_table_matches_design(void **state) {
    (void)state;
    ht_build_classes();
    assert_int_equal(ht_class_count, HAK_CLASS_COUNT);
    assert_int_equal(ht_classes[HAK_TINY_CLASS_COUNT - 1], HAK_TINY_MAX_SIZE);
    assert_int_equal(ht_classes[ht_class_count - 1], HAK_SLAB_MAX_SIZE);
    for (unsigned i = 0; i < ht_class_count; i++) {
        if (hak_class_size(i) != ht_classes[i])
            fail_msg("class %u: library says %zu, expected %zu", i, hak_class_size(i), ht_classes[i]);
        if (hak_size_class(ht_classes[i]) != i)
            fail_msg("hak_size_class(%zu) != %u", ht_classes[i], i);
        if (i > 0 && hak_size_class(ht_classes[i - 1] + 1) != i)
            fail_msg("hak_size_class(%zu) != %u", ht_classes[i - 1] + 1, i);
    }
}

/* Every size 0..HAK_SLAB_MAX_SIZE (0..8192 is the tiny range; the rest is the pool). */
static void test_every_size(void **state) {
    (void)state;
    unsigned prev_cls = 0;
    for (size_t s = 0; s <= HAK_SLAB_MAX_SIZE; s++) {
        unsigned c = hak_size_class(s);
        assert_true(c < HAK_CLASS_COUNT);
        size_t cs = hak_class_size(c);
        if (cs % 16 != 0 || cs < s || (c > 0 && hak_class_size(c - 1) >= s) || c < prev_cls) {
            fail_msg("size %zu -> class %u (%zu B); previous class %zu B; class of size-1 was %u", s, c, cs,
                     c > 0 ? hak_class_size(c - 1) : 0, prev_cls);
        }
        prev_cls = c;
    }
    assert_int_equal(hak_size_class(0), 0);
    assert_int_equal(hak_size_class(1), 0);
    assert_int_equal(hak_size_class(16), 0);
    assert_int_equal(hak_size_class(17), 1);
}

static void test_known_sizes(void **state) {
    (void)state;
    static const size_t pairs[][2] = {
        {0, 16},       {1, 16},        {15, 16},       {16, 16},         {17, 32},         {63, 64},
        {64, 64},      {65, 80},       {127, 128},     {128, 128},       {129, 160},       {160, 160},
        {161, 192},    {193, 224},     {225, 256},     {256, 256},       {257, 320},       {1000, 1024},
        {1024, 1024},  {1025, 1280},   {1280, 1280},   {1281, 1536},     {4097, 5120},     {8192, 8192},
        {8193, 10240}, {65536, 65536}, {65537, 81920}, {200000, 229376}, {262144, 262144},
    };
    for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++) {
        size_t got = hak_class_size(hak_size_class(pairs[i][0]));
        if (got != pairs[i][1])
            fail_msg("size %zu -> %zu, expected %zu", pairs[i][0], got, pairs[i][1]);
    }
}

static void test_waste_under_25_percent(void **state) {
    (void)state;
    double worst = 0;
    size_t worst_size = 0;
    for (size_t s = 129; s <= HAK_SLAB_MAX_SIZE; s++) {
        size_t cs = hak_class_size(hak_size_class(s));
        double w = (double)(cs - s) / (double)s; /* relative to the request: the stricter measure */
        if (w > worst) {
            worst = w;
            worst_size = s;
        }
    }
    if (!(worst < 0.25))
        fail_msg("worst waste %.2f%% at size %zu", worst * 100, worst_size);
    /* and the bound is not vacuous: four classes per doubling does waste close to 25% at 2^k + 1 */
    assert_true(worst > 0.20);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_class_table),
        cmocka_unit_test(test_class_table_matches_design),
        cmocka_unit_test(test_every_size),
        cmocka_unit_test(test_known_sizes),
        cmocka_unit_test(test_waste_under_25_percent),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
