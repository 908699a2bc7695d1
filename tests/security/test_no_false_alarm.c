/* SPDX-License-Identifier: MIT */
/* No false alarms (issue item 9). The free-block check word marks a block free; an early version of the
 * hardening took a live block for a free one when its first word still held the stale link of its free-list
 * days (which decoded to its neighbour) and its second word held a small integer: random_mixed under the
 * override aborted with a false double free. Here, many allocation and free cycles over tiny and pool sizes,
 * from one thread and with frees by another thread, where the program writes only the first byte, only the
 * second 8-byte word (small integers, pointers to neighbouring blocks, zero), all zeros, all ones, or nothing
 * at all, and asks hakmem for usable sizes and reallocations (which check the block too): no report at all,
 * exit 0. Bursts of one class carve fresh blocks, whose stale links point to their neighbours. */
#include "sec.h"

#include <stdatomic.h>

enum { P_NOTHING, P_FIRST_BYTE, P_WORD2_SMALL, P_WORD2_NEIGHBOUR, P_WORD2_ZERO, P_ZEROS, P_ONES, P_COUNT };
static const char *const pattern_names[P_COUNT] = {
    "nothing",   "first byte", "second word: small integer", "second word: neighbour", "second word: zero",
    "all zeros", "all ones"};

/* What the program writes into a block it got (n bytes requested, at least 16). */
static void apply(unsigned char *p, size_t n, int pattern, uint64_t i, const void *previous) {
    uint64_t v;
    switch (pattern) {
    case P_FIRST_BYTE:
        p[0] = (unsigned char)(i * 7);
        break;
    case P_WORD2_SMALL: /* small integers: counters, lengths, the block's own size */
        v = i % 3 == 0 ? i % 257 : i % 3 == 1 ? (i % 256) * 16 : n;
        memcpy(p + 8, &v, 8);
        break;
    case P_WORD2_NEIGHBOUR: /* the block allocated before, or the addresses right after and before this one */
        v = i % 3 == 0 ? (uint64_t)(uintptr_t)previous : (uint64_t)(uintptr_t)(i % 3 == 1 ? p + n : p - n);
        memcpy(p + 8, &v, 8);
        break;
    case P_WORD2_ZERO:
        memset(p + 8, 0, 8);
        break;
    case P_ZEROS:
        memset(p, 0, n);
        break;
    case P_ONES:
        memset(p, 0xff, n);
        break;
    default:
        break;
    }
}

static size_t pick_size(ht_rng_t *r) {
    uint64_t x = ht_next(r);
    if (x % 10 == 0)
        return 8193 + (size_t)(x >> 8) % (256 * 1024 - 8192); /* pool */
    if (x % 10 < 4)
        return 16 + (size_t)(x >> 8) % 240; /* the smallest classes, where most blocks are */
    return 16 + (size_t)(x >> 8) % (8192 - 16);
}

static void check_live(const void *p, size_t n, int pattern) {
    size_t u = hak_usable_size(p);
    if (u < n)
        sec_bad("pattern '%s': hak_usable_size(%p) = %zu for a live block of %zu bytes",
                pattern_names[pattern], p, u, n);
}

/* Bursts of one size: fresh blocks carved in a row, patterned, checked, freed (in two orders). */
static void bursts(int pattern, uint64_t seed) {
    static const size_t sizes[] = {16, 32, 48, 64, 112, 128, 160, 256, 1000, 4096, 8192, 9000, 20000, 65536};
    enum { B = 300 };
    static unsigned char *v[B];
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        size_t n = sizes[s];
        size_t count = n > 8192 ? B / 10 : B;
        for (size_t i = 0; i < count; i++) {
            if ((v[i] = hak_alloc(n)) == NULL)
                sec_bad("hak_alloc(%zu) failed", n);
            apply(v[i], n, pattern, seed + i, i ? v[i - 1] : NULL);
        }
        for (size_t i = 0; i < count; i++)
            check_live(v[i], n, pattern);
        for (size_t i = 0; i < count; i++)
            hak_free(v[(seed & 1) ? count - 1 - i : i]);
    }
}

/* Random churn over a window of live blocks, with usable sizes and reallocations. */
static void churn(int pattern, uint64_t seed, size_t ops) {
    enum { W = 512 };
    static unsigned char *v[W];
    static size_t len[W];
    ht_rng_t r;
    ht_seed(&r, seed);
    const void *previous = NULL;
    for (size_t op = 0; op < ops; op++) {
        size_t k = (size_t)(ht_next(&r) % W);
        if (v[k] == NULL) {
            size_t n = pick_size(&r);
            if ((v[k] = hak_alloc(n)) == NULL)
                sec_bad("hak_alloc(%zu) failed", n);
            len[k] = n;
            apply(v[k], n, pattern, op, previous);
            previous = v[k];
            continue;
        }
        check_live(v[k], len[k], pattern);
        if (op % 5 == 0) {
            size_t n = pick_size(&r);
            unsigned char *q = hak_realloc(v[k], n);
            if (q == NULL)
                sec_bad("hak_realloc(%p, %zu) failed", (void *)v[k], n);
            v[k] = q;
            len[k] = n;
            apply(q, n, pattern, op, previous);
            continue;
        }
        hak_free(v[k]);
        v[k] = NULL;
    }
    for (size_t k = 0; k < W; k++) {
        if (v[k] != NULL)
            hak_free(v[k]);
        v[k] = NULL;
    }
}

static int nfa_single(void) {
    for (int p = 0; p < P_COUNT; p++) {
        bursts(p, (uint64_t)p);
        churn(p, 100 + (uint64_t)p, HT_SCALE(40000));
        bursts(p, (uint64_t)p + 1);
    }
    return sec_done();
}

/* ---- frees by another thread: a producer allocates and patterns, the consumer checks and frees ---- */

enum { Q = 256 };
typedef struct {
    pthread_mutex_t m;
    pthread_cond_t c;
    unsigned char *slot[Q];
    size_t len[Q];
    size_t head, tail; /* head: next to take; tail: next to fill */
    int pattern, done;
} queue_t;

static queue_t q = {.m = PTHREAD_MUTEX_INITIALIZER, .c = PTHREAD_COND_INITIALIZER};

static void *producer(void *arg) {
    size_t ops = *(size_t *)arg;
    ht_rng_t r;
    ht_seed(&r, 77 + (uint64_t)q.pattern);
    const void *previous = NULL;
    for (size_t i = 0; i < ops; i++) {
        size_t n = pick_size(&r);
        unsigned char *p = hak_alloc(n);
        if (p == NULL)
            sec_bad("hak_alloc(%zu) failed in the producer", n);
        apply(p, n, q.pattern, i, previous);
        previous = p;
        if (i % 3 == 0) { /* some stay with the producer: owner frees in between */
            check_live(p, n, q.pattern);
            hak_free(p);
            continue;
        }
        pthread_mutex_lock(&q.m);
        while (q.tail - q.head == Q)
            pthread_cond_wait(&q.c, &q.m);
        q.slot[q.tail % Q] = p;
        q.len[q.tail % Q] = n;
        q.tail++;
        pthread_cond_broadcast(&q.c);
        pthread_mutex_unlock(&q.m);
    }
    pthread_mutex_lock(&q.m);
    q.done = 1;
    pthread_cond_broadcast(&q.c);
    pthread_mutex_unlock(&q.m);
    return NULL;
}

static int nfa_cross(void) {
    size_t ops = HT_SCALE(30000);
    for (int p = 0; p < P_COUNT; p++) {
        q.pattern = p;
        q.head = q.tail = 0;
        q.done = 0;
        pthread_t t;
        if (pthread_create(&t, NULL, producer, &ops) != 0)
            sec_bad("pthread_create failed");
        for (;;) {
            pthread_mutex_lock(&q.m);
            while (q.head == q.tail && !q.done)
                pthread_cond_wait(&q.c, &q.m);
            if (q.head == q.tail) {
                pthread_mutex_unlock(&q.m);
                break;
            }
            unsigned char *b = q.slot[q.head % Q];
            size_t n = q.len[q.head % Q];
            q.head++;
            pthread_cond_broadcast(&q.c);
            pthread_mutex_unlock(&q.m);
            check_live(b, n, p);
            if (n % 4 == 0) { /* the consumer reallocates some (a remote block, moved or kept) */
                b = hak_realloc(b, n / 2 + 16);
                if (b == NULL)
                    sec_bad("hak_realloc failed in the consumer");
                apply(b, n / 2 + 16, p, n, NULL);
            }
            hak_free(b); /* a remote free, unless the realloc moved the block here */
        }
        pthread_join(t, NULL);
        churn(p, 200 + (uint64_t)p, HT_SCALE(5000)); /* the consumer's own blocks, among the remote frees */
    }
    return sec_done();
}

/* ---- a bug the tests found: live large blocks lost their region-map entries while other threads move theirs
 * ---- */

/* Movers grow and shrink large blocks (realloc moves them with mremap); checkers allocate large blocks and
 * ask for their usable size at once. With the BigCache off every large allocation maps fresh address space,
 * which the kernel may place where a mover's block has just moved from. A live block then reads as "not a
 * live hakmem block" (usable size, realloc, free all report it): the chunks of the range a block moved away
 * from are unmarked after mremap has released the range (bigcache/chunks.h, hak_chunks_move), when another
 * thread may already have mapped and marked it (fixed: the marks are now cleared before the call). Runs 8 s
 * (SEC_RACE_SECONDS to change it); the failure showed in 4 of 6 runs of 30 s on two cores before the fix. */
static atomic_int race_stop;

static long race_seconds(void) {
    const char *v = getenv("SEC_RACE_SECONDS");
    long s = v != NULL ? atol(v) : 0;
    return s > 0 ? s : 8;
}

static void *race_mover(void *arg) {
    (void)arg;
    while (!atomic_load(&race_stop)) {
        void *p = hak_alloc((size_t)1 << 20);
        for (int k = 0; k < 8 && p != NULL; k++)
            p = hak_realloc(p, (k & 1) ? (size_t)1 << 20 : (size_t)5 << 20);
        hak_free(p);
    }
    return NULL;
}

static void *race_checker(void *arg) {
    (void)arg;
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    while (!atomic_load(&race_stop)) {
        void *p = hak_alloc((size_t)1 << 20);
        if (p == NULL || hak_usable_size(p) < ((size_t)1 << 20))
            sec_bad("a live large block %p: usable size %zu", p, p ? hak_usable_size(p) : 0);
        hak_free(p);
        clock_gettime(CLOCK_MONOTONIC, &t);
        if (t.tv_sec - t0.tv_sec >= race_seconds())
            atomic_store(&race_stop, 1);
    }
    return NULL;
}

static int nfa_large_moves(void) {
    pthread_t m[2], c[3];
    for (int i = 0; i < 3; i++)
        if ((i < 2 && pthread_create(&m[i], NULL, race_mover, NULL) != 0) ||
            pthread_create(&c[i], NULL, race_checker, NULL) != 0)
            sec_bad("pthread_create failed");
    for (int i = 0; i < 3; i++)
        pthread_join(c[i], NULL);
    for (int i = 0; i < 2; i++)
        pthread_join(m[i], NULL);
    return sec_done();
}

static void test_no_false_alarm_large_moves(void **state) {
    (void)state;
    const char *env[] = {"HAKMEM_BIGCACHE_MAX=0", NULL};
    sec_timeout_s = 120;
    sec_expect_clean("nfa_large_moves", env);
}

static void test_no_false_alarm_one_thread(void **state) {
    (void)state;
    sec_expect_clean("nfa_single", NULL);
}
static void test_no_false_alarm_cross_thread(void **state) {
    (void)state;
    sec_expect_clean("nfa_cross", NULL);
}

int main(int argc, char **argv) {
    static const sec_attack_t attacks[] = {SEC_ATTACK(nfa_single), SEC_ATTACK(nfa_cross),
                                           SEC_ATTACK(nfa_large_moves)};
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_no_false_alarm_one_thread),
        cmocka_unit_test(test_no_false_alarm_cross_thread),
    };
    const struct CMUnitTest known[] = {cmocka_unit_test(test_no_false_alarm_large_moves)};
    return SEC_MAIN_KNOWN(attacks, tests, known);
}
