#include "bigcache/large.h"

#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "bigcache/bigcache.h"
#include "os/os.h"

#define LARGE_MIN_OFFSET 64 /* header size: blocks start one cache line into the mapping */

static size_t block_offset(size_t align) {
    if (align >= HAK_CHUNK_SIZE)
        return HAK_OS_PAGE;
    return align > LARGE_MIN_OFFSET ? align : LARGE_MIN_OFFSET;
}

static void heap_link(hak_large_t *h) {
    hak_heap_impl_t *heap = h->heap;
    hak_lock(&heap->lock);
    h->prev = NULL;
    h->next = heap->large;
    if (h->next)
        h->next->prev = h;
    heap->large = h;
    hak_unlock(&heap->lock);
}

static void heap_unlink(hak_large_t *h) {
    hak_heap_impl_t *heap = h->heap;
    hak_lock(&heap->lock);
    if (h->prev)
        h->prev->next = h->next;
    else
        heap->large = h->next;
    if (h->next)
        h->next->prev = h->prev;
    hak_unlock(&heap->lock);
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

/* Keeps the mapping in the BigCache, or unmaps it. Only 2 MiB-aligned bases are cacheable: mappings of
 * over-aligned (LARGE_FAR) blocks are not. */
static void release_mapping(hak_large_t *h) {
    uint8_t *base = h->map_base;
    size_t size = h->map_size;
    h->block = NULL;
    h->magic = 0;
    if (((uintptr_t)base & (HAK_CHUNK_SIZE - 1)) != 0 || !hak_bigcache_put(base, size))
        hak_os_unmap(base, size);
}

void *hak_large_alloc(hak_heap_impl_t *heap, size_t size, size_t align, bool zero) {
    size_t offset = block_offset(align);
    if (size > (size_t)PTRDIFF_MAX - offset - align - HAK_CHUNK_SIZE) {
        errno = ENOMEM;
        return NULL;
    }
    size_t map_size = hak_align_up(offset + size, HAK_OS_PAGE);
    uint8_t *base = NULL;
    if (align < HAK_CHUNK_SIZE) {
        size_t got;
        base = hak_bigcache_take(map_size, &got);
        if (base != NULL && hak_heap_charge(heap, got)) {
            map_size = got; /* a near fit may be a little larger: the block gets all of it */
            if (zero)
                memset(base + offset, 0, map_size - offset); /* reused pages are dirty */
        } else if (base != NULL) {
            /* the near fit is over the heap's limit where an exact mapping may not be */
            if (!hak_bigcache_put(base, got))
                hak_os_unmap(base, got);
            base = NULL;
        }
    }
    if (base == NULL) {
        if (!hak_heap_charge(heap, map_size)) {
            errno = ENOMEM;
            return NULL;
        }
        base = map_new(map_size, align);
        if (base == NULL) {
            hak_bigcache_collect(true); /* out of memory or address space: drop the cache and retry once */
            base = map_new(map_size, align);
        }
        if (base == NULL) {
            hak_heap_uncharge(heap, map_size);
            errno = ENOMEM;
            return NULL;
        }
    }
    hak_large_t *h = (hak_large_t *)base;
    h->map_base = base;
    h->map_size = map_size;
    h->block = base + offset;
    h->heap = heap;
    h->magic = HAK_LARGE_MAGIC;
    heap_link(h);
    publish(h);
    return h->block;
}

void hak_large_free(hak_large_t *h) {
    heap_unlink(h);
    unpublish(h);
    hak_heap_uncharge(h->heap, h->map_size);
    release_mapping(h);
}

void *hak_large_realloc(hak_large_t *h, size_t size) {
    size_t offset = (size_t)(h->block - h->map_base);
    if (size > (size_t)PTRDIFF_MAX - offset - HAK_CHUNK_SIZE) {
        errno = ENOMEM;
        return NULL;
    }
    size_t new_map = hak_align_up(offset + size, HAK_OS_PAGE);
    size_t old_map = h->map_size;
    if (new_map == old_map)
        return h->block;
    if (offset == HAK_OS_PAGE && ((uintptr_t)h->block & (HAK_CHUNK_SIZE - 1)) == 0)
        return NULL; /* over-aligned block: the caller copies */
    if (new_map > old_map && !hak_heap_charge(h->heap, new_map - old_map)) {
        errno = ENOMEM;
        return NULL;
    }
    if (hak_os_resize_in_place(h->map_base, old_map, new_map)) {
        hak_lock(&h->heap->lock); /* statistics read the size under the heap lock */
        h->map_size = new_map;
        hak_unlock(&h->heap->lock);
        if (new_map < old_map)
            hak_heap_uncharge(h->heap, old_map - new_map);
        return h->block;
    }
    /* Move the pages to a new 2 MiB-aligned range: no copy. The header moves with them. */
    uint8_t *dst = hak_os_map_aligned(new_map, HAK_CHUNK_SIZE);
    if (dst == NULL) {
        hak_heap_uncharge(h->heap, new_map - old_map);
        errno = ENOMEM;
        return NULL;
    }
    heap_unlink(h);
    unpublish(h);
    uint8_t *old_base = h->map_base;
    if (hak_os_move(old_base, old_map, dst, new_map) == NULL) {
        hak_os_unmap(dst, new_map);
        heap_link(h);
        publish(h);
        hak_heap_uncharge(h->heap, new_map - old_map);
        errno = ENOMEM;
        return NULL;
    }
    h = (hak_large_t *)dst;
    h->map_base = dst;
    h->map_size = new_map;
    h->block = dst + offset;
    heap_link(h);
    publish(h);
    return h->block;
}

void hak_large_release_all_locked(hak_heap_impl_t *heap) {
    hak_large_t *next;
    for (hak_large_t *h = heap->large; h != NULL; h = next) {
        next = h->next;
        unpublish(h);
        hak_heap_uncharge(heap, h->map_size);
        release_mapping(h);
    }
    heap->large = NULL;
}

void hak_large_fork_prepare(void) { hak_bigcache_fork_prepare(); }
void hak_large_fork_parent(void) { hak_bigcache_fork_parent(); }
void hak_large_fork_child(void) { hak_bigcache_fork_child(); }
