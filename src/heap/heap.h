/* Heaps and thread heaps.
 * A hak_heap_t is the user's object: a name, an optional limit, and every thread heap that serves it.
 * A thread heap (theap) is one thread's cache for one heap: per size class, the current slab (`direct`,
 * what the fast path pops from) and the list of slabs with free blocks, plus the SuperSlabs it owns. */
#ifndef HAKMEM_HEAP_HEAP_H
#define HAKMEM_HEAP_HEAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/lock.h"
#include "hakmem/hakmem.h"
#include "superslab/superslab.h"
#include "tiny/size_class.h"

struct hak_large_s;

typedef struct hak_theap_s {
    /* Thread cache (tiny/tcache.h): per class, a LIFO of the owner's recent frees, which still count as used
     * in their spans, and how many more blocks it may take (0: no cache; the owner writes, statistics read).
     * Two arrays of words, so that both are indexed like direct[]. */
    hak_block_t *tc_head[HAK_CLASS_COUNT];
    uintptr_t tc_room[HAK_CLASS_COUNT];
    hak_span_t *direct[HAK_CLASS_COUNT]; /* current slab per class; &hak_span_empty when none */
    hak_span_t *avail[HAK_CLASS_COUNT];  /* slabs with free blocks (or room to extend), direct first */
    hak_span_t *avail_tail[HAK_CLASS_COUNT];
    hak_superslab_t *superslabs; /* owned SuperSlabs */
    struct hak_heap_s *heap;     /* NULL only for the static empty thread heap */
    uintptr_t tid;
    struct hak_theap_s *next, *prev; /* in heap->theaps */
} hak_theap_t;

struct hak_heap_s {
    uint32_t id;  /* index in the registry; 0 = default heap */
    uint64_t gen; /* unique per created heap: stale per-thread slots are detected by it */
    char name[HAK_STATS_NAME_MAX];
    size_t limit_bytes;
    size_t held_bytes;      /* spans and large mappings charged to this heap (atomic) */
    size_t peak_live_bytes; /* highest live bytes seen by a stats walk (atomic max) */
    hak_lock_t lock;        /* protects the lists below */
    hak_theap_t *theaps;
    hak_superslab_t *abandoned; /* SuperSlabs of exited threads, waiting to be adopted */
    struct hak_large_s *large;  /* live large blocks */
};

/* Per-thread slot for a private heap: the thread heap and the heap generation it was made for. */
typedef struct hak_tslot_s {
    hak_theap_t *theap;
    uint64_t gen;
} hak_tslot_t;

extern hak_theap_t hak_theap_empty;
extern hak_heap_t hak_heap_main;
extern __thread hak_theap_t *hak_tls_theap; /* the default heap's thread heap */
extern __thread hak_tslot_t *hak_tls_slots;
extern __thread uint32_t hak_tls_slot_count;
extern __thread char hak_tls_id_anchor;

/* A cheap per-thread identity: the address of a thread-local byte. */
static inline uintptr_t hak_thread_id(void) { return (uintptr_t)&hak_tls_id_anchor; }

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

/* Quota: charge or refund bytes held from the OS. Charge fails (false) past limit_bytes. */
bool hak_heap_charge(hak_heap_t *heap, size_t bytes);
void hak_heap_uncharge(hak_heap_t *heap, size_t bytes);

/* Process-wide initialisation (idempotent, cheap after the first call). */
void hak_init(void);
/* Statistics set-up at initialisation (heap/stats.c): keeps a private copy of stderr for HAKMEM_SHOW_STATS.
 */
void hak_stats_init(void);

/* Takes an abandoned SuperSlab of th's heap, if any, and makes th its owner. */
hak_superslab_t *hak_heap_adopt(hak_theap_t *th);

void hak_heap_fork_prepare(void);
void hak_heap_fork_parent(void);
void hak_heap_fork_child(void);

/* Calls fn for every live heap (the default heap first) with the registry locked. */
void hak_heap_foreach(void (*fn)(hak_heap_t *heap, void *arg), void *arg);

#endif
