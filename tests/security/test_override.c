/* SPDX-License-Identifier: MIT */
/* The malloc override decides ownership itself (issue items 6, and 1 through malloc). Before the hardening
 * the override sent every pointer that hakmem's region map did not mark to glibc's free: a stack address, a
 * global or a wild pointer made glibc abort with its own message or crash (SIGSEGV), and pointers into the
 * second and later 2 MiB chunks of a large block (live or freed: only its first chunk was marked) went to
 * glibc as well, which read the program's bytes as a chunk header; bytes that looked like a glibc mmapped
 * chunk made glibc unmap part of the live large block. Now every chunk of hakmem's memory is marked, and
 * outside it only plausible glibc chunks go to glibc: each of these must be reported by hakmem with the
 * pointer (no segfault; with HAKMEM_ON_ERROR=warn the program carries on and the large block is still fully
 * mapped and intact), while glibc's own blocks (__libc_malloc) are still freed by glibc without a report.
 * A use-after-free write through malloc, and a workload of writes that must raise no false alarm, as in
 * test_freelist.c and test_no_false_alarm.c.
 *
 * Built twice: run with LD_PRELOAD=libhakmem_override.so in the children only (SEC_OVERRIDE_LIB, or the
 * environment variable HT_SEC_PRELOAD, which run_old_tree.sh uses for an older library), and with
 * -DOVERRIDE_STATIC linked with libhakmem_override.a. The preloaded program links no hakmem library: hakmem's
 * API is looked up with dlsym, which also proves the override is in the process. */
#include "sec.h"

#include <dlfcn.h>
#include <malloc.h>

extern void *__libc_malloc(size_t size);

/* Opaque calls keep the compiler from reasoning about frees of non-heap objects. */
static void *(*volatile v_malloc)(size_t) = malloc;
static void (*volatile v_free)(void *) = free;
static void *(*volatile v_realloc)(void *, size_t) = realloc;

static void *ov_malloc(size_t n) { return v_malloc(n); }
static void ov_free(void *p) { v_free(p); }

static hak_heap_t *(*p_heap_of)(const void *);

/* Every child starts here: hakmem's override must be the malloc of this process. */
static void require_override(void) {
#ifdef OVERRIDE_STATIC
    p_heap_of = hak_heap_of;
#else
    p_heap_of = (hak_heap_t * (*)(const void *)) dlsym(RTLD_DEFAULT, "hak_heap_of");
#endif
    if (p_heap_of == NULL)
        sec_bad("setup: hakmem's override is not in the process (no hak_heap_of)");
    void *p = v_malloc(48);
    if (p == NULL || p_heap_of(p) == NULL)
        sec_bad("setup: malloc(48) = %p is not hakmem's: the override is not in effect", p);
    v_free(p);
}

#define LARGE_N ((size_t)5 << 20) /* a large block: a mapping of three 2 MiB chunks */
#define LHDR ((size_t)64)

/* ---- 1. a use-after-free write through malloc ---- */

static int ov_uaf_tiny(void) {
    require_override();
    unsigned char *p = v_malloc(48);
    v_free(p);
    void *t = sec_target;
    SEC_EXPECT(p);
    memcpy(p, &t, sizeof t);
    void *got[2] = {v_malloc(48), v_malloc(48)};
    sec_check_not_target(got[0], "malloc(48) after the use-after-free write");
    sec_check_not_target(got[1], "malloc(48) after the use-after-free write");
    sec_churn(ov_malloc, ov_free, 48, 300, got, 2, "later allocations of the class");
    v_free(got[0]);
    v_free(got[1]);
    return sec_done();
}

/* ---- 6. frees of pointers that are neither hakmem's nor glibc's ---- */

/* After a report with HAKMEM_ON_ERROR=warn: malloc still works. */
static int carry_on(void) {
    sec_churn(ov_malloc, ov_free, 100, 200, NULL, 0, "allocations after the bad free");
    sec_churn(ov_malloc, ov_free, LARGE_N, 3, NULL, 0, "large allocations after the bad free");
    return sec_done();
}

static int ov_free_stack(void) {
    require_override();
    uint64_t buf[8] __attribute__((aligned(16)));
    memset(buf, 0, sizeof buf);
    SEC_EXPECT(&buf[2]);
    v_free(&buf[2]);
    if (!ht_all_equal(buf, sizeof buf, 0))
        sec_bad("free of a stack address wrote into the stack buffer");
    return carry_on();
}

static uint64_t global_buf[8] __attribute__((aligned(16)));

static int ov_free_global(void) {
    require_override();
    SEC_EXPECT(&global_buf[2]);
    v_free(&global_buf[2]);
    if (!ht_all_equal(global_buf, sizeof global_buf, 0))
        sec_bad("free of a global wrote into it");
    return carry_on();
}

static int ov_free_wild(void) {
    require_override();
    void *wild = (void *)(uintptr_t)0x10000008;
    if (sec_mapped(wild, 1))
        sec_bad("setup: %p is mapped in this process", wild);
    SEC_EXPECT(wild);
    v_free(wild);
    return carry_on();
}

/* realloc and malloc_usable_size decide the same way as free. */
static int ov_realloc_stack(void) {
    require_override();
    uint64_t buf[8] __attribute__((aligned(16)));
    memset(buf, 0, sizeof buf);
    SEC_EXPECT(&buf[2]);
    errno = 0;
    void *q = v_realloc(&buf[2], 100);
    if (q != NULL)
        sec_bad("realloc of a stack address returned %p", q);
    if (errno != EINVAL)
        sec_bad("realloc of a stack address: errno %d, expected EINVAL", errno);
    return carry_on();
}

static int ov_usable_size_global(void) {
    require_override();
    SEC_EXPECT(&global_buf[4]);
    size_t n = malloc_usable_size(&global_buf[4]);
    if (n != 0)
        sec_bad("malloc_usable_size of a global returned %zu", n);
    return carry_on();
}

/* ---- 6. pointers into large blocks, past their first chunk ---- */

static unsigned char *patterned_large(uint64_t tag) {
    unsigned char *p = v_malloc(LARGE_N);
    if (p == NULL)
        sec_bad("setup: malloc(%zu) failed", LARGE_N);
    if (p_heap_of(p) == NULL)
        sec_bad("setup: malloc(%zu) = %p is not hakmem's", LARGE_N, (void *)p);
    ht_fill(p, LARGE_N, tag);
    return p;
}

static void check_large_intact(const unsigned char *p, uint64_t tag, const char *what) {
    if (!sec_mapped(p, LARGE_N))
        sec_bad("%s: the live large block %p is no longer fully mapped", what, (const void *)p);
    size_t bad = ht_check(p, LARGE_N, tag);
    if (bad != (size_t)-1)
        sec_bad("%s: the live large block %p was damaged at offset %zu", what, (const void *)p, bad);
}

static int ov_free_large_inner(void) {
    require_override();
    unsigned char *p = patterned_large(41);
    unsigned char *x = p - LHDR + HT_CHUNK + 16; /* in the block's second chunk */
    SEC_EXPECT(x);
    v_free(x);
    check_large_intact(p, 41, "after free of a pointer into its second chunk");
    v_free(p);
    return carry_on();
}

static int ov_free_large_freed(void) {
    require_override();
    unsigned char *p = patterned_large(42);
    unsigned char *keep = patterned_large(43);
    v_free(p);
    unsigned char *x = p - LHDR + HT_CHUNK + 16; /* in the second chunk of the freed block */
    SEC_EXPECT(x);
    v_free(x);
    check_large_intact(keep, 43, "after free of a pointer into a freed large block");
    v_free(keep);
    return carry_on();
}

/* The program's own bytes in a live large block look like a glibc mmapped chunk at a page boundary of its
 * second chunk (prev_size 0, size 1 MiB with IS_MMAPPED): freeing the address past that "header" must not
 * reach glibc, which would unmap 1 MiB of the block. */
static int ov_fake_glibc_chunk(void) {
    require_override();
    unsigned char *p = patterned_large(44);
    unsigned char *hdr = p - LHDR + HT_CHUNK + 4096;
    uint64_t fake[2] = {0, ((uint64_t)1 << 20) | 2};
    memcpy(hdr, fake, sizeof fake);
    SEC_EXPECT(hdr + 16);
    v_free(hdr + 16);
    if (!sec_mapped(p, LARGE_N))
        sec_bad("free(%p) unmapped part of the live large block %p", (void *)(hdr + 16), (void *)p);
    ht_fill_range(p, (size_t)(hdr - p), (size_t)(hdr - p) + 16, 44); /* undo the program's own write */
    check_large_intact(p, 44, "after free of the fake glibc chunk inside it");
    v_free(p);
    return carry_on();
}

/* ---- glibc's own blocks still go to glibc, without a report ---- */

static int ov_glibc_blocks(void) {
    require_override();
    size_t sizes[] = {24, 100, 5000, 300000 /* an mmapped chunk */};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        unsigned char *g = __libc_malloc(sizes[i]);
        if (g == NULL)
            sec_bad("setup: __libc_malloc(%zu) failed", sizes[i]);
        if (p_heap_of(g) != NULL)
            sec_bad("hak_heap_of(%p), a glibc block, is not NULL", (void *)g);
        memset(g, 0x5c, sizes[i]);
        if (malloc_usable_size(g) < sizes[i])
            sec_bad("malloc_usable_size(glibc block of %zu) = %zu", sizes[i], malloc_usable_size(g));
        if (i % 2) {
            g = v_realloc(g, sizes[i] * 2); /* glibc's realloc: the block stays glibc's */
            if (g == NULL || p_heap_of(g) != NULL || g[0] != 0x5c || g[sizes[i] - 1] != 0x5c)
                sec_bad("realloc of a glibc block of %zu bytes went wrong (%p)", sizes[i], (void *)g);
        }
        v_free(g);
    }
    return sec_done();
}

/* ---- no false alarm through malloc ---- */

static void *nfa_thread(void *arg) {
    void **v = arg;
    for (int i = 0; i < 1000; i++)
        v_free(v[i]); /* remote frees */
    return NULL;
}

static int ov_no_false_alarm(void) {
    require_override();
    static void *v[1000];
    ht_rng_t r;
    ht_seed(&r, 5);
    for (int round = 0; round < 40; round++) {
        int pattern = round % 7;
        for (int i = 0; i < 1000; i++) {
            size_t n = 16 + (size_t)(ht_next(&r) % (i % 10 ? 500 : 60000));
            unsigned char *p = v_malloc(n);
            if (p == NULL)
                sec_bad("malloc(%zu) failed", n);
            uint64_t w = pattern == 1 ? (uint64_t)(i % 300) : pattern == 2 ? (uint64_t)(uintptr_t)(p + n) : 0;
            if (pattern == 0)
                p[0] = (unsigned char)i; /* the first byte only */
            else if (pattern <= 3)
                memcpy(p + 8, &w, 8); /* the second word only: small integer, neighbour, zero */
            else if (pattern == 4)
                memset(p, 0, n);
            else if (pattern == 5)
                memset(p, 0xff, n); /* pattern 6: nothing */
            if (malloc_usable_size(p) < n)
                sec_bad("malloc_usable_size(%p) < %zu for a live block", (void *)p, n);
            if (i % 7 == 0 && (p = v_realloc(p, n + 100)) == NULL)
                sec_bad("realloc failed");
            v[i] = p;
        }
        if (round % 2)
            sec_in_thread(nfa_thread, v);
        else
            for (int i = 0; i < 1000; i++)
                v_free(v[i]);
    }
    return sec_done();
}

/* ---- tests ---- */

static void test_override_uaf_tiny(void **state) {
    (void)state;
    SEC_NEEDS_CHECKS();
    sec_attack("ov_uaf_tiny");
}
static void test_override_free_stack(void **state) {
    (void)state;
    sec_attack("ov_free_stack");
}
static void test_override_free_global(void **state) {
    (void)state;
    sec_attack("ov_free_global");
}
static void test_override_free_wild(void **state) {
    (void)state;
    sec_attack("ov_free_wild");
}
static void test_override_realloc_stack(void **state) {
    (void)state;
    sec_attack("ov_realloc_stack");
}
static void test_override_usable_size_global(void **state) {
    (void)state;
    sec_attack("ov_usable_size_global");
}
static void test_override_free_large_second_chunk(void **state) {
    (void)state;
    sec_attack("ov_free_large_inner");
}
static void test_override_free_into_freed_large(void **state) {
    (void)state;
    sec_attack("ov_free_large_freed");
}
static void test_override_fake_glibc_chunk_in_large(void **state) {
    (void)state;
    sec_attack("ov_fake_glibc_chunk");
}
static void test_override_glibc_blocks_go_to_glibc(void **state) {
    (void)state;
    sec_expect_clean("ov_glibc_blocks", NULL);
}
static void test_override_no_false_alarm(void **state) {
    (void)state;
    sec_expect_clean("ov_no_false_alarm", NULL);
}

int main(int argc, char **argv) {
#ifdef OVERRIDE_STATIC
    sec_child_env[0] = "LD_PRELOAD"; /* the override is linked in */
#else
    static char preload[4096];
    const char *lib = getenv("HT_SEC_PRELOAD");
    snprintf(preload, sizeof preload, "LD_PRELOAD=%s", lib != NULL && *lib ? lib : SEC_OVERRIDE_LIB);
    sec_child_env[0] = preload;
#endif
    static const sec_attack_t attacks[] = {
        SEC_ATTACK(ov_uaf_tiny),         SEC_ATTACK(ov_free_stack),         SEC_ATTACK(ov_free_global),
        SEC_ATTACK(ov_free_wild),        SEC_ATTACK(ov_free_large_inner),   SEC_ATTACK(ov_free_large_freed),
        SEC_ATTACK(ov_fake_glibc_chunk), SEC_ATTACK(ov_glibc_blocks),       SEC_ATTACK(ov_no_false_alarm),
        SEC_ATTACK(ov_realloc_stack),    SEC_ATTACK(ov_usable_size_global),
    };
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_override_uaf_tiny),
        cmocka_unit_test(test_override_free_stack),
        cmocka_unit_test(test_override_free_global),
        cmocka_unit_test(test_override_free_wild),
        cmocka_unit_test(test_override_realloc_stack),
        cmocka_unit_test(test_override_usable_size_global),
        cmocka_unit_test(test_override_free_large_second_chunk),
        cmocka_unit_test(test_override_free_into_freed_large),
        cmocka_unit_test(test_override_fake_glibc_chunk_in_large),
        cmocka_unit_test(test_override_glibc_blocks_go_to_glibc),
        cmocka_unit_test(test_override_no_false_alarm),
    };
    return SEC_MAIN(attacks, tests);
}
