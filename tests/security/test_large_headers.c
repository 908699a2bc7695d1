/* SPDX-License-Identifier: MIT */
/* Large-block headers and BigCache entries (issue item 5). A large block starts 64 bytes into its mapping,
 * past a header that the free path trusts; a freed block's mapping is cached by the BigCache, whose entry
 * sits at the start of the mapping. Before the hardening:
 *   an 8-byte underflow (a write at p - 8) rewrote a list link of the header, and hak_free(p) then wrote
 *   through it (to the attacker's address: a global here);
 *   size fields of the header (in p - 64 .. p) made larger made hak_free release address space that
 *   neighbouring live blocks use (the next large allocations overlapped them); junk over the whole header
 *   was rejected by the old range check (reported as a foreign pointer), and stays a test of the new one;
 *   writes over a freed block's cached entry crashed the next large allocation (in the old layout the entry
 *   lay below the block, so writes into the block's first bytes went unnoticed and did no harm; in the new
 *   one those bytes hold the entry's check word).
 * Each must be reported, naming the header (p - 64) or the block, without writing through the header or
 * touching other mappings; with HAKMEM_ON_ERROR=warn the corrupted block is left alone (its mapping and
 * contents intact), the neighbouring mappings stay mapped and intact, and later large allocations work and
 * overlap nothing live. */
#include "sec.h"

#define LSZ ((size_t)1 << 20) /* a large block: one 2 MiB mapping */
#define LHDR ((size_t)64)     /* the header below the block (docs/ARCHITECTURE.md) */
#define REACH ((size_t)64 << 20)

static void fill_ends(unsigned char *p, size_t n, uint64_t tag) {
    ht_fill_range(p, 0, 4096, tag);
    ht_fill_range(p, n - 4096, n, tag);
}

static int ends_intact(const unsigned char *p, size_t n, uint64_t tag) {
    return ht_check_range(p, 0, 4096, tag) == (size_t)-1 && ht_check_range(p, n - 4096, n, tag) == (size_t)-1;
}

/* The mapping of a large block of LSZ bytes at p. */
static int overlaps_mapping(const void *q, size_t n, const unsigned char *p) {
    uintptr_t a = (uintptr_t)q, b = (uintptr_t)p - LHDR;
    return a < b + HT_CHUNK && a + n > b;
}

/* After the attack: new large blocks of several sizes must overlap none of the live ones (nor, if hakmem
 * reported the attack and carried on, the attacked block's mapping, which it must have left alone), and
 * writing them must not damage those. */
static void large_allocations_after(unsigned char *const *live, const uint64_t *tags, size_t n_live,
                                    const unsigned char *attacked) {
    static const size_t sizes[] = {LSZ, 8 * HT_MIB, 16 * HT_MIB, 32 * HT_MIB};
    unsigned char *q[4];
    for (int i = 0; i < 4; i++) {
        q[i] = hak_alloc(sizes[i]);
        if (q[i] == NULL)
            sec_bad("hak_alloc(%zu) failed after the attack", sizes[i]);
        sec_check_not_target(q[i], "a large allocation after the attack");
        for (size_t k = 0; k < n_live; k++)
            if (overlaps_mapping(q[i], sizes[i], live[k]))
                sec_bad("hak_alloc(%zu) returned %p, overlapping the live block %p", sizes[i], (void *)q[i],
                        (void *)live[k]);
        if (attacked != NULL && sec_warn_mode() && overlaps_mapping(q[i], sizes[i], attacked))
            sec_bad("hak_alloc(%zu) returned %p, in the mapping of the block whose header was corrupted (%p)",
                    sizes[i], (void *)q[i], (void *)attacked);
        memset(q[i], 0xee, 4096);
        memset(q[i] + sizes[i] - 4096, 0xee, 4096);
    }
    for (size_t k = 0; k < n_live; k++)
        if (!sec_mapped(live[k], LSZ) || !ends_intact(live[k], LSZ, tags[k]))
            sec_bad("the live block %p was unmapped or damaged", (void *)live[k]);
    for (int i = 0; i < 4; i++)
        hak_free(q[i]);
}

/* ---- an 8-byte underflow into the header of a live block ---- */

static unsigned char bystander[1024] __attribute__((aligned(64))); /* where the corrupted word points */

static int large_underflow(void) {
    unsigned char *p = hak_alloc(LSZ), *newer = hak_alloc(LSZ); /* p has a neighbour in the heap's list */
    if (p == NULL || newer == NULL)
        sec_bad("setup: hak_alloc(1 MiB) failed");
    fill_ends(p, LSZ, 1);
    fill_ends(newer, LSZ, 2);
    memset(bystander, 0xa5, sizeof bystander);
    uintptr_t fake = (uintptr_t)bystander + 256;
    SEC_EXPECT2(p - LHDR, p);
    memcpy(p - 8, &fake, sizeof fake); /* the word just below the block */
    hak_free(p);
    if (!ht_all_equal(bystander, sizeof bystander, 0xa5))
        sec_bad("hak_free(%p) wrote through its corrupted header into %p", (void *)p, (void *)bystander);
    /* HAKMEM_ON_ERROR=warn: p was left alone */
    if (sec_warn_mode() && (!sec_mapped(p, LSZ) || !ends_intact(p, LSZ, 1)))
        sec_bad("the block with the corrupted header (%p) was unmapped or damaged", (void *)p);
    unsigned char *live[] = {newer};
    uint64_t tags[] = {2};
    large_allocations_after(live, tags, 1, p);
    hak_free(newer);
    return sec_done();
}

/* ---- junk over the header of a live block, with live neighbours ---- */

/* Neighbours first, the victim last: mmap places it below them, so a size made larger reaches them. What was
 * mapped in the REACH bytes from the victim's mapping on must still be mapped after the free. */
static int large_header_corrupt(int inflate_sizes) {
    enum { NN = 6 };
    static unsigned char *nb[NN];
    static uint64_t tags[NN];
    for (int i = 0; i < NN; i++) {
        if ((nb[i] = hak_alloc(LSZ)) == NULL)
            sec_bad("setup: hak_alloc(1 MiB) failed");
        tags[i] = 10 + (uint64_t)i;
        fill_ends(nb[i], LSZ, tags[i]);
    }
    unsigned char *v = hak_alloc(LSZ);
    if (v == NULL)
        sec_bad("setup: hak_alloc(1 MiB) failed");
    fill_ends(v, LSZ, 99);
    uintptr_t base = (uintptr_t)v - LHDR;
    static unsigned char was_mapped[REACH / 4096];
    for (size_t i = HT_CHUNK / 4096; i < REACH / 4096; i++)
        was_mapped[i] = (unsigned char)sec_mapped((void *)(base + i * 4096), 4096);
    uint64_t w[8];
    memcpy(w, v - LHDR, sizeof w);
    for (int i = 0; i < 8; i++)
        if (inflate_sizes ? w[i] != 0 && w[i] < ((uint64_t)1 << 32) : 1)
            w[i] = inflate_sizes ? REACH : 0x4141414141414141ull; /* sizes made 64 MiB, or junk everywhere */
    SEC_EXPECT2(v - LHDR, v);
    memcpy(v - LHDR, w, sizeof w);
    hak_free(v);
    for (size_t i = HT_CHUNK / 4096; i < REACH / 4096; i++)
        if (was_mapped[i] && !sec_mapped((void *)(base + i * 4096), 4096))
            sec_bad("hak_free(%p) unmapped %p, %zu KiB past its mapping (a neighbouring mapping)", (void *)v,
                    (void *)(base + i * 4096), (i * 4096 - HT_CHUNK) >> 10);
    for (int i = 0; i < NN; i++)
        if (!sec_mapped(nb[i], LSZ) || !ends_intact(nb[i], LSZ, tags[i]))
            sec_bad("the neighbouring block %p was unmapped or damaged", (void *)nb[i]);
    /* HAKMEM_ON_ERROR=warn: v was left alone; the neighbours stay intact as large blocks come and go */
    if (sec_warn_mode() && (!sec_mapped(v, LSZ) || ht_check_range(v, 0, 4096, 99) != (size_t)-1))
        sec_bad("the block with the corrupted header (%p) was unmapped or damaged", (void *)v);
    large_allocations_after(nb, tags, NN, v);
    for (int i = 0; i < NN; i++)
        hak_free(nb[i]);
    return sec_done();
}

static int large_header_junk(void) { return large_header_corrupt(0); }
static int large_header_sizes(void) { return large_header_corrupt(1); }

/* ---- writes into a freed (cached) large block ---- */

/* from, to: the bytes written, relative to the freed block's pointer. */
static int large_write_after_free(ptrdiff_t from, ptrdiff_t to) {
    unsigned char *keep = hak_alloc(LSZ), *p = hak_alloc(LSZ);
    if (keep == NULL || p == NULL)
        sec_bad("setup: hak_alloc(1 MiB) failed");
    fill_ends(keep, LSZ, 5);
    hak_free(p); /* its mapping goes to the BigCache, whose entry is at the start of the mapping */
    void *t = sec_target;
    SEC_EXPECT2(p - LHDR, p);
    for (ptrdiff_t off = from; off < to; off += (ptrdiff_t)sizeof t)
        memcpy(p + off, &t, sizeof t); /* through the stale pointer: the attacker's address, repeated */
    unsigned char *q = hak_alloc(LSZ);
    if (q == NULL)
        sec_bad("the large allocation after the write failed");
    sec_check_not_target(q, "the large allocation after the write");
    if (overlaps_mapping(q, LSZ, keep))
        sec_bad("hak_alloc returned %p, overlapping the live block %p", (void *)q, (void *)keep);
    memset(q, 0x77, LSZ);
    unsigned char *live[] = {keep, q};
    uint64_t tags[] = {5, 6};
    fill_ends(q, LSZ, 6);
    large_allocations_after(live, tags, 2, NULL);
    hak_free(q);
    hak_free(keep);
    return sec_done();
}

/* The freed block's first 16 bytes, where the hardened BigCache keeps the entry's check word. */
static int large_freed_write(void) { return large_write_after_free(0, 16); }
/* The 64 bytes below it too (a stale pointer's underflow): the whole entry, in the old and the new layout. */
static int large_freed_write_entry(void) { return large_write_after_free(-(ptrdiff_t)LHDR, 16); }

/* ---- found here, fixed since: a write into the header's list links, past the check word ---- */

/* The check word covers the header's fields but not its list links (other threads rewrite those under the
 * heap's lock), and sits next to the block so that a linear underflow hits it first. An indexed write that
 * skips it (8 bytes at p - 16 or p - 24: the links next and prev of the new layout) with an unmapped address
 * made hak_free(p) follow the link to check the neighbour's header: it crashed (SIGSEGV) inside hakmem
 * instead of reporting (found by this suite; fixed: unlinking checks the links' targets first; ctest
 * security_found_large_headers). */
static int large_link_write(size_t below) {
    unsigned char *older = hak_alloc(LSZ), *p = hak_alloc(LSZ), *newer = hak_alloc(LSZ);
    if (older == NULL || p == NULL || newer == NULL)
        sec_bad("setup: hak_alloc(1 MiB) failed");
    fill_ends(older, LSZ, 1);
    fill_ends(p, LSZ, 2);
    fill_ends(newer, LSZ, 3);
    uintptr_t wild = 0x10000008; /* unmapped */
    if (sec_mapped((void *)wild, 1))
        sec_bad("setup: %p is mapped in this process", (void *)wild);
    sec_say("EXPECT %p %p %p", (void *)(p - LHDR), (void *)p, (void *)wild);
    memcpy(p - below, &wild, sizeof wild);
    hak_free(p);
    if (sec_warn_mode() && (!sec_mapped(p, LSZ) || ht_check_range(p, 0, 4096, 2) != (size_t)-1))
        sec_bad("the block with the corrupted header (%p) was unmapped or damaged", (void *)p);
    unsigned char *live[] = {older, newer};
    uint64_t tags[] = {1, 3};
    large_allocations_after(live, tags, 2, p);
    hak_free(older);
    hak_free(newer);
    return sec_done();
}

static int large_link_next(void) { return large_link_write(16); }
static int large_link_prev(void) { return large_link_write(24); }

/* ---- tests ---- */

static void test_large_underflow(void **state) {
    (void)state;
    sec_attack("large_underflow");
}
static void test_large_header_junk(void **state) {
    (void)state;
    sec_attack("large_header_junk");
}
static void test_large_header_sizes(void **state) {
    (void)state;
    sec_attack("large_header_sizes");
}
static void test_large_freed_write(void **state) {
    (void)state;
    sec_attack("large_freed_write");
}
static void test_large_freed_write_entry(void **state) {
    (void)state;
    sec_attack("large_freed_write_entry");
}

static void test_large_link_next_wild(void **state) {
    (void)state;
    sec_attack("large_link_next");
}
static void test_large_link_prev_wild(void **state) {
    (void)state;
    sec_attack("large_link_prev");
}

int main(int argc, char **argv) {
    static const sec_attack_t attacks[] = {
        SEC_ATTACK(large_underflow),   SEC_ATTACK(large_header_junk),       SEC_ATTACK(large_header_sizes),
        SEC_ATTACK(large_freed_write), SEC_ATTACK(large_freed_write_entry), SEC_ATTACK(large_link_next),
        SEC_ATTACK(large_link_prev),
    };
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_large_underflow),         cmocka_unit_test(test_large_header_junk),
        cmocka_unit_test(test_large_header_sizes),      cmocka_unit_test(test_large_freed_write),
        cmocka_unit_test(test_large_freed_write_entry),
    };
    const struct CMUnitTest known[] = {
        cmocka_unit_test(test_large_link_next_wild),
        cmocka_unit_test(test_large_link_prev_wild),
    };
    return SEC_MAIN_KNOWN(attacks, tests, known);
}
