/* SPDX-License-Identifier: MIT */
/* A thread heap's per-class lists of spans with free blocks, and the collection of a span's remote frees.
 * Owner thread only. */
#ifndef HAKMEM_TINY_SPAN_LIST_H
#define HAKMEM_TINY_SPAN_LIST_H

#include "common/list.h"
#include "tiny/block.h"
#include "tiny/theap.h"

static inline hak_span_t *hak_avail_first(hak_theap_t *th, unsigned cls) {
    return hak_list_entry_or_null(th->avail[cls].first, hak_span_t, link);
}

static inline hak_span_t *hak_avail_next(hak_span_t *s) {
    return hak_list_entry_or_null(s->link.next, hak_span_t, link);
}

/* Takes s off its class list; if it was the current span, the next one on the list (or none) becomes it. */
static inline void hak_avail_remove(hak_theap_t *th, hak_span_t *s) {
    unsigned cls = s->cls;
    hak_list_remove(&th->avail[cls], &s->link);
    if (th->direct[cls] == s) {
        hak_span_t *first = hak_avail_first(th, cls);
        th->direct[cls] = first != NULL ? first : &hak_span_empty;
    }
}

static inline void hak_avail_push_front(hak_theap_t *th, hak_span_t *s) {
    hak_list_push_front(&th->avail[s->cls], &s->link);
}

static inline void hak_avail_push_back(hak_theap_t *th, hak_span_t *s) {
    hak_list_push_back(&th->avail[s->cls], &s->link);
}

/* A full span got a block back: it becomes allocatable again. It joins the back of the list so that it
 * gathers more frees before the allocator comes back to it (taking it at once would refill one block). */
static inline void hak_span_unfull(hak_theap_t *th, hak_span_t *s) {
    hak_store_relaxed(&s->flags, (uint8_t)(s->flags & ~HAK_SPAN_FULL));
    hak_avail_push_back(th, s);
    if (th->direct[s->cls] == &hak_span_empty)
        th->direct[s->cls] = s;
}

/* Moves blocks freed by other threads into the span's free list (owner only); returns how many. */
static inline uint32_t hak_span_collect_remote(hak_span_t *s) {
    if (__atomic_load_n(&s->thread_free, __ATOMIC_RELAXED) == NULL)
        return 0;
    hak_block_t *list = __atomic_exchange_n(&s->thread_free, NULL, __ATOMIC_ACQUIRE);
    uint32_t n = 1;
    hak_block_t *tail = list;
    for (hak_block_t *next; (next = hak_block_peek_next(tail, "remote free list")) != NULL; tail = next)
        n++;
    hak_block_set_next(tail, s->free);
    s->free = list;
    hak_store_relaxed(&s->used, s->used - n);
    __atomic_fetch_sub(&s->remote_pending, n, __ATOMIC_RELAXED);
    return n;
}

#endif
