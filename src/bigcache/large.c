#include "bigcache/large.h"

#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "bigcache/bigcache.h"
#include "os/os.h"

#define LARGE_MIN_OFFSET 64 /* header size: blocks start one cache line into the mapping */
_Static_assert(sizeof(hak_large_t) <= LARGE_MIN_OFFSET, "the large header must fit below the block");

static size_t max_size(size_t a, size_t b) { return a > b ? a : b; }

/* Records a new resident prefix and reports the change to the BigCache's resident budget. */
static void set_resident(hak_large_t *h, size_t resident) {
    if (resident > h->resident)
        hak_bigcache_live_add(resident - h->resident);
    else if (resident < h->resident)
        hak_bigcache_live_sub(h->resident - resident);
    h->resident = resident;
}

static size_t block_offset(size_t align) {
    if (align >= HAK_CHUNK_SIZE)
        return HAK_OS_PAGE;
    return align > LARGE_MIN_OFFSET ? align : LARGE_MIN_OFFSET;
}

void hak_large_set_init(hak_large_set_t *set, hak_quota_t *quota) {
    set->quota = quota;
    hak_lock_init(&set->lock);
    set->blocks.first = set->blocks.last = NULL;
}

static void set_link(hak_large_t *h) {
    hak_lock(&h->set->lock);
    hak_list_push_front(&h->set->blocks, &h->link);
    hak_unlock(&h->set->lock);
}

static void set_unlink(hak_large_t *h) {
    hak_lock(&h->set->lock);
    hak_list_remove(&h->set->blocks, &h->link);
    hak_unlock(&h->set->lock);
}

/* Maps size bytes so that map_base + PAGE is aligned to align (>= 2 MiB). */
static uint8_t *map_far(size_t map_size, size_t align) {
    size_t over = map_size + align;
    if (over < map_size)
        return NULL;
    uint8_t *raw = hak_os_map(over);
    if (raw == NULL)
        return NULL;
    uint8_t *block = (uint8_t *)(((uintptr_t)raw + HAK_OS_PAGE + align - 1) & ~(uintptr_t)(align - 1));
    uint8_t *base = block - HAK_OS_PAGE;
    if (base > raw)
        hak_os_unmap(raw, (size_t)(base - raw));
    size_t tail = (size_t)(raw + over - (base + map_size));
    if (tail)
        hak_os_unmap(base + map_size, tail);
    return base;
}

/* Keeps the mapping in the BigCache, or unmaps it. Only whole-chunk mappings are cacheable: those of
 * over-aligned (LARGE_FAR) blocks are not. */
static void release_mapping(hak_large_t *h) {
    uint8_t *base = h->map_base;
    size_t size = h->map_size, resident = h->resident;
    hak_bigcache_live_sub(resident);
    h->block = NULL;
    bool whole_chunks = (((uintptr_t)base | size) & (HAK_CHUNK_SIZE - 1)) == 0;
    if (!whole_chunks || !hak_bigcache_put(base, size, resident))
        hak_os_unmap(base, size);
}

static uint8_t *map_new(size_t map_size, size_t align) {
    return align < HAK_CHUNK_SIZE ? hak_os_map_aligned(map_size, HAK_CHUNK_SIZE) : map_far(map_size, align);
}

static void publish(hak_large_t *h) {
    hak_region_set((void *)hak_chunk_base(h->block),
                   h->block == h->map_base + HAK_OS_PAGE && hak_chunk_base(h->block) == (uintptr_t)h->block
                       ? HAK_REGION_LARGE_FAR
                       : HAK_REGION_LARGE);
}

static void unpublish(hak_large_t *h) { hak_region_set((void *)hak_chunk_base(h->block), HAK_REGION_NONE); }

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
    size_t map_size = align < HAK_CHUNK_SIZE ? hak_align_up(need, HAK_CHUNK_SIZE) : need;
    size_t dirty = 0;
    uint8_t *base = align < HAK_CHUNK_SIZE ? hak_bigcache_take(map_size, need, &dirty) : NULL;
    if (base != NULL) {
        if (zero && dirty > offset)
            memset(base + offset, 0, (dirty < need ? dirty : need) - offset); /* the rest is still zero */
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
    h->map_base = base;
    h->map_size = map_size;
    h->block = base + offset;
    h->usable = need - offset;
    h->resident = 0;
    h->set = set;
    set_resident(h, max_size(dirty, need));
    set_link(h);
    publish(h);
    return h->block;
}

void hak_large_free(hak_large_t *h) {
    set_unlink(h);
    unpublish(h);
    hak_quota_uncharge(h->set->quota, hak_large_charged(h));
    release_mapping(h);
}

/* Sets the block's size within its mapping (statistics read both under the set's lock). */
static void set_size(hak_large_t *h, size_t map_size, size_t usable) {
    hak_lock(&h->set->lock);
    h->map_size = map_size;
    h->usable = usable;
    hak_unlock(&h->set->lock);
}

void *hak_large_realloc(hak_large_t *h, size_t size) {
    size_t offset = (size_t)(h->block - h->map_base);
    if (size > (size_t)PTRDIFF_MAX - offset - HAK_CHUNK_SIZE) {
        errno = ENOMEM;
        return NULL;
    }
    size_t old_need = offset + h->usable, need = hak_align_up(offset + size, HAK_OS_PAGE);
    if (need == old_need)
        return h->block;
    bool far = ((h->map_size | (uintptr_t)h->map_base) & (HAK_CHUNK_SIZE - 1)) != 0;
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
        if (new_map < old_map && !hak_bigcache_put(h->map_base + new_map, old_map - new_map, resident - kept))
            hak_os_unmap(h->map_base + new_map, old_map - new_map);
        if (need < old_need)
            hak_quota_uncharge(h->set->quota, old_need - need);
        return h->block;
    }
    /* Grow: merge cached mappings that follow, then extend in place, else move the pages (no copy). */
    size_t dirty = h->resident;
    size_t got = hak_bigcache_extend(h->map_base, old_map, new_map, &dirty);
    set_resident(h, dirty);
    if (got == new_map || hak_os_resize_in_place(h->map_base, got, new_map)) {
        set_size(h, new_map, need - offset);
        set_resident(h, max_size(h->resident, need));
        return h->block;
    }
    if (got != old_map)
        set_size(h, got, h->usable); /* the merged chunks are part of the mapping now */
    uint8_t *dst = hak_os_map_aligned(new_map, HAK_CHUNK_SIZE);
    if (dst == NULL) {
        hak_quota_uncharge(h->set->quota, need - old_need);
        errno = ENOMEM;
        return NULL;
    }
    set_unlink(h);
    unpublish(h);
    uint8_t *old_base = h->map_base;
    if (hak_os_move(old_base, got, dst, new_map) == NULL) {
        /* several kernel mappings (merged by the BigCache) cannot move as one: the caller copies. The
         * kernel already unmapped dst. */
        set_link(h);
        publish(h);
        hak_quota_uncharge(h->set->quota, need - old_need);
        errno = ENOMEM;
        return NULL;
    }
    h = (hak_large_t *)dst; /* the header moved with the pages */
    h->map_base = dst;
    h->map_size = new_map;
    h->block = dst + offset;
    h->usable = need - offset;
    set_resident(h, max_size(h->resident, need));
    set_link(h);
    publish(h);
    return h->block;
}

void hak_large_release_all(hak_large_set_t *set) {
    hak_lock(&set->lock);
    hak_list_for_each_safe(l, next, &set->blocks) {
        hak_large_t *h = hak_list_entry(l, hak_large_t, link);
        unpublish(h);
        hak_quota_uncharge(set->quota, hak_large_charged(h));
        release_mapping(h);
    }
    set->blocks.first = set->blocks.last = NULL;
    hak_unlock(&set->lock);
}
