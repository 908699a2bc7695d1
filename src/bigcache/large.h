/* Large blocks (above the slab classes): each lives in its own mapping with a header at the mapping's base.
 * The region map finds the header: for ordinary large blocks the base is 2 MiB aligned (kind LARGE); for
 * alignments of 2 MiB and more the block starts a chunk and the header is the page below it (LARGE_FAR). */
#ifndef HAKMEM_BIGCACHE_LARGE_H
#define HAKMEM_BIGCACHE_LARGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "heap/heap.h"

#define HAK_LARGE_MAGIC 0x4c41524745u /* "LARGE" */

typedef struct hak_large_s {
    uint8_t *map_base; /* the header sits here */
    size_t map_size;
    uint8_t *block; /* the user's pointer */
    hak_heap_impl_t *heap;
    struct hak_large_s *next, *prev; /* heap->large */
    uint64_t magic;
} hak_large_t;

/* Header of the large mapping in p's chunk (kind from the region map), or NULL if p lies outside that
 * mapping: a mapping may be shorter than its 2 MiB chunk, and the kernel puts other mappings in the rest. */
static inline hak_large_t *hak_large_mapping_of(const void *p, unsigned kind) {
    uintptr_t chunk = hak_chunk_base(p);
    hak_large_t *h = (hak_large_t *)(kind == HAK_REGION_LARGE ? chunk : chunk - 4096);
    return (uintptr_t)p - (uintptr_t)h->map_base < h->map_size ? h : NULL;
}

/* Header of the large block p, or NULL if p is not the start of a live large block. */
static inline hak_large_t *hak_large_of(const void *p, unsigned kind) {
    hak_large_t *h = hak_large_mapping_of(p, kind);
    return h != NULL && h->block == (const uint8_t *)p ? h : NULL;
}

static inline size_t hak_large_usable(const hak_large_t *h) {
    return (size_t)(h->map_base + h->map_size - h->block);
}

/* A large block; zeroed when `zero` (fresh mappings already are, reused ones get cleared). */
void *hak_large_alloc(hak_heap_impl_t *heap, size_t size, size_t align, bool zero);
void hak_large_free(hak_large_t *h);
/* Resizes in place or moves the pages with mremap; NULL (p untouched, errno set) on failure. */
void *hak_large_realloc(hak_large_t *h, size_t size);
/* Heap destroy: releases every large block of heap (heap lock held). */
void hak_large_release_all_locked(hak_heap_impl_t *heap);
void hak_large_fork_prepare(void);
void hak_large_fork_parent(void);
void hak_large_fork_child(void);

#endif
