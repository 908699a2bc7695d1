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

static inline void *hak_tiny_alloc(hak_theap_t *th, size_t size) {
    unsigned cls = hak_size_class(size);
    hak_block_t *b = hak_tcache_pop(th, cls);
    if (hak_likely(b != NULL))
        return b;
    hak_span_t *s = th->direct[cls];
    b = s->free;
    if (hak_unlikely(b == NULL)) {
        /* The owner's own frees are the usual refill: take them without leaving the fast path. */
        b = s->local_free;
        if (b == NULL)
            return hak_tiny_alloc_slow(th, cls);
        s->local_free = NULL;
    }
    s->free = b->next;
    hak_store_relaxed(&s->used, s->used + 1);
    return b;
}

/* Frees p, which lies in SuperSlab ss. Invalid pointers (not a block start of a live span) are reported. */
static inline void hak_tiny_free(hak_superslab_t *ss, void *p) {
    hak_span_t *s = hak_span_of(ss, p);
    __asm__("" : "+r"(s)); /* one register for s: otherwise GCC rebuilds its address for the later fields */
    uintptr_t off = (uintptr_t)p - (uintptr_t)hak_load_relaxed(&s->start);
    uint64_t idx = hak_span_block_index(s, off);
    if (hak_likely(idx * hak_load_relaxed(&s->block_size) == off && idx < hak_load_relaxed(&s->capacity) &&
                   __atomic_load_n(&ss->owner_tid, __ATOMIC_RELAXED) == hak_thread_id())) {
        hak_block_t *b = p;
        hak_theap_t *th = ss->owner;
        unsigned cls = s->cls;
        hak_block_t *top = th->tc_head[cls];
        /* an immediate double free finds b on top of the cache or of the local list: the slow path reports */
        if (hak_likely(b != top && b != s->local_free)) {
            if (hak_likely(th->tc_room[cls] != 0)) {
                b->next = top;
                th->tc_head[cls] = b;
                hak_tcache_room_add(&th->tc_room[cls], (uintptr_t)-1);
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
        return;
    }
    hak_tiny_free_slow(ss, s, p);
}

/* Usable bytes from p to the end of its block, or 0 if p is not a live block pointer. */
size_t hak_tiny_usable_size(hak_superslab_t *ss, const void *p);

#endif
