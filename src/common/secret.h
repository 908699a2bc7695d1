/* SPDX-License-Identifier: MIT */
/* Per-process secrets from the kernel, taken once at initialisation (before any free list exists), for the
 * encoding of links stored in freed memory and the check words of metadata that lives next to user data. A
 * write that does not know them cannot make a link or a header that passes its check. */
#ifndef HAKMEM_COMMON_SECRET_H
#define HAKMEM_COMMON_SECRET_H

#include "common/compiler.h"

#include <stdint.h>

typedef struct hak_secret_s {
    uintptr_t check;  /* keys the tag of aligned pointers handed out inside their block */
    uintptr_t header; /* keys the check word of large-block headers and BigCache entries */
    uintptr_t heap;   /* keys the check word of heap handles */
} hak_secret_t;

extern HAK_HIDDEN hak_secret_t hak_secret;
/* Xored into every free-list link (tiny/block.h). A variable of its own, not a field, so that the fast paths
 * use it in one instruction (`xor hak_link_key(%rip), reg`). */
extern HAK_HIDDEN uintptr_t hak_link_key;
/* Keys the check word of a free block (tiny/block.h), so that its value is unpredictable even when the next
 * block is the neighbour (an unkeyed check, the link xor the address, matched the small integers programs
 * store in a block's second word). */
extern HAK_HIDDEN uintptr_t hak_check_key;

/* Fills hak_secret from getrandom (or, where that fails, the kernel's AT_RANDOM bytes and the clock). */
void hak_secret_init(void);

/* A keyed 64-bit mix of two words (for check words; not a cryptographic MAC, but no write that does not know
 * the key can predict it). */
static inline uintptr_t hak_secret_mix(uintptr_t key, uintptr_t a, uintptr_t b) {
    uint64_t x = (uint64_t)(a ^ key) * 0x9e3779b97f4a7c15ull;
    x ^= (uint64_t)b + (x >> 29);
    x *= 0xbf58476d1ce4e5b9ull;
    return (uintptr_t)(x ^ (x >> 32));
}

#endif
