/* SPDX-License-Identifier: MIT */
/* Large blocks (above the slab classes): each lives in its own mapping of whole 2 MiB chunks, 2 MiB aligned,
 * with a header at the mapping's base, so freed mappings can be split and merged by the BigCache. The region
 * map finds the header: for ordinary large blocks it is at the base of the block's chunk (kind LARGE); for
 * alignments of 2 MiB and more the block starts the mapping's second chunk and the header is at the base of
 * the first (LARGE_FAR). Every other chunk is LARGE_INNER (bigcache/chunks.h). Headers carry a keyed check
 * word, verified before any use. */
#ifndef HAKMEM_BIGCACHE_LARGE_H
#define HAKMEM_BIGCACHE_LARGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/list.h"
#include "common/lock.h"
#include "common/quota.h"
#include "common/region_map.h"

/* The large blocks of one heap. The heap embeds one and hands it down, so this tier charges the heap's quota
 * and keeps its list without knowing what a heap is. */
typedef struct hak_large_set_s {
    hak_quota_t *quota;
    hak_lock_t lock;   /* protects `blocks` and the size fields of its blocks, which statistics read */
    hak_list_t blocks; /* hak_large_t.link */
    /* Event counters (relaxed atomic adds, next to the lock every allocation and free takes anyway): blocks
     * allocated and freed (not those a heap destroy releases), allocations the BigCache served or missed. */
    uint64_t allocs, frees, cache_hits, cache_misses;
} hak_large_set_t;

/* The header at the base of a large mapping (the block starts 64 bytes, or its alignment, past it). The check
 * word is last, next to the block: an underflow from the block hits it first. */
typedef struct hak_large_s {
    size_t map_size;      /* address space of the mapping: whole chunks */
    uint8_t *block;       /* the user's pointer */
    size_t usable;        /* bytes from block: the request rounded up to a page, so exact and tight */
    size_t resident;      /* pages of the mapping past this prefix are zero and not resident */
    hak_large_set_t *set; /* the owning heap's */
    hak_list_node_t link; /* in set->blocks */
    uintptr_t check;      /* keyed check of the fields above but the links (large.c: header_check) */
} hak_large_t;

/* The header sits at the mapping's base. */
static inline uint8_t *hak_large_map_base(const hak_large_t *h) { return (uint8_t *)(uintptr_t)h; }

/* True if h's fields are as hakmem last wrote them (the keyed check word matches). */
bool hak_large_header_ok(const hak_large_t *h);

/* Header of the large block whose chunk p is in (kind from the region map: LARGE has it at the chunk base,
 * LARGE_FAR one chunk below), checked, or NULL for any other kind. A header that fails its check is reported
 * and NULL returned: nothing is ever done through it. */
hak_large_t *hak_large_header_of(const void *p, unsigned kind);

/* Header of the large block p, or NULL (unreported) if p is not the start of a live large block. */
static inline hak_large_t *hak_large_of(const void *p, unsigned kind) {
    hak_large_t *h = hak_large_header_of(p, kind);
    return h != NULL && h->block == (const uint8_t *)p ? h : NULL;
}

/* Bytes charged to the heap for a large block: its header and usable pages. */
static inline size_t hak_large_charged(const hak_large_t *h) {
    return (size_t)(h->block - hak_large_map_base(h)) + h->usable;
}

void hak_large_set_init(hak_large_set_t *set, hak_quota_t *quota);
/* A large block of set; zeroed when `zero` (fresh mappings already are, reused ones get cleared). */
void *hak_large_alloc(hak_large_set_t *set, size_t size, size_t align, bool zero);
void hak_large_free(hak_large_t *h);
/* Resizes within the mapping, by merging cached neighbours, in place, or by moving the pages with mremap;
 * NULL (p untouched, errno set) on failure. */
void *hak_large_realloc(hak_large_t *h, size_t size);
/* Heap destroy: releases every large block of set. */
void hak_large_release_all(hak_large_set_t *set);

#endif
