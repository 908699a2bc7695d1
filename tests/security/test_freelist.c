/* SPDX-License-Identifier: MIT */
/* Free-list attacks (issue items 1 and 4): a write into a freed block's first word (a use-after-free write,
 * or an 8-byte overflow from its neighbour) puts the attacker's address where the free list keeps its link.
 * Before the hardening the next allocations followed it and returned that address (a global here). Each
 * must be reported, naming the freed block, before any allocation returns the address; with
 * HAKMEM_ON_ERROR=warn the heap carries on and never hands out the address or a block twice.
 *
 * Cases: a tiny block on top of the thread cache (48 B); a pool block (20 KiB, no thread cache: the span's
 * local list); a tiny block in its span's list rather than the thread cache (200 frees of the class, the
 * cache holds 64 blocks of 48 B); a tiny block on its span's remote list (freed by another thread); an 8-byte
 * overflow from the neighbour into a free tiny and a free pool block. The same attack through the malloc
 * override is in test_override.c. */
#include "sec.h"

static void *sec_alloc(size_t n) { return hak_alloc(n); }
static void sec_free(void *p) { hak_free(p); }

/* ---- 1. a use-after-free write hands out any address ---- */

/* The attack proper: victim (a freed block of `size` bytes, on top of the list the next allocation of its
 * class pops) gets the attacker's address in its first word; then `tries` allocations of the class, none of
 * which may return the address. With warn, the heap must go on working. */
static int write_after_free_then_allocate(unsigned char *victim, size_t size, size_t tries) {
    void *t = sec_target;
    SEC_EXPECT(victim);
    memcpy(victim, &t, sizeof t); /* the stale pointer's write: the attacker's address */
    void **got = calloc(tries, sizeof *got);
    if (got == NULL)
        sec_bad("setup: out of memory");
    for (size_t i = 0; i < tries; i++) {
        got[i] = hak_alloc(size);
        sec_check_not_target(got[i], "an allocation after the use-after-free write");
    }
    /* HAKMEM_ON_ERROR=warn only: nothing handed out twice, and the class still works */
    sec_check_distinct(got, tries, size, "allocations after the use-after-free write");
    sec_churn(sec_alloc, sec_free, size, 300, got, tries, "later allocations of the class");
    for (size_t i = 0; i < tries; i++)
        hak_free(got[i]);
    free(got);
    return sec_done();
}

/* A tiny block, freed last: the top of the thread cache. */
static int uaf_tiny(void) {
    unsigned char *p = hak_alloc(48);
    if (p == NULL)
        sec_bad("setup: hak_alloc(48) failed");
    hak_free(p);
    return write_after_free_then_allocate(p, 48, 2);
}

/* A pool block (20 KiB): pool classes have no thread cache, so it tops its span's local list. */
static int uaf_pool(void) {
    unsigned char *p = hak_alloc(20 * 1024);
    if (p == NULL)
        sec_bad("setup: hak_alloc(20 KiB) failed");
    hak_free(p);
    return write_after_free_then_allocate(p, 20 * 1024, 2);
}

/* A tiny block in its span's list, not the thread cache: 200 blocks of 48 B freed, of which the cache takes
 * the first 64 (src/tiny/tcache.c: at most 64 blocks or 64 KiB per class); the last one freed tops its span's
 * local list, behind the cache and the span's unused carved blocks, so the attack allocates until it comes.
 */
static int uaf_span(void) {
    enum { N = 200 };
    static unsigned char *v[N];
    for (int i = 0; i < N; i++)
        if ((v[i] = hak_alloc(48)) == NULL)
            sec_bad("setup: hak_alloc(48) failed");
    for (int i = 0; i < N; i++)
        hak_free(v[i]);
    return write_after_free_then_allocate(v[N - 1], 48, 600);
}

/* A tiny block freed by another thread: it sits on its span's remote list until the owner collects it. */
static void *free_in_thread(void *p) {
    hak_free(p);
    return NULL;
}

static int uaf_remote(void) {
    enum { N = 100 };
    static unsigned char *keep[N]; /* the span stays the owner's current one */
    for (int i = 0; i < N; i++)
        if ((keep[i] = hak_alloc(48)) == NULL)
            sec_bad("setup: hak_alloc(48) failed");
    unsigned char *p = hak_alloc(48);
    if (p == NULL)
        sec_bad("setup: hak_alloc(48) failed");
    sec_in_thread(free_in_thread, p);
    int rc = write_after_free_then_allocate(p, 48, 3000);
    for (int i = 0; i < N; i++)
        hak_free(keep[i]);
    return rc;
}

/* ---- 4. an 8-byte overflow into a free neighbour ---- */

/* Two adjacent blocks a, b of `size` bytes; b is freed, then a is overflowed by 8 bytes (its usable size and
 * on: b's first word) with the attacker's address; then two allocations of the class. */
static int overflow_into_free_neighbour(size_t size) {
    enum { N = 16 };
    unsigned char *v[N];
    for (int i = 0; i < N; i++)
        if ((v[i] = hak_alloc(size)) == NULL)
            sec_bad("setup: hak_alloc(%zu) failed", size);
    int k = -1;
    for (int i = 0; i + 1 < N && k < 0; i++)
        if (v[i + 1] == v[i] + hak_usable_size(v[i]))
            k = i;
    if (k < 0)
        sec_bad("setup: no two adjacent blocks of %zu bytes among %d", size, N);
    unsigned char *a = v[k], *b = v[k + 1];
    size_t usable = hak_usable_size(a);
    hak_free(b);
    void *t = sec_target;
    SEC_EXPECT(b);
    memcpy(a + usable, &t, sizeof t); /* 8 bytes past the end of a: the free neighbour's first word */
    void *x = hak_alloc(size), *y = hak_alloc(size);
    sec_check_not_target(x, "the first allocation after the overflow");
    sec_check_not_target(y, "the second allocation after the overflow");
    /* HAKMEM_ON_ERROR=warn only: the live blocks and the new ones are distinct, the class still works */
    void *live[N + 1];
    size_t n = 0;
    for (int i = 0; i < N; i++)
        if (i != k + 1)
            live[n++] = v[i];
    live[n++] = x;
    live[n++] = y;
    sec_churn(sec_alloc, sec_free, size, 200, live, n, "later allocations of the class");
    for (size_t i = 0; i < n; i++)
        hak_free(live[i]);
    return sec_done();
}

static int overflow_tiny(void) { return overflow_into_free_neighbour(48); }
static int overflow_pool(void) { return overflow_into_free_neighbour(20 * 1024); }

/* ---- tests ---- */

static void test_uaf_tiny(void **state) {
    (void)state;
    SEC_NEEDS_CHECKS();
    sec_attack("uaf_tiny");
}
static void test_uaf_pool(void **state) {
    (void)state;
    SEC_NEEDS_CHECKS();
    sec_attack("uaf_pool");
}
static void test_uaf_span(void **state) {
    (void)state;
    SEC_NEEDS_CHECKS();
    sec_attack("uaf_span");
}
static void test_uaf_remote(void **state) {
    (void)state;
    SEC_NEEDS_CHECKS();
    sec_attack("uaf_remote");
}
static void test_overflow_tiny(void **state) {
    (void)state;
    SEC_NEEDS_CHECKS();
    sec_attack("overflow_tiny");
}
static void test_overflow_pool(void **state) {
    (void)state;
    SEC_NEEDS_CHECKS();
    sec_attack("overflow_pool");
}

int main(int argc, char **argv) {
    static const sec_attack_t attacks[] = {
        SEC_ATTACK(uaf_tiny),   SEC_ATTACK(uaf_pool),      SEC_ATTACK(uaf_span),
        SEC_ATTACK(uaf_remote), SEC_ATTACK(overflow_tiny), SEC_ATTACK(overflow_pool),
    };
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_uaf_tiny),      cmocka_unit_test(test_uaf_pool),
        cmocka_unit_test(test_uaf_span),      cmocka_unit_test(test_uaf_remote),
        cmocka_unit_test(test_overflow_tiny), cmocka_unit_test(test_overflow_pool),
    };
    return SEC_MAIN(attacks, tests);
}
