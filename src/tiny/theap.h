/* SPDX-License-Identifier: MIT */
/* Thread heaps and tiny arenas: the owners of spans.
 *
 * A tiny arena is the slab tier's share of one heap: the quota its spans are charged to, the thread heaps
 * that serve it, and the SuperSlabs of exited threads waiting to be adopted. The heap above embeds one and
 * hands it down, so this module never needs to know what a heap is.
 *
 * A thread heap is one thread's cache for one arena: per size class the current span (`direct`, what the fast
 * path pops from), the thread cache (tiny/tcache.h) and the list of spans with free blocks; plus the
 * SuperSlabs it owns. Only its thread touches it, except for statistics, which read the counts with relaxed
 * loads and walk the SuperSlab list under the arena lock.
 *
 * A thread heap whose tid is 0 is a placeholder: every thread starts on the heap layer's static empty thread
 * heap, whose direct[] all point at hak_span_empty, so the fast path needs no initialisation test. Its first
 * allocation reaches the slow path, which asks the arena's `first_use` callback for the thread's real one. */
#ifndef HAKMEM_TINY_THEAP_H
#define HAKMEM_TINY_THEAP_H

#include "common/compiler.h"

#include <stdbool.h>
#include <stdint.h>

#include "common/list.h"
#include "common/lock.h"
#include "common/quota.h"
#include "superslab/superslab.h"
#include "tiny/size_class.h"

/* Event counters of the slab tier, off the fast paths. A thread heap's are written by its owner only (plain
 * reads, relaxed stores) and read by statistics under the arena lock; the arena's hold those of exited thread
 * heaps and the events of settling abandoned SuperSlabs (arena lock). */
#define HAK_TINY_COUNT_FIELDS(X)                                                                             \
    X(alloc_slow)     /* allocations that reached hak_tiny_alloc_slow */                                     \
    X(free_slow)      /* owner frees out of line (hak_tiny_free_owner); other threads' are remote_frees */   \
    X(remote_frees)   /* blocks freed by other threads and collected back into their span */                 \
    X(spans_carved)   /* spans taken (hak_theap_span_new) */                                                 \
    X(spans_released) /* empty spans given back to their SuperSlab */                                        \
    X(ss_mapped)      /* SuperSlabs taken from the global supply that were mapped fresh */                   \
    X(ss_reused)      /* ... that came from the cache of empty SuperSlabs */                                 \
    X(ss_adopted)     /* abandoned SuperSlabs adopted */
typedef struct hak_tiny_counts_s {
#define HAK_TINY_COUNT_DECLARE(name) uint64_t name;
    HAK_TINY_COUNT_FIELDS(HAK_TINY_COUNT_DECLARE)
#undef HAK_TINY_COUNT_DECLARE
} hak_tiny_counts_t;

/* Adds n to a counter that only the calling thread writes. */
static inline void hak_tiny_count(uint64_t *c, uint64_t n) { hak_store_relaxed(c, *c + n); }

/* to += from, reading from with relaxed loads (its owner may be counting meanwhile). */
static inline void hak_tiny_counts_add(hak_tiny_counts_t *to, const hak_tiny_counts_t *from) {
#define HAK_TINY_COUNT_ADD(name) to->name += hak_load_relaxed(&from->name);
    HAK_TINY_COUNT_FIELDS(HAK_TINY_COUNT_ADD)
#undef HAK_TINY_COUNT_ADD
}

typedef struct hak_tiny_arena_s {
    hak_quota_t *quota;    /* charged 64 KiB per slab of every span taken */
    void (*reclaim)(void); /* out of memory or address space: the layer above drops what it caches */
    /* A placeholder allocates: the calling thread's real thread heap (NULL when out of memory). */
    struct hak_theap_s *(*first_use)(void);
    hak_lock_t lock;           /* protects the two lists below and each thread heap's `superslabs` list */
    hak_list_t theaps;         /* hak_theap_t.link */
    hak_list_t abandoned;      /* SuperSlabs of exited threads (hak_superslab_t.link) */
    size_t abandoned_count;    /* atomic: adoption looks at it without the lock */
    hak_tiny_counts_t retired; /* exited thread heaps' counts, and settling abandoned SuperSlabs (lock) */
} hak_tiny_arena_t;

typedef struct hak_theap_s {
    /* Thread cache (tiny/tcache.h): per class, a LIFO of the owner's recent frees, which still count as used
     * in their spans, and how many more blocks it may take (0: no cache; the owner writes, statistics read).
     * Two arrays of words, so that both are indexed like direct[]. */
    hak_block_t *tc_head[HAK_CLASS_COUNT];
    uintptr_t tc_room[HAK_CLASS_COUNT];
    hak_span_t *direct[HAK_CLASS_COUNT]; /* current span per class; &hak_span_empty when none */
    hak_list_t avail[HAK_CLASS_COUNT];   /* spans with free blocks (or room to extend), direct first */
    hak_list_t superslabs;               /* owned SuperSlabs (arena lock) */
    hak_tiny_arena_t *arena;
    uintptr_t tid;        /* the owner's hak_thread_id(); 0 for a placeholder */
    hak_list_node_t link; /* in arena->theaps */
    /* Atomic, set by any thread whose charge the arena's quota refused: the owner flushes its cache at its
     * next slow path (hak_theap_flush_if_requested), giving back the quota of the spans that empties. */
    bool flush_requested;
    hak_tiny_counts_t counts; /* after the fast paths' fields: they keep their offsets */
    /* Adaptive thread cache (tiny/tcache.c): per class the capacity (owner writes, statistics read), the
     * refills with the cache empty since the last change, and the classes that refilled this idle epoch. */
    uint16_t tc_limit[HAK_CLASS_COUNT];
    uint8_t tc_misses[HAK_CLASS_COUNT];
    uint64_t tc_active;
} hak_theap_t;

/* A cheap per-thread identity, never 0: the thread pointer (one instruction on x86-64 and AArch64), else the
 * address of a thread-local byte. Both are unique among live threads, are inherited by a fork child's only
 * thread, and are reused by a thread that reuses an exited thread's cached stack and TLS block, so a
 * SuperSlab's owner check reads the same with either. */
extern HAK_HIDDEN __thread char hak_tls_id_anchor;
static inline uintptr_t hak_thread_id(void) {
    uintptr_t tp;
#if defined(__x86_64__) && defined(__linux__)
    __asm__("mov %%fs:0, %0" : "=r"(tp)); /* the TCB's self pointer: not volatile, constant per thread */
#elif defined(__aarch64__)
    __asm__("mrs %0, tpidr_el0" : "=r"(tp));
#else
    tp = (uintptr_t)&hak_tls_id_anchor;
#endif
    return tp;
}

/* Sets up an arena charging `quota`; `reclaim` may be NULL. */
void hak_tiny_arena_init(hak_tiny_arena_t *arena, hak_quota_t *quota, void (*reclaim)(void));
/* A new thread heap of arena for the calling thread (takes the arena lock). NULL when out of memory. */
hak_theap_t *hak_theap_create(hak_tiny_arena_t *arena);
/* Thread exit: settles th's spans, gives empty SuperSlabs back, hands the others to th's arena for adoption,
 * and frees th. */
void hak_theap_abandon(hak_theap_t *th);
/* Heap destroy: gives every SuperSlab of the arena (thread heaps' and abandoned ones) back to the global
 * cache without visiting blocks, and frees the thread heaps. No thread may use the arena meanwhile. */
void hak_tiny_arena_release_all(hak_tiny_arena_t *arena);
/* Fork child: the thread heaps of every thread but `survivor` (the thread that forked) belong to threads that
 * do not exist in the child, yet a new thread of the child may get one of their thread ids (a TLS address the
 * C library reuses) and take their SuperSlabs for its own. Their SuperSlabs are abandoned to the arena (to be
 * adopted, spans settled then) without touching blocks or spans, which another thread may have left half
 * updated when fork() copied the process; the thread heaps and their caches are left behind. Single-threaded
 * (the child, right after fork); takes no lock. */
void hak_tiny_arena_orphan_others(hak_tiny_arena_t *arena, uintptr_t survivor);
/* hak_collect for the calling thread: flushes its cache, collects remote frees and gives back every empty
 * span, including the current one of each class. */
void hak_theap_release_empty(hak_theap_t *th);
/* A charge was refused: asks every thread heap of the arena to flush its cache at its next slow path (takes
 * the arena lock). */
void hak_tiny_arena_request_flush(hak_tiny_arena_t *arena);
/* Clears th's request and flushes its cache (the owner). */
void hak_theap_flush_requested(hak_theap_t *th);
/* Slow paths of the owner: flushes th's cache if another thread asked for it. */
static inline void hak_theap_flush_if_requested(hak_theap_t *th) {
    if (hak_unlikely(__atomic_load_n(&th->flush_requested, __ATOMIC_RELAXED)))
        hak_theap_flush_requested(th);
}
/* Collects remote frees into the arena's abandoned SuperSlabs and gives back the spans and SuperSlabs that
 * turned out empty (takes the arena lock). */
void hak_tiny_arena_settle_abandoned(hak_tiny_arena_t *arena);

#endif
