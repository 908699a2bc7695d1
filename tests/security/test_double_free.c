/* SPDX-License-Identifier: MIT */
/* Double frees that are not immediate (issue item 2). Before the hardening only a second free of the block on
 * top of the thread cache (or of the span's local list) was caught; any other one linked the block into a
 * free list twice, and it was then handed out twice (or the lists got a cycle). Each case must be reported,
 * naming the block, and the block never handed out twice (checked by the allocations that follow, which
 * with HAKMEM_ON_ERROR=warn must also show that the heap still works):
 *   free a, free b, free a (a tiny block, and a pool block);
 *   free a, then 200 other blocks of its class (the thread cache holds 64: most go to the span), then a;
 *   a remote free (another thread frees a), then the owner frees a; and the other order;
 *   a block of a thread that has exited (its SuperSlab abandoned) freed twice, then another thread allocates
 *   (it adopts the SuperSlab: this must not hang, the parent's timeout catches that). */
#include "sec.h"

static void *sec_alloc(size_t n) { return hak_alloc(n); }
static void sec_free(void *p) { hak_free(p); }

#define SZ 48

static void *new_block(void) {
    unsigned char *p = hak_alloc(SZ);
    if (p == NULL)
        sec_bad("setup: hak_alloc(%d) failed", SZ);
    memset(p, 0x5a, SZ);
    return p;
}

/* After the second free: `n` allocations of the class, all distinct (none is the block a second time). */
static int allocate_after(size_t n, void *const *live, size_t nlive) {
    sec_churn(sec_alloc, sec_free, SZ, n, live, nlive, "allocations after the double free");
    return sec_done();
}

static int df_aba(void) {
    void *a = new_block(), *b = new_block();
    hak_free(a);
    hak_free(b); /* b tops the thread cache: freeing a again is not an immediate double free */
    SEC_EXPECT(a);
    hak_free(a);
    return allocate_after(300, NULL, 0);
}

/* The same with pool blocks (20 KiB: no thread cache, the span's local list). */
static int df_pool(void) {
    enum { P = 20 * 1024 };
    void *a = hak_alloc(P), *b = hak_alloc(P);
    if (a == NULL || b == NULL)
        sec_bad("setup: hak_alloc(%d) failed", P);
    hak_free(a);
    hak_free(b);
    SEC_EXPECT(a);
    hak_free(a);
    sec_churn(sec_alloc, sec_free, P, 50, NULL, 0, "allocations after the double free");
    return sec_done();
}

static int df_far(void) {
    enum { N = 200 };
    static void *others[N];
    void *a = new_block();
    for (int i = 0; i < N; i++)
        others[i] = new_block();
    hak_free(a);
    for (int i = 0; i < N; i++)
        hak_free(others[i]);
    SEC_EXPECT(a);
    hak_free(a);
    return allocate_after(600, NULL, 0);
}

static void *free_in_thread(void *p) {
    hak_free(p);
    return NULL;
}

/* Another thread frees a (a remote free onto its span's remote list), then its owner frees it again. */
static int df_remote_then_owner(void) {
    void *a = new_block();
    sec_in_thread(free_in_thread, a);
    SEC_EXPECT(a);
    hak_free(a);
    return allocate_after(2000, NULL, 0);
}

/* The owner frees a (into its thread cache), then another thread frees it again. */
static int df_owner_then_remote(void) {
    void *a = new_block();
    hak_free(a);
    SEC_EXPECT(a);
    sec_in_thread(free_in_thread, a);
    return allocate_after(2000, NULL, 0);
}

/* ---- a block of an exited thread ---- */

typedef struct {
    void *keep[8]; /* live blocks: the exited thread's span is not empty, so its SuperSlab is abandoned */
    void *a;       /* freed by the thread before it exits */
} exited_t;

static void *exiting_thread(void *arg) {
    exited_t *x = arg;
    void *tmp[32];
    for (int i = 0; i < 8; i++)
        x->keep[i] = new_block();
    for (int i = 0; i < 32; i++)
        tmp[i] = new_block();
    x->a = new_block();
    for (int i = 0; i < 32; i++)
        hak_free(tmp[i]);
    hak_free(x->a);
    return NULL; /* thread exit: the cache goes back to the span, the SuperSlab is abandoned */
}

static void *allocating_thread(void *arg) {
    exited_t *x = arg;
    sec_churn(sec_alloc, sec_free, SZ, 3000, x->keep, 8,
              "another thread's allocations after the double free");
    return NULL;
}

static int df_abandoned(void) {
    static exited_t x;
    sec_in_thread(exiting_thread, &x); /* joined: it has exited */
    SEC_EXPECT(x.a);
    hak_free(x.a);                        /* a second free of the exited thread's block */
    sec_in_thread(allocating_thread, &x); /* adopts the abandoned SuperSlab */
    sec_churn(sec_alloc, sec_free, SZ, 3000, x.keep, 8, "allocations after the double free");
    for (int i = 0; i < 8; i++)
        hak_free(x.keep[i]);
    return sec_done();
}

/* ---- tests ---- */

static void test_double_free_aba(void **state) {
    (void)state;
    SEC_NEEDS_CHECKS();
    sec_attack("df_aba");
}
static void test_double_free_pool(void **state) {
    (void)state;
    SEC_NEEDS_CHECKS();
    sec_attack("df_pool");
}
static void test_double_free_after_200_frees(void **state) {
    (void)state;
    SEC_NEEDS_CHECKS();
    sec_attack("df_far");
}
static void test_double_free_remote_then_owner(void **state) {
    (void)state;
    SEC_NEEDS_CHECKS();
    sec_attack("df_remote_then_owner");
}
static void test_double_free_owner_then_remote(void **state) {
    (void)state;
    SEC_NEEDS_CHECKS();
    sec_attack("df_owner_then_remote");
}
static void test_double_free_exited_thread(void **state) {
    (void)state;
    SEC_NEEDS_CHECKS();
    sec_attack("df_abandoned");
}

int main(int argc, char **argv) {
    static const sec_attack_t attacks[] = {
        SEC_ATTACK(df_aba),
        SEC_ATTACK(df_pool),
        SEC_ATTACK(df_far),
        SEC_ATTACK(df_remote_then_owner),
        SEC_ATTACK(df_owner_then_remote),
        SEC_ATTACK(df_abandoned),
    };
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_double_free_aba),
        cmocka_unit_test(test_double_free_pool),
        cmocka_unit_test(test_double_free_after_200_frees),
        cmocka_unit_test(test_double_free_remote_then_owner),
        cmocka_unit_test(test_double_free_owner_then_remote),
        cmocka_unit_test(test_double_free_exited_thread),
    };
    return SEC_MAIN(attacks, tests);
}
