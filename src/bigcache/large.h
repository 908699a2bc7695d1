/* Large blocks (above the slab classes): each lives in its own mapping with a header at the mapping's base.
 * The region map finds the header: for ordinary large blocks the base is 2 MiB aligned and the mapping is a
 * whole number of 2 MiB chunks (kind LARGE), so freed mappings can be split and merged by the BigCache; for
 * alignments of 2 MiB and more the block starts a chunk and the header is the page below it (LARGE_FAR). */
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
} hak_large_set_t;

typedef struct hak_large_s {
    uint8_t *map_base;    /* the header sits here */
    size_t map_size;      /* address space of the mapping (whole chunks, or pages for LARGE_FAR) */
    uint8_t *block;       /* the user's pointer */
    size_t usable;        /* bytes from block: the request rounded up to a page, so exact and tight */
    size_t resident;      /* pages of the mapping past this prefix are zero and not resident */
    hak_large_set_t *set; /* the owning heap's */
    hak_list_node_t link; /* in set->blocks */
} hak_large_t;

/* Header of the large mapping in p's chunk, or NULL if p lies outside that mapping (an over-aligned mapping
 * may be shorter than its chunk, and the kernel puts other mappings in the rest) or the chunk is not a live
 * large block (a cached one, say). */
static inline hak_large_t *hak_large_mapping_of(const void *p, unsigned kind) {
    if (kind != HAK_REGION_LARGE && kind != HAK_REGION_LARGE_FAR)
        return NULL;
    uintptr_t chunk = hak_chunk_base(p);
    hak_large_t *h = (hak_large_t *)(kind == HAK_REGION_LARGE ? chunk : chunk - 4096);
    return (uintptr_t)p - (uintptr_t)h->map_base < h->map_size ? h : NULL;
}

/* Header of the large block p, or NULL if p is not the start of a live large block. */
static inline hak_large_t *hak_large_of(const void *p, unsigned kind) {
    hak_large_t *h = hak_large_mapping_of(p, kind);
    return h != NULL && h->block == (const uint8_t *)p ? h : NULL;
}

/* Bytes charged to the heap for a large block: its header and usable pages. */
static inline size_t hak_large_charged(const hak_large_t *h) {
    return (size_t)(h->block - h->map_base) + h->usable;
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
