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

/* Blocks the cache of class cls may hold (0: no cache). */
extern HAK_HIDDEN const uint16_t hak_tcache_limit[HAK_CLASS_COUNT];

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
 * acquire, so that a flush in progress is never counted twice; see tcache.c). */
static inline uint32_t hak_tcache_count(const hak_theap_t *th, unsigned cls) {
    return (uint32_t)(hak_tcache_limit[cls] - hak_load_acquire(&th->tc_room[cls]));
}

/* Gives room to a new thread heap's caches. */
void hak_tcache_init(hak_theap_t *th);
/* Returns every cached block of th to its span (owner thread only). Spans may become empty and be freed. */
void hak_tcache_flush(hak_theap_t *th);

#endif
