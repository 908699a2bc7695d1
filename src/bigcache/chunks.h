/* SPDX-License-Identifier: MIT */
/* The large tier's mappings and the region map. Large mappings (live blocks' and cached ones') are whole,
 * 2 MiB-aligned chunks, and every one of their chunks is marked in the region map for as long as the tier
 * holds it: the chunk holding a header as LARGE, LARGE_FAR or CACHED, every other chunk as LARGE_INNER. So a
 * pointer anywhere into hakmem's large memory is known to be hakmem's (and reported if it is not a live
 * block), and no such pointer is ever taken for glibc's. These wrappers keep that true: a mapping is marked
 * once it exists and unmarked before it goes back to the kernel (which may hand the range to someone else at
 * once). */
#ifndef HAKMEM_BIGCACHE_CHUNKS_H
#define HAKMEM_BIGCACHE_CHUNKS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/region_map.h"
#include "common/track.h"
#include "os/os.h"

/* A fresh mapping of size bytes (whole chunks), 2 MiB aligned, marked LARGE_INNER; NULL on failure. */
static inline uint8_t *hak_chunks_map(size_t size) {
    uint8_t *p = hak_os_map_aligned(size, HAK_CHUNK_SIZE);
    if (p != NULL)
        hak_region_set_range(p, size, HAK_REGION_LARGE_INNER);
    return p;
}

static inline void hak_chunks_unmap(void *base, size_t size) {
    if (base == NULL || size == 0)
        return;
    hak_region_set_range(base, size, HAK_REGION_NONE);
    hak_track_forget(base, size);
    hak_os_unmap(base, size);
}

/* Resizes [base, base + old_size) in place to new_size; false (nothing changed) if the space after it is
 * taken. */
static inline bool hak_chunks_resize(uint8_t *base, size_t old_size, size_t new_size) {
    if (new_size < old_size) {
        hak_region_set_range(base + new_size, old_size - new_size, HAK_REGION_NONE);
        hak_track_forget(base + new_size, old_size - new_size);
    }
    if (!hak_os_resize_in_place(base, old_size, new_size))
        return false; /* only growing can fail, and it marked nothing */
    if (new_size > old_size)
        hak_region_set_range(base + old_size, new_size - old_size, HAK_REGION_LARGE_INNER);
    return true;
}

/* Moves [src, src + old_size) onto dst (a range of new_size bytes this tier holds, already marked) without
 * copying; the source range is gone afterwards. NULL if the kernel refused: it has unmapped dst already (it
 * clears the target first), and src is still there. Both ranges are unmarked before the call: once the kernel
 * has let go of src (moved) or of dst (refused), another thread may map it at once and mark it as its own,
 * and unmarking it then would take that thread's chunks away from it. */
static inline void *hak_chunks_move(uint8_t *src, size_t old_size, uint8_t *dst, size_t new_size) {
    hak_region_set_range(src, old_size, HAK_REGION_NONE);
    hak_track_forget(src, old_size);
    hak_region_set_range(dst, new_size, HAK_REGION_NONE);
    hak_track_forget(dst, new_size);
    void *q = hak_os_move(src, old_size, dst, new_size);
    if (q == NULL) {
        hak_region_set_range(src, old_size, HAK_REGION_LARGE_INNER);
        return NULL;
    }
    hak_region_set_range(dst, new_size, HAK_REGION_LARGE_INNER);
    return q;
}

#endif
