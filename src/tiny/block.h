/* SPDX-License-Identifier: MIT */
/* A free block's first 16 bytes: the link to the next free block, encoded with a per-process secret, and a
 * check word, the encoded link xor a second secret. The smallest block is 16 bytes, so every block has room
 * for both.
 *
 * - Following a link first checks the pair: a link overwritten by a use-after-free write or an overflow from
 *   the neighbour does not match its check word (a write that does not know the secrets cannot produce a
 *   matching pair), and is reported, never followed.
 * - A block whose pair checks is free: a second free of it is a double free, wherever the block sits (the
 *   thread cache, a span's lists, another thread's remote list), and so is realloc or usable_size of it.
 *   Allocation clears the check word, so a live block never looks free unless its owner writes exactly the
 *   keyed pair (a 2^-64 chance for data that does not know the secrets; an unkeyed check, the link xor the
 *   block's address, matched the small integers programs store in a block's second word).
 * Cost: a pop is one xor of the two words, a compare with the check secret and the decoding xor; a push two
 *   xors and one more store. The pair does not depend on the block's address, so a pair copied from another
 *   free block passes: that needs a read of freed memory first, which this scheme does not try to stop.
 * With HAKMEM_CHECKS=0 (cmake -DHAKMEM_CHECKS=OFF) links are plain pointers and only an immediate double free
 * (the top of the thread cache or of the span's lists) is caught.
 *
 * Every access hakmem makes to a free block's first 16 bytes is one of the functions below: with memory
 * tracking (common/track.h) each opens the bytes to the checker around its access and closes them again, so a
 * free block stays no-access to the program. */
#ifndef HAKMEM_TINY_BLOCK_H
#define HAKMEM_TINY_BLOCK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/compiler.h"
#include "common/secret.h"
#include "common/track.h"

#ifndef HAKMEM_CHECKS
#define HAKMEM_CHECKS 1
#endif

typedef struct hak_block_s {
    uintptr_t link;  /* the next free block, encoded */
    uintptr_t check; /* keyed check of link and address; 0 while the block is allocated */
} hak_block_t;

/* Reports a free block whose pair fails its check (in tiny/free_slow.c): `list` names where it was found. */
hak_cold void hak_block_report_corrupt(const hak_block_t *b, const char *list);

#if HAKMEM_CHECKS
/* The next block a free block b links to (not yet checked: see hak_block_link_ok). */
static inline hak_block_t *hak_block_next(const hak_block_t *b) {
    hak_track_free_block_open(b);
    hak_block_t *next = (hak_block_t *)(b->link ^ hak_link_key);
    hak_track_free_block_close(b);
    return next;
}

/* b's two words are a pair hakmem wrote. */
static inline bool hak_block_link_ok(const hak_block_t *b) {
    hak_track_free_block_open(b);
    bool ok = (b->link ^ b->check) == hak_check_key;
    hak_track_free_block_close(b);
    return ok;
}

/* Makes b a free block whose next one is `next` (NULL: the end of its list). */
static inline void hak_block_set_next(hak_block_t *b, hak_block_t *next) {
    uintptr_t link = (uintptr_t)next ^ hak_link_key;
    hak_track_free_block_open(b);
    b->link = link;
    b->check = link ^ hak_check_key;
    hak_track_free_block_close(b);
}

/* b is being handed out: it no longer looks free. */
static inline void hak_block_mark_used(hak_block_t *b) {
    hak_track_free_block_open(b);
    b->check = 0;
    hak_track_free_block_close(b);
}

/* b's pair checks: it is a free block (on some list), written by hakmem. */
static inline bool hak_block_is_free(const hak_block_t *b) { return hak_block_link_ok(b); }
#else
static inline hak_block_t *hak_block_next(const hak_block_t *b) {
    hak_track_free_block_open(b);
    hak_block_t *next = (hak_block_t *)b->link;
    hak_track_free_block_close(b);
    return next;
}
static inline bool hak_block_link_ok(const hak_block_t *b) {
    (void)b;
    return true;
}
static inline void hak_block_set_next(hak_block_t *b, hak_block_t *next) {
    hak_track_free_block_open(b);
    b->link = (uintptr_t)next;
    hak_track_free_block_close(b);
}
static inline void hak_block_mark_used(hak_block_t *b) { (void)b; }
static inline bool hak_block_is_free(const hak_block_t *b) {
    (void)b;
    return false;
}
#endif

/* The next block of a free block that is being handed out (marked used); a pair that fails its check is
 * reported and ends the list (NULL). For the slow paths; the fast paths inline the same steps. */
static inline hak_block_t *hak_block_take_next(hak_block_t *b, const char *list) {
    hak_block_t *next = hak_block_next(b);
    if (hak_unlikely(!hak_block_link_ok(b))) {
        hak_block_report_corrupt(b, list);
        return NULL;
    }
    hak_block_mark_used(b);
    return next;
}

/* The next block of a free block that stays free (walking a list); NULL ends the list as above. */
static inline hak_block_t *hak_block_peek_next(const hak_block_t *b, const char *list) {
    hak_block_t *next = hak_block_next(b);
    if (hak_unlikely(!hak_block_link_ok(b))) {
        hak_block_report_corrupt(b, list);
        return NULL;
    }
    return next;
}

#endif
