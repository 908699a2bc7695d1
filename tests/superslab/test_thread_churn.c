/* SPDX-License-Identifier: MIT */
/* Memory of exited threads is reused: 200 threads in turn allocate about 1 MiB of small blocks, free most
 * of them and exit, leaving every eighth block for the main thread to free; the SuperSlabs they leave are
 * adopted by the next ones, so reserved memory (or RSS) stays within 24 MiB of its level after 20 threads
 * and the threads use at most 48 distinct 2 MiB chunks. */
#include "hakmem_test.h"

/* ---- thread churn: memory of exited threads is reused -------------------------------------------------- */
typedef struct {
    void **left; /* blocks left live at exit, freed by main */
    size_t nleft;
    int errors;
    uint64_t seed;
} churn_t;

#define CHURN_BLOCKS 8192 /* 8192 blocks of 16..240 B: about 1 MiB */

static void *churn_thread(void *arg) {
    churn_t *c = arg;
    void **blk = malloc(CHURN_BLOCKS * sizeof *blk);
    if (!blk) {
        c->errors++;
        return NULL;
    }
    for (size_t i = 0; i < CHURN_BLOCKS; i++) {
        size_t n = 16 + (size_t)(ht_mix(c->seed + i) % 15) * 16;
        blk[i] = hak_alloc(n);
        if (!blk[i]) {
            c->errors++;
            continue;
        }
        memset(blk[i], (int)(i & 0xff), n);
    }
    c->nleft = 0;
    for (size_t i = 0; i < CHURN_BLOCKS; i++) {
        if (!blk[i])
            continue;
        if (i % 8 == 0) {
            c->left[c->nleft++] = blk[i]; /* survives the thread */
        } else {
            size_t n = 16 + (size_t)(ht_mix(c->seed + i) % 15) * 16;
            if (!ht_all_equal(blk[i], n, (unsigned char)(i & 0xff)))
                c->errors++;
            hak_free(blk[i]);
        }
    }
    free(blk);
    return NULL;
}

static size_t memory_measure(int *from_stats) {
    hak_stats_t st;
    if (ht_try_stats(NULL, &st)) {
        *from_stats = 1;
        return (size_t)st.reserved_bytes;
    }
    *from_stats = 0;
    return ht_rss_bytes();
}

static void test_thread_churn_memory_bounded(void **state) {
    (void)state;
    const int cycles = 200, warm = 20;
    churn_t c = {0};
    c.left = malloc((CHURN_BLOCKS / 8 + 1) * sizeof(void *));
    assert_non_null(c.left);
    size_t base_mem = 0;
    int from_stats = 0;
    uintptr_t chunks[4096];
    size_t nchunks = 0;
    for (int cycle = 0; cycle < cycles; cycle++) {
        pthread_t t;
        c.seed = (uint64_t)cycle * 100000;
        assert_int_equal(pthread_create(&t, NULL, churn_thread, &c), 0);
        pthread_join(t, NULL);
        assert_int_equal(c.errors, 0);
        for (size_t i = 0; i < c.nleft; i++) {
            uintptr_t ch = (uintptr_t)c.left[i] & ~(HT_CHUNK - 1);
            size_t k;
            for (k = 0; k < nchunks; k++)
                if (chunks[k] == ch)
                    break;
            if (k == nchunks && nchunks < 4096)
                chunks[nchunks++] = ch;
            hak_free(c.left[i]);
        }
        if (cycle == warm)
            base_mem = memory_measure(&from_stats);
    }
    int fs2;
    size_t end_mem = memory_measure(&fs2);
    print_message("%s after %d cycles: %zu KiB, after %d: %zu KiB; %zu distinct 2 MiB chunks used\n",
                  from_stats ? "reserved" : "RSS", warm, base_mem >> 10, cycles, end_mem >> 10, nchunks);
    /* 180 more cycles of 1 MiB each: without reuse that would be 180+ MiB */
    if (end_mem > base_mem + 24 * HT_MIB)
        fail_msg("memory grew from %zu KiB to %zu KiB over %d thread cycles", base_mem >> 10, end_mem >> 10,
                 cycles - warm);
    if (nchunks > 48)
        fail_msg("threads used %zu distinct 2 MiB chunks for 1 MiB each", nchunks);
    free(c.left);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_thread_churn_memory_bounded),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
