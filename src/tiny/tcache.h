/* SPDX-License-Identifier: MIT */
/* The thread cache: a short per-class LIFO of blocks the owner thread freed, in front of the spans. The next
 * allocation of the class takes the block freed last, still in the CPU cache, instead of the head of the
 * current slab's list (a block freed long ago, a cache miss), and most allocations and frees never reach
 * the slab lists at all. Cached blocks stay counted as used in their spans: statistics subtract them, and
 * they are flushed back to their spans at thread exit, by hak_collect and before a span request fails. */
#ifndef HAKMEM_TINY_TCACHE_H
#define HAKMEM_TINY_TCACHE_H

#include "common/compiler.h"

#include "tiny/block.h"
#include "tiny/theap.h"

/* The cache of class cls starts with room for hak_tcache_initial[cls] blocks (0: no cache) and adapts
 * between 16 and hak_tcache_max[cls] (tcache.c); th->tc_limit[cls] is the current size. */
extern HAK_HIDDEN const uint16_t hak_tcache_initial[HAK_CLASS_COUNT];
extern HAK_HIDDEN const uint16_t hak_tcache_max[HAK_CLASS_COUNT];

/* room has one writer, the owner, and statistics read it from other threads. On x86-64 one instruction
 * updates it in place (a single aligned store, so readers see the old or the new value); a relaxed atomic
 * store costs a load, an add and a store, three instructions on the hottest path. */
static inline void hak_tcache_room_add(uintptr_t *room, uintptr_t d) {
#if defined(__x86_64__)
    __asm__("addq %1, %0" : "+m"(*room) : "er"(d));
#else
    hak_store_relaxed(room, *room + d);
#endif
}

/* Pushes b onto the cache of class cls whose top is `top`; the caller has checked that there is room and
 * that b is a block start owned by this thread. */
static inline void hak_tcache_push_onto(hak_theap_t *th, unsigned cls, hak_block_t *b, hak_block_t *top) {
    hak_block_set_next(b, top);
    th->tc_head[cls] = b;
    hak_tcache_room_add(&th->tc_room[cls], (uintptr_t)-1);
}

/* Takes b if there is room; the caller has checked that b is a block start owned by this thread. */
static inline bool hak_tcache_push(hak_theap_t *th, unsigned cls, hak_block_t *b) {
    if (th->tc_room[cls] == 0)
        return false;
    hak_tcache_push_onto(th, cls, b, th->tc_head[cls]);
    return true;
}

/* Blocks held by th's cache of class cls (any thread, for statistics: read before the spans' counts, with
 * acquire, so that a flush in progress is never counted twice; see tcache.c). The owner changes the limit
 * only while the cache is empty (room == limit), moving room and limit in the order given in tcache.c; a
 * read of room between two equal reads of the limit then gives 0 during a change, as it is: never a
 * negative count nor one above the limit (the clamp covers a cache a corrupted link cut short). */
static inline uint32_t hak_tcache_count(const hak_theap_t *th, unsigned cls) {
    uintptr_t limit, room;
    do {
        limit = hak_load_acquire(&th->tc_limit[cls]);
        room = hak_load_acquire(&th->tc_room[cls]);
    } while (hak_load_acquire(&th->tc_limit[cls]) != limit);
    return room >= limit ? 0 : (uint32_t)(limit - room);
}

/* Blocks the cache of class cls may hold now (any thread; 0: no cache). */
static inline uint32_t hak_tcache_capacity(const hak_theap_t *th, unsigned cls) {
    return hak_load_relaxed(&th->tc_limit[cls]);
}

/* Gives room to a new thread heap's caches. */
void hak_tcache_init(hak_theap_t *th);
/* Returns every cached block of th to its span (owner thread only). Spans may become empty and be freed.
 * Every cache grown beyond its starting size halves (hak_collect, memory pressure, thread exit). */
void hak_tcache_flush(hak_theap_t *th);
/* The allocation slow path of class cls (owner thread, real thread heap): shrinks the caches of classes
 * that sat idle. */
void hak_tcache_on_slow(hak_theap_t *th, unsigned cls);
/* The slow path of class cls refilled from a span other than the current one, which holds blocks the owner
 * freed when its cache was full: grows the cache when that happens often. */
void hak_tcache_on_miss(hak_theap_t *th, unsigned cls);

#endif
