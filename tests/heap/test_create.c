/* SPDX-License-Identifier: MIT */
/* Creating heaps and the edge cases of the heap functions: hak_heap_of is NULL for NULL, the stack, static
 * data, code, a glibc block and our own mapping; the default heap is the same from every thread, is named
 * "default", and hak_heap_destroy(NULL) / hak_heap_destroy(default) leave it and its blocks alone; a heap
 * created without options (or without a name) gets a default name, a given name is copied and a long one
 * truncated, the heap count follows; a destroyed heap's id is reused by a new heap that starts empty. */
#include "hakmem_test.h"

#include <pthread.h>

static void *default_heap_of_thread(void *arg) {
    (void)arg;
    return hak_heap_default();
}

static void test_heap_of_edge_cases(void **state) {
    (void)state;
    assert_null(hak_heap_of(NULL));
    int on_stack = 0;
    static int in_data = 1;
    assert_null(hak_heap_of(&on_stack));
    assert_null(hak_heap_of(&in_data));
    assert_null(hak_heap_of((void *)test_heap_of_edge_cases));
    void *libc = malloc(100); /* glibc: this test links the static library, not the override */
    assert_non_null(libc);
    assert_null(hak_heap_of(libc));
    free(libc);
    void *m = mmap(NULL, 4 * HT_MIB, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    assert_true(m != MAP_FAILED);
    assert_null(hak_heap_of(m));
    assert_null(hak_heap_of((char *)m + 2 * HT_MIB));
    munmap(m, 4 * HT_MIB);

    hak_heap_t *d = hak_heap_default();
    assert_non_null(d);
    assert_ptr_equal(hak_heap_default(), d);
    pthread_t t;
    void *other = NULL;
    assert_int_equal(pthread_create(&t, NULL, default_heap_of_thread, NULL), 0);
    pthread_join(t, &other);
    assert_ptr_equal(other, d);
    void *p = hak_alloc(100), *q = hak_alloc(300000), *r = hak_heap_alloc(d, 20000);
    assert_non_null(p);
    assert_non_null(q);
    assert_non_null(r);
    assert_ptr_equal(hak_heap_of(p), d);
    assert_ptr_equal(hak_heap_of(q), d);
    assert_ptr_equal(hak_heap_of(r), d);
    hak_stats_t st;
    ht_get_stats(d, &st);
    assert_string_equal(st.name, "default");

    /* destroy(NULL) and destroy(default) are no-ops: the default heap and its blocks stay */
    hak_heap_destroy(NULL);
    hak_heap_destroy(d);
    assert_ptr_equal(hak_heap_default(), d);
    assert_ptr_equal(hak_heap_of(p), d);
    assert_ptr_equal(hak_heap_of(q), d);
    memset(p, 1, 100);
    memset(q, 2, 300000);
    hak_stats_t st2;
    ht_get_stats(d, &st2);
    assert_string_equal(st2.name, "default");
    assert_int_equal(st2.live_blocks, st.live_blocks);
    void *s = hak_alloc(100);
    assert_non_null(s);
    assert_ptr_equal(hak_heap_of(s), d);
    hak_free(p);
    hak_free(q);
    hak_free(r);
    hak_free(s);
}

static void test_create_defaults_and_names(void **state) {
    (void)state;
    hak_stats_t st, proc0, proc1;
    ht_get_stats(NULL, &proc0);

    hak_heap_t *h = hak_heap_create(NULL);
    assert_non_null(h);
    ht_get_stats(h, &st);
    assert_true(st.name[0] != '\0');
    assert_non_null(memchr(st.name, '\0', sizeof st.name));
    assert_int_equal(st.limit_bytes, 0);
    assert_int_equal(st.live_blocks, 0);
    void *p = hak_heap_alloc(h, 1000), *q = hak_heap_alloc(h, 1 << 20);
    assert_non_null(p);
    assert_non_null(q);
    assert_ptr_equal(hak_heap_of(p), h);
    assert_ptr_equal(hak_heap_of(q), h);
    ht_get_stats(h, &st);
    assert_int_equal(st.live_blocks, 2);

    /* opts with name NULL: default name as well */
    hak_heap_t *h2 = hak_heap_create(&(hak_heap_options_t){.limit_bytes = 0, .name = NULL});
    assert_non_null(h2);
    assert_ptr_not_equal(h2, h);
    ht_get_stats(h2, &st);
    assert_true(st.name[0] != '\0');

    /* the name is copied; a long one is truncated and terminated */
    char buf[200];
    strcpy(buf, "copied-name");
    hak_heap_t *h3 = hak_heap_create(&(hak_heap_options_t){.limit_bytes = 0, .name = buf});
    assert_non_null(h3);
    memset(buf, 'x', sizeof buf - 1);
    buf[sizeof buf - 1] = '\0';
    ht_get_stats(h3, &st);
    assert_string_equal(st.name, "copied-name");
    hak_heap_t *h4 = hak_heap_create(&(hak_heap_options_t){.limit_bytes = 0, .name = buf});
    assert_non_null(h4);
    ht_get_stats(h4, &st);
    assert_non_null(memchr(st.name, '\0', sizeof st.name));
    assert_true(strlen(st.name) >= 16);
    assert_int_equal(strncmp(st.name, buf, strlen(st.name)), 0);

    ht_get_stats(NULL, &proc1);
    assert_int_equal(proc1.heap_count, proc0.heap_count + 4);

    hak_free(p);
    hak_free(q);
    hak_heap_destroy(h);
    hak_heap_destroy(h2);
    hak_heap_destroy(h3);
    hak_heap_destroy(h4);
    ht_get_stats(NULL, &proc1);
    assert_int_equal(proc1.heap_count, proc0.heap_count);
    assert_int_equal(proc1.live_blocks, proc0.live_blocks);
}

/* A destroyed heap's id is reused by the next heap: the new heap starts empty, the thread's stale cache of
 * the old heap is not used, and blocks go to the new heap. */
static void test_create_after_destroy_fresh(void **state) {
    (void)state;
    for (int round = 0; round < 50; round++) {
        hak_heap_t *h = hak_heap_create(&(hak_heap_options_t){0, "round"});
        assert_non_null(h);
        hak_stats_t st;
        ht_get_stats(h, &st);
        assert_int_equal(st.live_blocks, 0);
        assert_int_equal(st.live_bytes, 0);
        assert_int_equal(st.large_blocks, 0);
        void *live[6];
        size_t sizes[6] = {16, 200, 5000, 20000, 200000, 600000};
        for (int i = 0; i < 6; i++) {
            live[i] = hak_heap_alloc(h, sizes[i]);
            assert_non_null(live[i]);
            assert_ptr_equal(hak_heap_of(live[i]), h);
            memset(live[i], round, sizes[i]);
        }
        ht_get_stats(h, &st);
        assert_int_equal(st.live_blocks, 6);
        assert_int_equal(st.large_blocks, 1);
        if (round % 2) /* half the rounds free their blocks first, the others destroy with them live */
            for (int i = 0; i < 6; i++)
                hak_free(live[i]);
        hak_heap_destroy(h);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_heap_of_edge_cases),
        cmocka_unit_test(test_create_defaults_and_names),
        cmocka_unit_test(test_create_after_destroy_fresh),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
