/* SPDX-License-Identifier: MIT */
#include "bigcache/large.h"

#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "bigcache/bigcache.h"
#include "bigcache/chunks.h"
#include "common/error.h"
#include "common/secret.h"
#include "common/track.h"
#include "os/os.h"

#define LARGE_MIN_OFFSET 64 /* header size: blocks start one cache line into the mapping */
_Static_assert(sizeof(hak_large_t) <= LARGE_MIN_OFFSET, "the large header must fit below the block");

static size_t max_size(size_t a, size_t b) { return a > b ? a : b; }

static void count(uint64_t *c) { __atomic_fetch_add(c, 1, __ATOMIC_RELAXED); }

/* ---- header integrity ---- */

/* The check covers the fields only the block's owner changes (and its address), not the list links, which
 * other threads rewrite under the set's lock while the owner may be reading its header without it. The check
 * word sits between the links and the block, so an underflow from the block that reaches the links has
 * overwritten the check word first. */
static uintptr_t header_check(const hak_large_t *h) {
    uintptr_t k = hak_secret.header;
    uintptr_t x = hak_secret_mix(k, (uintptr_t)h, h->map_size);
    x = hak_secret_mix(k ^ x, (uintptr_t)h->block, h->usable);
    return hak_secret_mix(k ^ x, h->resident, (uintptr_t)h->set);
}

/* Records h's fields in its check word; called after every change of them. */
static void seal(hak_large_t *h) { h->check = header_check(h); }

bool hak_large_header_ok(const hak_large_t *h) { return h->check == header_check(h); }

static hak_large_t *of_link(hak_list_node_t *n) { return hak_list_entry_or_null(n, hak_large_t, link); }

hak_large_t *hak_large_header_of(const void *p, unsigned kind) {
    if (kind != HAK_REGION_LARGE && kind != HAK_REGION_LARGE_FAR)
        return NULL;
    uintptr_t chunk = hak_chunk_base(p);
    hak_large_t *h = (hak_large_t *)(kind == HAK_REGION_LARGE ? chunk : chunk - HAK_CHUNK_SIZE);
    if (hak_unlikely(!hak_large_header_ok(h))) {
        hak_report_invalid("corrupted large-block header (an underflow from its block?)", h);
        return NULL;
    }
    return h;
}

/* ---- the set's list: neighbours are checked before anything is written through them ---- */

/* Before h is unlinked (set lock held): its links must be those of the list (each neighbour points back at
 * h, or h is that end of the list), and its neighbours' headers must pass their checks. The check word does
 * not cover the links (other threads rewrite them), so this is what stops a write into them. */
/* x could be a live large block's header: at a chunk base, in a chunk of a large mapping (LARGE, or
 * LARGE_INNER for the header chunk of a far block), so reading it cannot fault. */
static bool header_address_ok(const hak_large_t *x) {
    unsigned kind = hak_region_kind(x);
    return ((uintptr_t)x & (HAK_CHUNK_SIZE - 1)) == 0 &&
           (kind == HAK_REGION_LARGE || kind == HAK_REGION_LARGE_INNER);
}

static bool neighbours_ok(const hak_large_set_t *set, const hak_large_t *h) {
    const hak_list_node_t *n = &h->link;
    const hak_large_t *prev = of_link(n->prev), *next = of_link(n->next);
    if ((prev != NULL && !header_address_ok(prev)) || (next != NULL && !header_address_ok(next))) {
        hak_report_invalid("corrupted large-block list links (a write into this block's header?)", h);
        return false;
    }
    bool linked = (n->prev != NULL ? n->prev->next == n : set->blocks.first == n) &&
                  (n->next != NULL ? n->next->prev == n : set->blocks.last == n);
    if (linked && (prev == NULL || hak_large_header_ok(prev)) && (next == NULL || hak_large_header_ok(next)))
        return true;
    hak_report_invalid("corrupted large-block list links (a write into this block's header?)", h);
    return false;
}

static void set_link(hak_large_t *h) {
    hak_lock(&h->set->lock);
    hak_list_push_front(&h->set->blocks, &h->link);
    hak_unlock(&h->set->lock);
}

/* False (nothing unlinked) if a neighbour's header is corrupted. */
static bool set_unlink(hak_large_t *h) {
    hak_lock(&h->set->lock);
    bool ok = neighbours_ok(h->set, h);
    if (ok)
        hak_list_remove(&h->set->blocks, &h->link);
    hak_unlock(&h->set->lock);
    return ok;
}

/* Records a new resident prefix and reports the change to the BigCache's resident budget. */
static void set_resident(hak_large_t *h, size_t resident) {
    if (resident > h->resident)
        hak_bigcache_live_add(resident - h->resident);
    else if (resident < h->resident)
        hak_bigcache_live_sub(h->resident - resident);
    hak_lock(&h->set->lock);
    h->resident = resident;
    seal(h);
    hak_unlock(&h->set->lock);
}

/* Where the block starts in its mapping: past the header, at its alignment, or (2 MiB and more) one chunk in.
 */
static size_t block_offset(size_t align) {
    if (align >= HAK_CHUNK_SIZE)
        return HAK_CHUNK_SIZE;
    return align > LARGE_MIN_OFFSET ? align : LARGE_MIN_OFFSET;
}

static bool is_far(const hak_large_t *h) {
    return (size_t)(h->block - hak_large_map_base(h)) >= HAK_CHUNK_SIZE;
}

#if HAK_TRACK
/* Memory tracking (common/track.h): of a large mapping, only the header and the block's `size` requested
 * bytes may be touched (the block itself is the API's to mark); the gap below an aligned block and everything
 * past the request, to the mapping's end, are no-access. */
static void track_layout(const hak_large_t *h, size_t size) {
    uint8_t *base = hak_large_map_base(h);
    hak_track_noaccess(base + sizeof *h, (size_t)(h->block - base) - sizeof *h);
    hak_track_noaccess(h->block + size, (size_t)(base + h->map_size - h->block) - size);
}
#else
#define track_layout(h, size) ((void)0)
#endif

void hak_large_set_init(hak_large_set_t *set, hak_quota_t *quota) {
    set->quota = quota;
    hak_lock_init(&set->lock);
    set->blocks.first = set->blocks.last = NULL;
}

/* Maps map_size bytes (whole chunks) so that base + one chunk is aligned to align (> 2 MiB): the header
 * chunk, then the block. */
static uint8_t *map_far(size_t map_size, size_t align) {
    size_t over = map_size + align;
    if (over < map_size)
        return NULL;
    uint8_t *raw = hak_os_map_aligned(over, HAK_CHUNK_SIZE);
    if (raw == NULL)
        return NULL;
    uint8_t *block = (uint8_t *)(((uintptr_t)raw + HAK_CHUNK_SIZE + align - 1) & ~(uintptr_t)(align - 1));
    uint8_t *base = block - HAK_CHUNK_SIZE;
    if (base > raw)
        hak_os_unmap(raw, (size_t)(base - raw));
    size_t tail = (size_t)(raw + over - (base + map_size));
    if (tail)
        hak_os_unmap(base + map_size, tail);
    hak_region_set_range(base, map_size, HAK_REGION_LARGE_INNER);
    return base;
}

/* Keeps the mapping in the BigCache, or unmaps it. */
static void release_mapping(hak_large_t *h) {
    uint8_t *base = hak_large_map_base(h);
    size_t size = h->map_size, resident = h->resident;
    hak_bigcache_live_sub(resident);
    h->block = NULL;
    h->check = 0; /* a stale pointer to it finds no valid header */
    /* Freed, or its heap destroyed: nothing past the header may be touched (the BigCache opens its entry). */
    hak_track_noaccess(base + sizeof *h, size - sizeof *h);
    if (!hak_bigcache_put(base, size, resident))
        hak_chunks_unmap(base, size);
}

static uint8_t *map_new(size_t map_size, size_t align) {
    return align <= HAK_CHUNK_SIZE ? hak_chunks_map(map_size) : map_far(map_size, align);
}

static void publish(hak_large_t *h) {
    hak_region_set((void *)hak_chunk_base(h->block), is_far(h) ? HAK_REGION_LARGE_FAR : HAK_REGION_LARGE);
}

static void unpublish(hak_large_t *h) {
    hak_region_set((void *)hak_chunk_base(h->block), HAK_REGION_LARGE_INNER);
}

void *hak_large_alloc(hak_large_set_t *set, size_t size, size_t align, bool zero) {
    size_t offset = block_offset(align);
    if (size > (size_t)PTRDIFF_MAX - offset - align - HAK_CHUNK_SIZE) {
        errno = ENOMEM;
        return NULL;
    }
    size_t need = hak_align_up(offset + size, HAK_OS_PAGE); /* what the block uses, and is charged */
    if (!hak_quota_charge(set->quota, need)) {
        errno = ENOMEM;
        return NULL;
    }
    size_t map_size = hak_align_up(need, HAK_CHUNK_SIZE), dirty = 0;
    uint8_t *base =
        align < HAK_CHUNK_SIZE ? hak_bigcache_take(map_size, need, &dirty) : NULL; /* far: fresh */
    if (align < HAK_CHUNK_SIZE)
        count(base != NULL ? &set->cache_hits : &set->cache_misses);
    if (base != NULL) {
        if (zero && dirty > offset) {
            hak_track_open(base + offset, (dirty < need ? dirty : need) - offset);
            memset(base + offset, 0, (dirty < need ? dirty : need) - offset); /* the rest is still zero */
        }
    } else {
        base = map_new(map_size, align);
        if (base == NULL) {
            hak_bigcache_collect(true); /* out of memory or address space: drop the cache and retry once */
            base = map_new(map_size, align);
        }
        if (base == NULL) {
            hak_quota_uncharge(set->quota, need);
            errno = ENOMEM;
            return NULL;
        }
    }
    hak_large_t *h = (hak_large_t *)base;
    hak_track_open(h, sizeof *h);
    h->map_size = map_size;
    h->block = base + offset;
    h->usable = need - offset;
    h->resident = 0;
    h->set = set;
    hak_list_node_clear(&h->link);
    seal(h);
    set_resident(h, max_size(dirty, need));
    set_link(h);
    publish(h);
    track_layout(h, size);
    count(&set->allocs);
    return h->block;
}

void hak_large_free(hak_large_t *h) {
    if (!set_unlink(h))
        return; /* reported; the block stays where it is */
    count(&h->set->frees);
    unpublish(h);
    hak_quota_uncharge(h->set->quota, hak_large_charged(h));
    release_mapping(h);
}

/* Sets the block's size within its mapping (statistics read both under the set's lock). */
static void set_size(hak_large_t *h, size_t map_size, size_t usable) {
    hak_lock(&h->set->lock);
    h->map_size = map_size;
    h->usable = usable;
    seal(h);
    hak_unlock(&h->set->lock);
}

void *hak_large_realloc(hak_large_t *h, size_t size) {
    uint8_t *map_base = hak_large_map_base(h);
    size_t offset = (size_t)(h->block - map_base);
    if (size > (size_t)PTRDIFF_MAX - offset - HAK_CHUNK_SIZE) {
        errno = ENOMEM;
        return NULL;
    }
    size_t old_need = offset + h->usable, need = hak_align_up(offset + size, HAK_OS_PAGE);
    size_t old = hak_track_size(h->block, h->usable); /* with tracking, the block's requested size */
    if (need == old_need) {
        (void)hak_track_resize(h->block, old, size);
        track_layout(h, size);
        return h->block;
    }
    bool far = is_far(h);
    if (far && need > h->map_size)
        return NULL; /* over-aligned block: the caller copies */
    if (need > old_need && !hak_quota_charge(h->set->quota, need - old_need)) {
        errno = ENOMEM;
        return NULL;
    }
    size_t old_map = h->map_size;
    size_t new_map = far ? old_map : hak_align_up(need, HAK_CHUNK_SIZE);
    if (need <= old_map) {
        /* Within the mapping: no system call. Whole chunks no longer needed go to the BigCache. */
        set_size(h, new_map, need - offset);
        size_t resident = h->resident, kept = resident < new_map ? resident : new_map;
        set_resident(h, max_size(kept, need));
        (void)hak_track_resize(h->block, old, size); /* before the tail's BigCache entry is written */
        if (new_map < old_map && !hak_bigcache_put(map_base + new_map, old_map - new_map, resident - kept))
            hak_chunks_unmap(map_base + new_map, old_map - new_map);
        if (need < old_need)
            hak_quota_uncharge(h->set->quota, old_need - need);
        track_layout(h, size);
        return h->block;
    }
    /* Grow: merge cached mappings that follow, then extend in place, else move the pages (no copy). */
    size_t dirty = h->resident;
    size_t got = hak_bigcache_extend(map_base, old_map, new_map, &dirty);
    set_resident(h, dirty);
    if (got == new_map || hak_chunks_resize(map_base, got, new_map)) {
        set_size(h, new_map, need - offset);
        set_resident(h, max_size(h->resident, need));
        (void)hak_track_resize(h->block, old, size);
        track_layout(h, size);
        return h->block;
    }
    if (got != old_map)
        set_size(h, got, h->usable); /* the merged chunks are part of the mapping now */
    uint8_t *dst = hak_chunks_map(new_map);
    if (dst == NULL) {
        hak_quota_uncharge(h->set->quota, need - old_need);
        errno = ENOMEM;
        return NULL;
    }
    if (!set_unlink(h)) {
        hak_chunks_unmap(dst, new_map);
        hak_quota_uncharge(h->set->quota, need - old_need);
        errno = EINVAL;
        return NULL;
    }
    unpublish(h);
    hak_track_move_t move;
    hak_track_move_begin(&move, h->block, old);
    if (hak_chunks_move(map_base, got, dst, new_map) == NULL) {
        /* several kernel mappings (merged by the BigCache) cannot move as one: the caller copies. The
         * kernel already unmapped dst. */
        hak_track_move_abort(&move);
        set_link(h);
        publish(h);
        hak_quota_uncharge(h->set->quota, need - old_need);
        errno = ENOMEM;
        return NULL;
    }
    h = (hak_large_t *)dst; /* the header moved with the pages */
    h->map_size = new_map;
    h->block = dst + offset;
    h->usable = need - offset;
    seal(h);
    set_resident(h, max_size(h->resident, need));
    set_link(h);
    publish(h);
    (void)hak_track_move_end(&move, h->block, size);
    track_layout(h, size);
    return h->block;
}

void hak_large_release_all(hak_large_set_t *set) {
    hak_lock(&set->lock);
    for (hak_list_node_t *l = set->blocks.first, *next; l != NULL; l = next) {
        hak_large_t *h = hak_list_entry(l, hak_large_t, link);
        if (!hak_large_header_ok(h)) {
            hak_report_invalid("corrupted large-block header at heap destroy (the rest is leaked)", h);
            break;
        }
        next = l->next;
        unpublish(h);
        hak_quota_uncharge(set->quota, hak_large_charged(h));
        hak_track_free(h->block, 0); /* (its mapping is marked no-access next) */
        release_mapping(h);
    }
    set->blocks.first = set->blocks.last = NULL;
    hak_unlock(&set->lock);
}
