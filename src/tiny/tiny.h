/* SPDX-License-Identifier: MIT */
/* Fast paths for every block served from slabs (tiny and pool classes): pop from the thread cache, else from
 * the current slab of the thread heap; an owner free pushes onto the thread cache, else (full, or a pool
 * class) onto the slab's local list. Everything else is in the slow paths. */
#ifndef HAKMEM_TINY_TINY_H
#define HAKMEM_TINY_TINY_H

#include "superslab/superslab.h"
#include "tiny/block.h"
#include "tiny/size_class.h"
#include "tiny/tcache.h"
#include "tiny/theap.h"

/* Slow paths (tiny/alloc_slow.c, tiny/free_slow.c). */
void *hak_tiny_alloc_slow(hak_theap_t *th, unsigned cls);
/* The block b at the head of the thread cache (s == NULL) or of span s's free list failed its check: reports
 * it, ends that list there (what followed is leaked) and hands b out, counted as the fast path would. */
void *hak_tiny_alloc_corrupt(hak_theap_t *th, unsigned cls, hak_block_t *b, hak_span_t *s);
void hak_tiny_free_slow(hak_superslab_t *ss, hak_span_t *s, void *p);
/* After an owner free into s: a full span becomes available again, an empty one is retired. */
void hak_tiny_free_settle(hak_theap_t *th, hak_superslab_t *ss, hak_span_t *s);
/* An aligned allocation handed out q inside its block: flags the span and tags q (tiny/free_slow.c). */
void hak_tiny_note_aligned(hak_span_t *s, uint8_t *q);
/* Owner free of a validated block that the thread cache did not take (full, no cache, or a double free). */
void hak_tiny_free_owner(hak_theap_t *th, hak_superslab_t *ss, hak_span_t *s, hak_block_t *b);

/* Owner thread: pushes the linked run first..last (n blocks of span s) onto the span's local list; the list
 * work happens only when the span changes state (it was full, or is now empty). */
static inline void hak_span_push_local(hak_theap_t *th, hak_superslab_t *ss, hak_span_t *s,
                                       hak_block_t *first, hak_block_t *last, uint32_t n) {
    hak_block_set_next(last, hak_load_relaxed(&s->local_free)); /* reloaded: see hak_tiny_free */
    s->local_free = first;
    uint32_t used = s->used - n;
    hak_store_relaxed(&s->used, used);
    if (hak_unlikely(used == 0 || (s->flags & HAK_SPAN_FULL)))
        hak_tiny_free_settle(th, ss, s);
}

/* Allocation: the thread cache, else the current span's free list, else (one more load) the owner's own
 * frees on its local list; only when both lists are empty does the slow path run. Each pop follows a link
 * only after its check (tiny/block.h); a failed check goes out of line (a tail call, so the fast path keeps
 * no stack frame). */
static inline void *hak_tiny_alloc_class(hak_theap_t *th, size_t cls) {
    hak_block_t *b = th->tc_head[cls];
    if (hak_likely(b != NULL)) {
        hak_block_t *next = hak_block_next(b);
        if (hak_unlikely(!hak_block_link_ok(b)))
            return hak_tiny_alloc_corrupt(th, cls, b, NULL);
        hak_block_mark_used(b);
        th->tc_head[cls] = next;
        hak_tcache_room_add(&th->tc_room[cls], 1);
        return b;
    }
    hak_span_t *s = th->direct[cls];
    b = s->free;
    if (hak_unlikely(b == NULL)) {
        b = s->local_free;
        if (b == NULL)
            return hak_tiny_alloc_slow(th, cls);
        s->local_free = NULL;
    }
    hak_block_t *next = hak_block_next(b);
    if (hak_unlikely(!hak_block_link_ok(b)))
        return hak_tiny_alloc_corrupt(th, cls, b, s);
    hak_block_mark_used(b);
    s->free = next;
    hak_store_relaxed(&s->used, s->used + 1);
    return b;
}

/* cls is a word: the arrays above are indexed without a zero-extension. */
static inline void *hak_tiny_alloc(hak_theap_t *th, size_t size) {
    return hak_tiny_alloc_class(th, hak_size_class(size));
}

/* The calling thread owns the SuperSlab (one load of the first cache line, one compare). */
static inline bool hak_ss_is_mine(const hak_superslab_t *ss) {
    return __atomic_load_n(&ss->owner_tid, __ATOMIC_RELAXED) == hak_thread_id();
}

/* b looks free already: its free-block pair checks (tiny/block.h), so this is a double free wherever b sits.
 * Without the checks, only an immediate double free is caught: b on top of the thread cache or of the span's
 * local list (and, in hak_tiny_free's full-cache path, of its free list). */
static inline bool hak_block_looks_free(const hak_span_t *s, const hak_block_t *b, const hak_block_t *top) {
#if HAKMEM_CHECKS
    (void)s;
    (void)top;
    return hak_block_is_free(b);
#else
    return b == top || b == s->local_free;
#endif
}

static inline bool hak_block_tops_free_list(const hak_span_t *s, const hak_block_t *b) {
    return !HAKMEM_CHECKS && b == s->free;
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
    if (hak_likely(!hak_block_looks_free(s, b, top))) {
        if (hak_likely(th->tc_room[cls] != 0)) {
            hak_tcache_push_onto(th, cls, b, top);
            return;
        }
        /* Full cache (a burst of frees, where most frees land here): to the span's local list. */
        if (hak_likely(!hak_block_tops_free_list(s, b))) {
            hak_span_push_local(th, ss, s, b, b, 1);
            return;
        }
    }
    hak_tiny_free_owner(th, ss, s, b);
}

/* Usable bytes from p to the end of its block, or 0 if p is not a live block pointer. */
size_t hak_tiny_usable_size(hak_superslab_t *ss, const void *p);

#endif
