/* SPDX-License-Identifier: MIT */
/* Region map: one byte per 2 MiB chunk of the user address space says whether hakmem owns the chunk and how
 * to find the metadata of a pointer in it. `hak_free` rejects foreign pointers with one load. The table is
 * zero-initialised .bss, so the kernel only backs the pages that ever get a non-zero entry. */
#ifndef HAKMEM_SUPERSLAB_REGION_MAP_H
#define HAKMEM_SUPERSLAB_REGION_MAP_H

#include <stdint.h>

#include "common/compiler.h"

#define HAK_CHUNK_SHIFT 21
#define HAK_CHUNK_SIZE ((uintptr_t)1 << HAK_CHUNK_SHIFT)
#define HAK_ADDRESS_BITS 47
#define HAK_REGION_ENTRIES ((uintptr_t)1 << (HAK_ADDRESS_BITS - HAK_CHUNK_SHIFT))

enum hak_region_kind {
    HAK_REGION_NONE = 0,        /* not hakmem's */
    HAK_REGION_SUPERSLAB = 1,   /* a SuperSlab starts at the chunk base */
    HAK_REGION_LARGE = 2,       /* a large block's header sits at the chunk base */
    HAK_REGION_LARGE_FAR = 3,   /* a large block starts at the chunk base; its header is one chunk below */
    HAK_REGION_CACHED = 4,      /* a free large mapping kept by the BigCache starts at the chunk base */
    HAK_REGION_LARGE_INNER = 5, /* any other chunk of a large mapping, live or cached: hakmem's, no block */
    HAK_REGION_HEAPS = 6,       /* heap objects (hak_heap_t), in slots of HAK_HEAP_SLOT bytes (heap/heap.c) */
};

extern HAK_HIDDEN uint8_t hak_region_kinds[HAK_REGION_ENTRIES];

static inline unsigned hak_region_kind(const void *p) {
    uintptr_t idx = (uintptr_t)p >> HAK_CHUNK_SHIFT;
    if (hak_unlikely(idx >= HAK_REGION_ENTRIES))
        return HAK_REGION_NONE;
    return __atomic_load_n(&hak_region_kinds[idx], __ATOMIC_RELAXED);
}

static inline void hak_region_set(const void *chunk, unsigned kind) {
    __atomic_store_n(&hak_region_kinds[(uintptr_t)chunk >> HAK_CHUNK_SHIFT], (uint8_t)kind, __ATOMIC_RELEASE);
}

static inline uintptr_t hak_chunk_base(const void *p) { return (uintptr_t)p & ~(HAK_CHUNK_SIZE - 1); }

/* Marks every chunk of [base, base + size) (chunk-aligned, whole chunks). */
static inline void hak_region_set_range(const void *base, uintptr_t size, unsigned kind) {
    for (uintptr_t c = (uintptr_t)base; c < (uintptr_t)base + size; c += HAK_CHUNK_SIZE)
        hak_region_set((const void *)c, kind);
}

#endif
