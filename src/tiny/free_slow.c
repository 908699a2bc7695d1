/* Free slow path for slab classes: validation and error reports, aligned (interior) pointers, frees into
 * full slabs, frees from other threads, and retiring slabs that became empty. */
#include "common/error.h"
#include "tiny/span.h"
#include "tiny/span_list.h"
#include "tiny/tiny.h"

/* Returns the block start for p, or NULL (after reporting) if p is not a live block of s. Frees into a span
 * that gave out aligned (interior) pointers round down to their block. */
static hak_block_t *span_block_of(hak_span_t *s, const void *p, bool report) {
    size_t bs = hak_load_relaxed(&s->block_size);
    uintptr_t off = hak_span_offset(s, p);
    if (bs == 0 || off >= (size_t)hak_load_relaxed(&s->capacity) * bs) {
        if (report)
            hak_report_invalid("free of a pointer hakmem did not allocate (or already freed)", p);
        return NULL;
    }
    size_t into = off - (size_t)hak_span_block_index(s, off) * bs;
    if (into != 0 && !(hak_load_relaxed(&s->flags) & HAK_SPAN_HAS_ALIGNED)) {
        if (report)
            hak_report_invalid("free of an interior pointer", p);
        return NULL;
    }
    return (hak_block_t *)((const uint8_t *)p - into);
}

void hak_tiny_free_settle(hak_theap_t *th, hak_superslab_t *ss, hak_span_t *s) {
    if (s->flags & HAK_SPAN_FULL)
        hak_span_unfull(th, s);
    if (s->used == 0 && th->direct[s->cls] != s)
        hak_theap_span_free(th, ss, s);
}

void hak_tiny_free_owner(hak_theap_t *th, hak_superslab_t *ss, hak_span_t *s, hak_block_t *b) {
    if (b == s->local_free || b == s->free || b == th->tc_head[s->cls]) {
        hak_report_invalid("double free", b);
        return;
    }
    if (hak_tcache_push(th, s->cls, b))
        return;
    /* A full cache (a burst of frees): straight to the span, in line, since bursts send every free here;
     * returning cached blocks instead would touch each cold block and descriptor a second time. */
    hak_span_push_local(th, ss, s, b, b, 1);
}

void hak_tiny_free_slow(hak_superslab_t *ss, hak_span_t *s, void *p) {
    hak_block_t *b = span_block_of(s, p, true);
    if (b == NULL)
        return;
    if (__atomic_load_n(&ss->owner_tid, __ATOMIC_RELAXED) == hak_thread_id()) {
        hak_tiny_free_owner(ss->owner, ss, s, b);
        return;
    }
    /* Another thread's slab (or an abandoned one): one CAS. The first block of a batch also flags the
     * span in the SuperSlab so the owner finds it without scanning every slab. SuperSlabs are never
     * unmapped, so touching the header after the push is safe even if the owner frees the span meanwhile. */
    __atomic_fetch_add(&s->remote_pending, 1, __ATOMIC_RELAXED); /* before the push: never below zero */
    hak_block_t *old = __atomic_load_n(&s->thread_free, __ATOMIC_RELAXED);
    do {
        b->next = old;
    } while (
        !__atomic_compare_exchange_n(&s->thread_free, &old, b, true, __ATOMIC_RELEASE, __ATOMIC_RELAXED));
    if (old == NULL)
        __atomic_fetch_or(&ss->remote_mask, 1u << hak_span_index(ss, s), __ATOMIC_RELEASE);
}

size_t hak_tiny_usable_size(hak_superslab_t *ss, const void *p) {
    hak_span_t *s = hak_span_of(ss, p);
    hak_block_t *b = span_block_of(s, p, false);
    if (b == NULL)
        return 0;
    return hak_load_relaxed(&s->block_size) - (size_t)((const uint8_t *)p - (const uint8_t *)b);
}
