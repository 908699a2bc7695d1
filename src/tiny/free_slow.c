/* SPDX-License-Identifier: MIT */
/* Free slow path for slab classes: validation and error reports, aligned (interior) pointers, frees into
 * full slabs, frees from other threads, and retiring slabs that became empty. */
#include <string.h>

#include "common/error.h"
#include "common/track.h"
#include "tiny/span.h"
#include "tiny/span_list.h"
#include "tiny/tiny.h"

void hak_block_report_corrupt(const hak_block_t *b, const char *list) {
    char what[160] = "corrupted free block in the ";
    size_t n = strlen(what);
    for (size_t i = 0; list[i] != '\0' && n + 1 < sizeof what - 40; i++)
        what[n++] = list[i];
    memcpy(what + n, " (written after free, or overflowed into)", 42);
    hak_report_invalid(what, b);
}

/* An aligned pointer q handed out inside its block carries a keyed tag in the 8 bytes below it (inside the
 * block's padding), so that a free of q can be told from a free of any other interior pointer. */
static uintptr_t aligned_tag(const void *q) { return hak_secret_mix(hak_secret.check, (uintptr_t)q, 0xa11); }

void hak_tiny_note_aligned(hak_span_t *s, uint8_t *q) {
    if (!(s->flags & HAK_SPAN_HAS_ALIGNED)) /* the caller owns the span: it served its thread heap */
        hak_store_relaxed(&s->flags, (uint8_t)(s->flags | HAK_SPAN_HAS_ALIGNED));
    if (HAKMEM_CHECKS) {
        hak_track_open(q - sizeof(uintptr_t), sizeof(uintptr_t)); /* in the block's padding: no-access */
        memcpy(q - sizeof(uintptr_t), &(uintptr_t){aligned_tag(q)}, sizeof(uintptr_t));
        hak_track_close(q - sizeof(uintptr_t), sizeof(uintptr_t));
    }
}

static bool is_aligned_pointer(const uint8_t *p) {
    if (!HAKMEM_CHECKS)
        return true;
    uintptr_t tag;
    hak_track_saved_t saved; /* a bogus interior pointer: the bytes below it may be a live block's */
    hak_track_save(p - sizeof tag, sizeof tag, &saved);
    hak_track_open(p - sizeof tag, sizeof tag);
    memcpy(&tag, p - sizeof tag, sizeof tag);
    hak_track_restore(p - sizeof tag, sizeof tag, &saved);
    return tag == aligned_tag(p);
}

/* Returns the block start for p, or NULL (after reporting) if p is not a live block of s. Frees into a span
 * that gave out aligned (interior) pointers round down to their block when p carries the aligned tag. */
static hak_block_t *span_block_of(hak_span_t *s, const void *p, bool report) {
    size_t bs = hak_load_relaxed(&s->block_size);
    uintptr_t off = hak_span_offset(s, p);
    if (bs == 0 || off >= (size_t)hak_load_relaxed(&s->capacity) * bs) {
        if (report)
            hak_report_invalid("free of a pointer hakmem did not allocate (or already freed)", p);
        return NULL;
    }
    size_t into = off - (size_t)hak_span_block_index(s, off) * bs;
    if (into != 0 && (!(hak_load_relaxed(&s->flags) & HAK_SPAN_HAS_ALIGNED) || !is_aligned_pointer(p))) {
        if (report)
            hak_report_invalid("free of an interior pointer (or of an aligned block already freed)", p);
        return NULL;
    }
    return (hak_block_t *)((const uint8_t *)p - into);
}

void hak_tiny_free_settle(hak_theap_t *th, hak_superslab_t *ss, hak_span_t *s) {
    if (s->flags & HAK_SPAN_FULL)
        hak_span_unfull(th, s);
    if (s->used == 0 && th->direct[s->cls] != s)
        hak_theap_span_free(th, ss, s);
    hak_theap_flush_if_requested(th); /* last: the flush may free spans, s among them */
}

/* b is a free block already: a double free (reported). */
static bool double_free(const hak_theap_t *th, const hak_span_t *s, const hak_block_t *b) {
    bool looks_free =
        HAKMEM_CHECKS ? hak_block_is_free(b) : b == s->local_free || b == s->free || b == th->tc_head[s->cls];
    if (looks_free)
        hak_report_invalid("double free", b);
    return looks_free;
}

void hak_tiny_free_owner(hak_theap_t *th, hak_superslab_t *ss, hak_span_t *s, hak_block_t *b) {
    hak_tiny_count(&th->counts.free_slow, 1);
    if (double_free(th, s, b))
        return;
    hak_theap_flush_if_requested(th);
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
    if ((void *)b != p && HAKMEM_CHECKS) {
        hak_track_open((uint8_t *)p - sizeof(uintptr_t), sizeof(uintptr_t));
        memset((uint8_t *)p - sizeof(uintptr_t), 0, sizeof(uintptr_t)); /* the aligned tag is used up */
        hak_track_close((uint8_t *)p - sizeof(uintptr_t), sizeof(uintptr_t));
    }
    if (hak_ss_is_mine(ss)) {
        hak_tiny_free_owner(ss->owner, ss, s, b);
        return;
    }
    if (HAKMEM_CHECKS && hak_block_is_free(b)) { /* on any list, the owner's cache included */
        hak_report_invalid("double free", b);
        return;
    }
    /* Another thread's slab (or an abandoned one): one CAS. The first block of a batch also flags the
     * span in the SuperSlab so the owner finds it without scanning every slab. A SuperSlab's header (span
     * descriptors, mask) is never unmapped, only its body when it sits cold in the cache, so touching the
     * header after the push is safe even if the owner frees the span meanwhile. */
    __atomic_fetch_add(&s->remote_pending, 1, __ATOMIC_RELAXED); /* before the push: never below zero */
    hak_block_t *old = __atomic_load_n(&s->thread_free, __ATOMIC_RELAXED);
    do {
        hak_block_set_next(b, old);
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
    hak_track_saved_t saved; /* b is live, or a free block: its first bytes go back as they were */
    hak_track_save(b, sizeof *b, &saved);
    bool is_free = hak_block_is_free(b);
    hak_track_restore(b, sizeof *b, &saved);
    if (is_free)
        return 0;
    return hak_load_relaxed(&s->block_size) - (size_t)((const uint8_t *)p - (const uint8_t *)b);
}
