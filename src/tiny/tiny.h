/* Fast paths for every block served from slabs (tiny and pool classes): pop from the thread cache, else from
 * the current slab of the thread heap; an owner free pushes onto the thread cache, else (full, or a pool
 * class) onto the slab's local list. Everything else is in the slow paths. */
#ifndef HAKMEM_TINY_TINY_H
#define HAKMEM_TINY_TINY_H

#include "superslab/superslab.h"
#include "tiny/size_class.h"
#include "tiny/tcache.h"
#include "tiny/theap.h"

/* Slow paths (tiny/alloc_slow.c, tiny/free_slow.c). */
void *hak_tiny_alloc_slow(hak_theap_t *th, unsigned cls);
void hak_tiny_free_slow(hak_superslab_t *ss, hak_span_t *s, void *p);
/* After an owner free into s: a full span becomes available again, an empty one is retired. */
void hak_tiny_free_settle(hak_theap_t *th, hak_superslab_t *ss, hak_span_t *s);
/* Owner free of a validated block that the thread cache did not take (full, no cache, or a double free). */
void hak_tiny_free_owner(hak_theap_t *th, hak_superslab_t *ss, hak_span_t *s, hak_block_t *b);

/* Owner thread: pushes the linked run first..last (n blocks of span s) onto the span's local list; the list
 * work happens only when the span changes state (it was full, or is now empty). */
static inline void hak_span_push_local(hak_theap_t *th, hak_superslab_t *ss, hak_span_t *s,
                                       hak_block_t *first, hak_block_t *last, uint32_t n) {
    last->next =
        hak_load_relaxed(&s->local_free); /* reloaded: keeps the fast path's cached case one compare */
    s->local_free = first;
    uint32_t used = s->used - n;
    hak_store_relaxed(&s->used, used);
    if (hak_unlikely(used == 0 || (s->flags & HAK_SPAN_FULL)))
        hak_tiny_free_settle(th, ss, s);
}

/* Allocation: the thread cache, else the current span's free list, else (one more load) the owner's own
 * frees on its local list; only when both lists are empty does the slow path run. */
static inline void *hak_tiny_alloc(hak_theap_t *th, size_t size) {
    unsigned cls = hak_size_class(size);
    hak_block_t *b = hak_tcache_pop(th, cls);
    if (hak_likely(b != NULL))
        return b;
    hak_span_t *s = th->direct[cls];
    b = s->free;
    if (hak_unlikely(b == NULL)) {
        b = s->local_free;
        if (b == NULL)
            return hak_tiny_alloc_slow(th, cls);
        s->local_free = NULL;
    }
    s->free = b->next;
    hak_store_relaxed(&s->used, s->used + 1);
    return b;
}

/* The calling thread owns the SuperSlab (one load of the first cache line, one compare). */
static inline bool hak_ss_is_mine(const hak_superslab_t *ss) {
    return __atomic_load_n(&ss->owner_tid, __ATOMIC_RELAXED) == hak_thread_id();
}

/* An immediate double free finds b on top of the thread cache (`top`) or of the span's local list. */
static inline bool hak_block_just_freed(const hak_span_t *s, const hak_block_t *b, const hak_block_t *top) {
    return b == top || b == s->local_free;
}

/* Frees p, which lies in SuperSlab ss: an owner free of a block start goes onto the thread cache, or when it
 * is full onto the span's local list; anything else (another thread's block, an invalid pointer, a suspected
 * double free) goes to the slow paths, which report what is wrong. */
static inline void hak_tiny_free(hak_superslab_t *ss, void *p) {
    hak_span_t *s = hak_span_of(ss, p);
    __asm__("" : "+r"(s)); /* one register for s: otherwise GCC rebuilds its address for the later fields */
    if (hak_unlikely(!hak_span_is_block_start(s, hak_span_offset(s, p)) || !hak_ss_is_mine(ss))) {
        hak_tiny_free_slow(ss, s, p);
        return;
    }
    hak_block_t *b = p;
    hak_theap_t *th = ss->owner;
    unsigned cls = s->cls;
    hak_block_t *top = th->tc_head[cls];
    if (hak_likely(!hak_block_just_freed(s, b, top))) {
        if (hak_likely(th->tc_room[cls] != 0)) {
            hak_tcache_push_onto(th, cls, b, top);
            return;
        }
        /* Full cache (a burst of frees, where most frees land here): to the span's local list, with the
         * slow path's check against the top of `free` as well. */
        if (hak_likely(b != s->free)) {
            hak_span_push_local(th, ss, s, b, b, 1);
            return;
        }
    }
    hak_tiny_free_owner(th, ss, s, b);
}

/* Usable bytes from p to the end of its block, or 0 if p is not a live block pointer. */
size_t hak_tiny_usable_size(hak_superslab_t *ss, const void *p);

#endif
