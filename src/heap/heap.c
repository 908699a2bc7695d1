/* SPDX-License-Identifier: MIT */
/* Heap registry, create and destroy, process initialisation and fork safety. */
#include "heap/heap.h"

#include <errno.h>
#include <pthread.h>
#include <string.h>

#include "bigcache/bigcache.h"
#include "common/error.h"
#include "common/meta.h"
#include "common/options.h"
#include "common/secret.h"
#include "os/os.h"

/* Out of memory or address space for a SuperSlab: cached large mappings go first. */
static void reclaim_large_mappings(void) { hak_bigcache_collect(true); }

hak_heap_t hak_heap_main = {
    .id = 0,
    .gen = 1,
    .name = "default",
    .lock = HAK_LOCK_INIT,
    .slabs = {.quota = &hak_heap_main.quota,
              .reclaim = reclaim_large_mappings,
              .first_use = hak_theap_first_use,
              .lock = HAK_LOCK_INIT},
    .large = {.quota = &hak_heap_main.quota, .lock = HAK_LOCK_INIT},
};

/* Registry of live heaps, indexed by id. Slot 0 is the default heap. */
static hak_lock_t registry_lock = HAK_LOCK_INIT;
static hak_heap_t **registry;
static uint32_t registry_cap;
static uint64_t next_gen = 2;

static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static int init_done;

static void fork_prepare(void) {
    hak_heap_fork_prepare();
    hak_bigcache_fork_prepare();
    hak_ss_fork_prepare();
    hak_meta_fork_prepare();
}
static void fork_parent(void) {
    hak_meta_fork_parent();
    hak_ss_fork_parent();
    hak_bigcache_fork_parent();
    hak_heap_fork_parent();
}
static void fork_child(void) {
    hak_meta_fork_child();
    hak_ss_fork_child();
    hak_bigcache_fork_child();
    hak_heap_fork_child();
}

static void init_once_fn(void) {
    hak_secret_init(); /* first: every free list and check word made from here on uses the secrets */
    hak_options_load();
    hak_thread_init();
    hak_stats_init();
    /* Marked done before pthread_atfork: glibc allocates there once its inline handler slots are used up,
     * and that malloc must not re-enter this pthread_once. */
    __atomic_store_n(&init_done, 1, __ATOMIC_RELEASE);
    pthread_atfork(fork_prepare, fork_parent, fork_child);
}

void hak_init(void) {
    if (hak_likely(__atomic_load_n(&init_done, __ATOMIC_ACQUIRE)))
        return;
    pthread_once(&init_once, init_once_fn);
}

__attribute__((constructor)) static void hak_init_at_load(void) { hak_init(); }

/* ---- heap objects: slots in chunks the region map marks HEAPS, reused first in, first out ---- */

static uint8_t *slots_next, *slots_end;      /* the unused rest of the newest chunk (registry lock) */
static hak_heap_t *freed_first, *freed_last; /* freed slots, oldest first, linked through their last word */
static size_t freed_count;
/* A freed slot is reused only once this many others have been freed after it: a stale handle to a destroyed
 * heap is then still reported for the next thousand destroys, instead of naming the next heap created (512
 * KiB of address space at most, mostly untouched). */
#define HEAP_SLOT_QUARANTINE 1024

static hak_heap_t *heap_object_alloc_locked(void) {
    hak_heap_t *heap = freed_count > HEAP_SLOT_QUARANTINE ? freed_first : NULL;
    if (heap != NULL) {
        freed_count--;
        freed_first = *(hak_heap_t **)(void *)((uint8_t *)heap + HAK_HEAP_SLOT - sizeof(void *));
        if (freed_first == NULL)
            freed_last = NULL;
        memset(heap, 0, HAK_HEAP_SLOT);
        return heap;
    }
    if (slots_next == slots_end) {
        uint8_t *chunk = hak_os_map_aligned(HAK_CHUNK_SIZE, HAK_CHUNK_SIZE);
        if (chunk == NULL)
            return NULL;
        hak_region_set(chunk, HAK_REGION_HEAPS);
        slots_next = chunk;
        slots_end = chunk + HAK_CHUNK_SIZE;
    }
    heap = (hak_heap_t *)(void *)slots_next; /* fresh mapping: already zero */
    slots_next += HAK_HEAP_SLOT;
    return heap;
}

/* The slot's check word is already 0, so stale handles to it are detected; the link to the next freed slot
 * is kept in the slot's last word, away from the check word. */
static void heap_object_free_locked(hak_heap_t *heap) {
    *(hak_heap_t **)(void *)((uint8_t *)heap + HAK_HEAP_SLOT - sizeof(void *)) = NULL;
    if (freed_last != NULL)
        *(hak_heap_t **)(void *)((uint8_t *)freed_last + HAK_HEAP_SLOT - sizeof(void *)) = heap;
    else
        freed_first = heap;
    freed_last = heap;
    freed_count++;
}

void hak_heap_report_bad(const char *what, const hak_heap_t *heap) { hak_report_invalid(what, heap); }

/* ---- registry ---- */

void hak_heap_registry_lock(void) { hak_lock(&registry_lock); }
void hak_heap_registry_unlock(void) { hak_unlock(&registry_lock); }

hak_heap_t *hak_heap_lookup_locked(uint32_t id, uint64_t gen) {
    hak_heap_t *heap = id < registry_cap ? registry[id] : NULL;
    return heap != NULL && heap->gen == gen ? heap : NULL;
}

/* Gives the heap a free id (growing the table); false when out of metadata memory. Registry locked. */
static bool register_locked(hak_heap_t *heap) {
    uint32_t id = 1;
    while (id < registry_cap && registry[id] != NULL)
        id++;
    if (id >= registry_cap) {
        uint32_t cap = registry_cap ? registry_cap * 2 : 16;
        hak_heap_t **table = hak_meta_alloc(cap * sizeof *table);
        if (table == NULL)
            return false;
        if (registry != NULL) {
            memcpy(table, registry, registry_cap * sizeof *table);
            hak_meta_free(registry, registry_cap * sizeof *table);
        }
        table[0] = &hak_heap_main;
        registry = table;
        registry_cap = cap;
    }
    heap->id = id;
    heap->gen = next_gen++;
    registry[id] = heap;
    return true;
}

/* ---- create / destroy ---- */

hak_heap_t *hak_heap_create(const hak_heap_options_t *opts) {
    hak_init();
    hak_lock(&registry_lock);
    hak_heap_t *heap = heap_object_alloc_locked();
    hak_unlock(&registry_lock);
    if (heap == NULL) {
        errno = ENOMEM;
        return NULL;
    }
    hak_lock_init(&heap->lock);
    heap->quota.limit = opts ? opts->limit_bytes : 0;
    hak_tiny_arena_init(&heap->slabs, &heap->quota, reclaim_large_mappings);
    hak_large_set_init(&heap->large, &heap->quota);
    const char *name = opts && opts->name ? opts->name : "heap";
    for (size_t i = 0; i + 1 < sizeof heap->name && name[i] != '\0'; i++)
        heap->name[i] = name[i]; /* the rest is zero: the slot was cleared */
    hak_lock(&registry_lock);
    bool ok = register_locked(heap);
    if (ok)
        __atomic_store_n(&heap->check, hak_heap_check_of(heap), __ATOMIC_RELEASE);
    else
        heap_object_free_locked(heap);
    hak_unlock(&registry_lock);
    if (!ok) {
        errno = ENOMEM;
        return NULL;
    }
    return heap;
}

void hak_heap_destroy(hak_heap_t *heap) {
    if (heap == NULL || heap == &hak_heap_main)
        return; /* the default heap lives as long as the process */
    hak_lock(&registry_lock);
    if (!hak_heap_handle_ok(heap)) {
        hak_unlock(&registry_lock);
        hak_heap_report_bad("hak_heap_destroy of a destroyed or invalid heap", heap);
        return;
    }
    __atomic_store_n(&heap->check, 0, __ATOMIC_RELAXED);
    hak_stats_retire_locked(heap); /* a process walk, which holds the registry lock, sees them once */
    registry[heap->id] = NULL;
    hak_lock(&heap->lock);
    hak_unlock(&registry_lock);
    hak_tiny_arena_release_all(&heap->slabs);
    hak_large_release_all(&heap->large);
    hak_quota_drop(&heap->quota); /* the spans just given back were not uncharged one by one */
    hak_unlock(&heap->lock);
    hak_lock_destroy(&heap->slabs.lock);
    hak_lock_destroy(&heap->large.lock);
    hak_lock_destroy(&heap->lock);
    heap->gen = 0;
    hak_lock(&registry_lock);
    heap_object_free_locked(heap);
    hak_unlock(&registry_lock);
}

hak_heap_t *hak_heap_default(void) { return &hak_heap_main; }

void hak_heap_foreach(void (*fn)(hak_heap_t *heap, void *arg), void *arg) {
    hak_lock(&registry_lock);
    fn(&hak_heap_main, arg);
    for (uint32_t id = 1; id < registry_cap; id++)
        if (registry[id] != NULL)
            fn(registry[id], arg);
    hak_unlock(&registry_lock);
}

/* ---- fork: hold every lock across fork so the child sees consistent lists ---- */

static void lock_heap(hak_heap_t *heap) {
    hak_lock(&heap->lock);
    hak_lock(&heap->slabs.lock);
    hak_lock(&heap->large.lock);
}

static void unlock_heap(hak_heap_t *heap) {
    hak_unlock(&heap->large.lock);
    hak_unlock(&heap->slabs.lock);
    hak_unlock(&heap->lock);
}

static void reinit_heap(hak_heap_t *heap) {
    hak_lock_init(&heap->large.lock);
    hak_lock_init(&heap->slabs.lock);
    hak_lock_init(&heap->lock);
}

void hak_heap_fork_prepare(void) {
    hak_lock(&registry_lock);
    lock_heap(&hak_heap_main);
    for (uint32_t id = 1; id < registry_cap; id++)
        if (registry[id] != NULL)
            lock_heap(registry[id]);
}

void hak_heap_fork_parent(void) {
    for (uint32_t id = 1; id < registry_cap; id++)
        if (registry[id] != NULL)
            unlock_heap(registry[id]);
    unlock_heap(&hak_heap_main);
    hak_unlock(&registry_lock);
}

void hak_heap_fork_child(void) {
    for (uint32_t id = 1; id < registry_cap; id++)
        if (registry[id] != NULL) {
            reinit_heap(registry[id]);
            hak_tiny_arena_orphan_others(&registry[id]->slabs, hak_thread_id());
        }
    reinit_heap(&hak_heap_main);
    hak_tiny_arena_orphan_others(&hak_heap_main.slabs, hak_thread_id());
    hak_lock_init(&registry_lock);
}
