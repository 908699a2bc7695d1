/* SPDX-License-Identifier: MIT */
/* Allocation slow path for slab classes: refill the current slab from its other lists, extend it lazily,
 * look for another slab of the class, collect remote frees, or take a new span. */
#include <errno.h>

#include "tiny/span.h"
#include "tiny/span_list.h"
#include "tiny/tiny.h"

/* Blocks are carved a page's worth at a time so a fresh span is touched only as it is used. */
#define HAK_EXTEND_BYTES 4096u

static bool slab_extend(hak_span_t *s) {
    uint32_t cap = s->capacity, res = s->reserved;
    if (cap >= res)
        return false;
    size_t bs = s->block_size;
    uint32_t k = bs >= HAK_EXTEND_BYTES ? 1u : HAK_EXTEND_BYTES / (uint32_t)bs;
    if (k > res - cap)
        k = res - cap;
    uint8_t *first = s->start + (size_t)cap * bs;
    uint8_t *p = first;
    for (uint32_t i = 1; i < k; i++, p += bs)
        hak_block_set_next((hak_block_t *)p, (hak_block_t *)(p + bs));
    hak_block_set_next((hak_block_t *)p, s->free);
    s->free = (hak_block_t *)first;
    hak_store_relaxed(&s->capacity, cap + k);
    return true;
}

/* Makes s->free non-empty if the slab has any block to give; false if it is full. */
static bool slab_refill(hak_theap_t *th, hak_span_t *s) {
    uint32_t remote = hak_span_collect_remote(s);
    if (remote != 0)
        hak_tiny_count(&th->counts.remote_frees, remote);
    if (s->free == NULL) {
        s->free = s->local_free;
        s->local_free = NULL;
    }
    return s->free != NULL || slab_extend(s);
}

static inline void *slab_pop(hak_span_t *s) {
    hak_block_t *b = s->free;
    s->free = hak_block_take_next(b, "span free list");
    hak_store_relaxed(&s->used, s->used + 1);
    return b;
}

void *hak_tiny_alloc_corrupt(hak_theap_t *th, unsigned cls, hak_block_t *b, hak_span_t *s) {
    hak_block_report_corrupt(b, s == NULL ? "thread cache" : "span free list");
    hak_block_mark_used(b);
    if (s == NULL) {
        th->tc_head[cls] = NULL;
        hak_tcache_room_add(&th->tc_room[cls], 1);
    } else {
        s->free = NULL;
        hak_store_relaxed(&s->used, s->used + 1);
    }
    return b;
}

void *hak_tiny_alloc_slow(hak_theap_t *th, unsigned cls) {
    if (hak_unlikely(th->tid == 0)) { /* a placeholder thread heap: the first allocation of this thread */
        th = th->arena->first_use();
        if (th == NULL) {
            errno = ENOMEM;
            return NULL;
        }
    }
    hak_tiny_count(&th->counts.alloc_slow, 1);
    hak_theap_flush_if_requested(th);
    hak_tcache_on_slow(th, cls);
    hak_span_t *was = th->direct[cls];
    bool scanned_remote = false;
    for (;;) {
        hak_span_t *s = hak_avail_first(th, cls);
        while (s != NULL) {
            if (slab_refill(th, s)) {
                if (s != was && s->used != 0) /* blocks freed into another span: a bigger cache keeps them */
                    hak_tcache_on_miss(th, cls);
                if (s != hak_avail_first(th, cls)) {
                    hak_avail_remove(th, s);
                    hak_avail_push_front(th, s);
                }
                th->direct[cls] = s;
                return slab_pop(s);
            }
            hak_span_t *next = hak_avail_next(s);
            hak_avail_remove(th, s);
            hak_store_relaxed(&s->flags, (uint8_t)(s->flags | HAK_SPAN_FULL));
            s = next;
        }
        th->direct[cls] = &hak_span_empty;
        if (!scanned_remote) {
            scanned_remote = true;
            hak_theap_collect_remote(th);
            if (!hak_list_is_empty(&th->avail[cls]))
                continue;
        }
        s = hak_theap_span_new(th, cls);
        if (s == NULL)
            return NULL; /* errno set */
        hak_avail_push_front(th, s);
    }
}
