/* SPDX-License-Identifier: MIT */
/* Calls on freed blocks and interior pointers (issue item 3). Before the hardening:
 *   hak_realloc of a freed block copied it into a new block and freed it a second time (a hidden double
 *   free: the block was then handed out twice);
 *   hak_usable_size of a freed block returned its size, as if it were live;
 *   a span that had once served an alignment above 8 KiB (hak_aligned_alloc(16384, 100) over-allocates in
 *   the 20 KiB class and returns a pointer inside the block) took any interior pointer freed into it for an
 *   aligned one and freed the block under it, still in use by its owner, who then got it again from the next
 *   allocation.
 * Each must be reported, naming the pointer; with HAKMEM_ON_ERROR=warn the call fails (realloc: NULL and
 * EINVAL; usable size: 0), nothing is freed, and the heap carries on. */
#include "sec.h"

static void *sec_alloc(size_t n) { return hak_alloc(n); }
static void sec_free(void *p) { hak_free(p); }

#define SZ 48

static int realloc_freed(void) {
    unsigned char *p = hak_alloc(SZ), *q = hak_alloc(SZ);
    if (p == NULL || q == NULL)
        sec_bad("setup: hak_alloc failed");
    hak_free(p);
    hak_free(q); /* p is not on top of the thread cache any more */
    SEC_EXPECT(p);
    errno = 0;
    void *r = hak_realloc(p, 100);
    int e = errno;
    /* a hidden second free of p shows as p handed out twice */
    sec_churn(sec_alloc, sec_free, SZ, 300, NULL, 0, "allocations after hak_realloc of a freed block");
    if (r != NULL)
        sec_bad("hak_realloc of a freed block returned %p (and freed the block once more)", r);
    if (e != EINVAL)
        sec_bad("hak_realloc of a freed block: NULL with errno %d, expected EINVAL", e);
    return sec_done();
}

static int usable_size_freed(void) {
    unsigned char *p = hak_alloc(SZ);
    if (p == NULL)
        sec_bad("setup: hak_alloc failed");
    hak_free(p);
    SEC_EXPECT(p);
    size_t n = hak_usable_size(p);
    if (n != 0)
        sec_bad("hak_usable_size of a freed block returned %zu", n);
    sec_churn(sec_alloc, sec_free, SZ, 100, NULL, 0, "allocations after hak_usable_size of a freed block");
    return sec_done();
}

/* 16384-aligned 100 bytes: over-allocated in the 20 KiB class, the pointer inside the block. Then a normal
 * block of that class from the same thread (the same span), and a free of a pointer 4 KiB into it. */
#define POOL_SZ 20000
static int interior_after_aligned(void) {
    unsigned char *q = hak_aligned_alloc(16384, 100);
    unsigned char *n = hak_alloc(POOL_SZ);
    if (q == NULL || n == NULL || ((uintptr_t)q & 16383) != 0)
        sec_bad("setup: hak_aligned_alloc(16384, 100) = %p, hak_alloc(%d) = %p", (void *)q, POOL_SZ,
                (void *)n);
    memset(q, 0x11, 100);
    ht_fill(n, POOL_SZ, 7);
    unsigned char *inner = n + 4096;
    SEC_EXPECT(inner);
    hak_free(inner); /* an interior pointer, not an aligned one: must not free n */
    /* n is still the program's: the next allocations of the class must not return it */
    void *m[4];
    for (int i = 0; i < 4; i++) {
        m[i] = hak_alloc(POOL_SZ);
        if ((unsigned char *)m[i] < n + POOL_SZ && (unsigned char *)m[i] + POOL_SZ > n)
            sec_bad("hak_alloc(%d) returned %p: the live block %p was freed through its interior pointer %p",
                    POOL_SZ, m[i], (void *)n, (void *)inner);
    }
    if (ht_check(n, POOL_SZ, 7) != (size_t)-1)
        sec_bad("the live block %p was damaged", (void *)n);
    if (hak_usable_size(n) < POOL_SZ)
        sec_bad("the live block %p: usable size %zu", (void *)n, hak_usable_size(n));
    for (int i = 0; i < 4; i++)
        hak_free(m[i]);
    hak_free(n);
    hak_free(q); /* the aligned pointer itself is freed as its block */
    return sec_done();
}

static void test_realloc_of_freed_block(void **state) {
    (void)state;
    SEC_NEEDS_CHECKS();
    sec_attack("realloc_freed");
}
static void test_usable_size_of_freed_block(void **state) {
    (void)state;
    SEC_NEEDS_CHECKS();
    sec_attack("usable_size_freed");
}
static void test_interior_pointer_in_aligned_span(void **state) {
    (void)state;
    SEC_NEEDS_CHECKS();
    sec_attack("interior_after_aligned");
}

int main(int argc, char **argv) {
    static const sec_attack_t attacks[] = {
        SEC_ATTACK(realloc_freed),
        SEC_ATTACK(usable_size_freed),
        SEC_ATTACK(interior_after_aligned),
    };
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_realloc_of_freed_block),
        cmocka_unit_test(test_usable_size_of_freed_block),
        cmocka_unit_test(test_interior_pointer_in_aligned_span),
    };
    return SEC_MAIN(attacks, tests);
}
