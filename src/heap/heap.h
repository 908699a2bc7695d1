/* SPDX-License-Identifier: MIT */
/* Heaps: the user's hak_heap_t. A heap is a name, a quota, the slab tier's arena (its thread heaps and
 * abandoned SuperSlabs, tiny/theap.h) and its set of large blocks (bigcache/large.h); plus the registry of
 * live heaps, each thread's lookup of its thread heap for a heap, thread exit and fork.
 *
 * Each thread finds its thread heap of the default heap in one TLS word (hak_tls_theap, starting on the
 * static empty thread heap), and that of a private heap in a per-thread slot table indexed by the heap's id,
 * checked against the heap's generation so that a slot left by a destroyed heap is never used. */
#ifndef HAKMEM_HEAP_HEAP_H
#define HAKMEM_HEAP_HEAP_H

#include "common/compiler.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bigcache/large.h"
#include "common/lock.h"
#include "common/quota.h"
#include "common/region_map.h"
#include "common/secret.h"
#include "hakmem/hakmem.h"
#include "tiny/theap.h"

struct hak_heap_s {
    uintptr_t check; /* keyed with its own address while the heap lives, 0 once destroyed */
    uint32_t id;     /* index in the registry; 0 = default heap */
    uint64_t gen;    /* unique per created heap: stale per-thread slots are detected by it */
    char name[HAK_STATS_NAME_MAX];
    hak_quota_t quota;      /* what spans and large blocks hold from the OS, against limit_bytes */
    size_t peak_live_bytes; /* highest live bytes seen by a stats walk (atomic max) */
    hak_lock_t lock;        /* the heap's life: destroy waits for thread exits and statistics walks */
    hak_tiny_arena_t slabs; /* tiny and pool blocks */
    hak_large_set_t large;  /* large blocks */
};

/* Per-thread slot for a private heap: the thread heap and the heap generation it was made for. */
typedef struct hak_tslot_s {
    hak_theap_t *theap;
    uint64_t gen;
} hak_tslot_t;

extern HAK_HIDDEN hak_heap_t hak_heap_main;
/* The placeholder thread heap every thread starts on for the default heap (see tiny/theap.h). */
extern HAK_HIDDEN hak_theap_t hak_theap_empty;
extern HAK_HIDDEN __thread hak_theap_t *hak_tls_theap; /* the default heap's thread heap */
extern HAK_HIDDEN __thread hak_tslot_t *hak_tls_slots;
extern HAK_HIDDEN __thread uint32_t hak_tls_slot_count;

/* Private heap objects live in slots of this size in chunks marked HAK_REGION_HEAPS, never unmapped: a handle
 * can be checked (region byte, slot alignment, then the check word) without touching memory that might not be
 * there. */
#define HAK_HEAP_SLOT ((uintptr_t)512)
_Static_assert(sizeof(struct hak_heap_s) <= HAK_HEAP_SLOT - sizeof(void *),
               "a heap object and the freed-slot link "
               "must fit its slot");

static inline uintptr_t hak_heap_check_of(const hak_heap_t *heap) {
    return hak_secret.heap ^ (uintptr_t)heap;
}

/* heap is the default heap or a live private heap. */
static inline bool hak_heap_handle_ok(const hak_heap_t *heap) {
    if (heap == &hak_heap_main)
        return true;
    if (hak_region_kind(heap) != HAK_REGION_HEAPS || ((uintptr_t)heap & (HAK_HEAP_SLOT - 1)) != 0)
        return false;
    return __atomic_load_n(&heap->check, __ATOMIC_RELAXED) == hak_heap_check_of(heap);
}

/* Reports a destroyed or bogus handle passed to `what` (heap/heap.c). */
hak_cold void hak_heap_report_bad(const char *what, const hak_heap_t *heap);

static inline hak_heap_t *hak_heap_of_arena(hak_tiny_arena_t *arena) {
    return (hak_heap_t *)(void *)((char *)arena - offsetof(hak_heap_t, slabs));
}
static inline hak_heap_t *hak_heap_of_large_set(hak_large_set_t *set) {
    return (hak_heap_t *)(void *)((char *)set - offsetof(hak_heap_t, large));
}

/* The default heap's first_use callback: the calling thread's real thread heap of it. */
hak_theap_t *hak_theap_first_use(void);
/* Thread heap of `heap` for the calling thread; creates it on first use. NULL on out-of-memory. */
hak_theap_t *hak_theap_get_slow(hak_heap_t *heap);
/* The calling thread's heap for `heap` if it has one yet, else NULL. */
static inline hak_theap_t *hak_theap_find(hak_heap_t *heap) {
    if (heap == &hak_heap_main) {
        hak_theap_t *th = hak_tls_theap;
        return th != &hak_theap_empty ? th : NULL;
    }
    if (heap->id < hak_tls_slot_count && hak_tls_slots[heap->id].gen == heap->gen)
        return hak_tls_slots[heap->id].theap;
    return NULL;
}

static inline hak_theap_t *hak_theap_get(hak_heap_t *heap) {
    hak_theap_t *th = hak_theap_find(heap);
    return hak_likely(th != NULL) ? th : hak_theap_get_slow(heap);
}

/* Process-wide initialisation (idempotent, cheap after the first call). */
void hak_init(void);
/* Thread-exit handling set-up at initialisation (heap/thread.c). */
void hak_thread_init(void);
/* Statistics set-up at initialisation (heap/stats.c): keeps a private copy of stderr for HAKMEM_SHOW_STATS.
 */
void hak_stats_init(void);
/* HAKMEM_SHOW_STATS turned on at run time: takes the private copy of stderr now (idempotent). */
void hak_stats_show_at_exit(bool on);
/* Writes the statistics of heap (NULL: the process) to fd with write(2), formatted on the stack (nothing
 * allocated): for malloc_stats and the statistics at exit. -1 (errno EINVAL) for a bad heap. */
int hak_stats_write(int fd, hak_heap_t *heap, int json);
/* Heap destroy, registry locked, before the heap leaves it: its event counts join the process totals. */
void hak_stats_retire_locked(hak_heap_t *heap);

/* Calls fn for every live heap (the default heap first) with the registry locked. */
void hak_heap_foreach(void (*fn)(hak_heap_t *heap, void *arg), void *arg);
/* Locks (and in the child re-initialises) the registry and every heap's locks, for fork. */
void hak_heap_fork_prepare(void);
void hak_heap_fork_parent(void);
void hak_heap_fork_child(void);
/* With the registry locked (hak_heap_foreach or the fork handlers): the live heap of an id and generation. */
hak_heap_t *hak_heap_lookup_locked(uint32_t id, uint64_t gen);
void hak_heap_registry_lock(void);
void hak_heap_registry_unlock(void);

#endif
