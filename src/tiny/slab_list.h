/* The thread heap's per-class list of slabs that have free blocks. Owner thread only. */
#ifndef HAKMEM_TINY_SLAB_LIST_H
#define HAKMEM_TINY_SLAB_LIST_H

#include "heap/heap.h"

static inline void hak_avail_remove(hak_theap_t *th, hak_span_t *s) {
    unsigned cls = s->cls;
    if (s->prev)
        s->prev->next = s->next;
    else
        th->avail[cls] = s->next;
    if (s->next)
        s->next->prev = s->prev;
    else
        th->avail_tail[cls] = s->prev;
    s->next = s->prev = NULL;
    if (th->direct[cls] == s)
        th->direct[cls] = th->avail[cls] ? th->avail[cls] : &hak_span_empty;
}

static inline void hak_avail_push_front(hak_theap_t *th, hak_span_t *s) {
    unsigned cls = s->cls;
    s->prev = NULL;
    s->next = th->avail[cls];
    if (s->next)
        s->next->prev = s;
    else
        th->avail_tail[cls] = s;
    th->avail[cls] = s;
}

static inline void hak_avail_push_back(hak_theap_t *th, hak_span_t *s) {
    unsigned cls = s->cls;
    s->next = NULL;
    s->prev = th->avail_tail[cls];
    if (s->prev)
        s->prev->next = s;
    else
        th->avail[cls] = s;
    th->avail_tail[cls] = s;
}

/* A full slab got a block back: it becomes allocatable again. It joins the back of the list so that it
 * gathers more frees before the allocator comes back to it (taking it at once would refill one block). */
static inline void hak_span_unfull(hak_theap_t *th, hak_span_t *s) {
    hak_store_relaxed(&s->flags, (uint8_t)(s->flags & ~HAK_SPAN_FULL));
    hak_avail_push_back(th, s);
    if (th->direct[s->cls] == &hak_span_empty)
        th->direct[s->cls] = s;
}

/* Moves blocks freed by other threads into the slab's free list (owner only). */
static inline void hak_span_collect_remote(hak_span_t *s) {
    if (__atomic_load_n(&s->thread_free, __ATOMIC_RELAXED) == NULL)
        return;
    hak_block_t *list = __atomic_exchange_n(&s->thread_free, NULL, __ATOMIC_ACQUIRE);
    uint32_t n = 1;
    hak_block_t *tail = list;
    while (tail->next != NULL) {
        tail = tail->next;
        n++;
    }
    tail->next = s->free;
    s->free = list;
    hak_store_relaxed(&s->used, s->used - n);
    __atomic_fetch_sub(&s->remote_pending, n, __ATOMIC_RELAXED);
}

#endif
