/* SPDX-License-Identifier: MIT */
/* hak_heap_visit: calls back with every live block of a heap.
 *
 * A slab block is live if it was carved and is on none of the lists that hold free blocks: its span's free,
 * local_free and thread_free lists, and its owner's thread cache. For each SuperSlab of the heap, under the
 * arena lock, the blocks on those lists are marked in a bitmap (one bit per 16 bytes of the SuperSlab: every
 * block starts on a 16-byte boundary) and the carved range of each span is noted; the lock is dropped and the
 * visitor called for every unmarked block. Large blocks are copied out of their set under its lock, then
 * visited. So no lock is held while the visitor runs, and it may call hakmem (see hakmem.h).
 *
 * The span lists and the thread caches belong to their owner threads: the visit reads them, so the heap's
 * other threads must not use it meanwhile (frees by other threads push onto thread_free with a CAS, which the
 * visit reads safely, but the block may or may not be visited). SuperSlab headers are never unmapped, so a
 * stale entry of the snapshot only needs its arena checked (under the arena lock) before its spans are read:
 * a SuperSlab of the visited heap is not cached, so its body is mapped. */
#include <errno.h>
#include <string.h>

#include "common/meta.h"
#include "heap/heap.h"
#include "tiny/span.h"
#include "tiny/tcache.h"

#define GRAIN 16 /* HAK_MIN_ALIGN: every block starts on a multiple of it within its SuperSlab */
#define BITMAP_WORDS (HAK_SS_SIZE / GRAIN / 64)

typedef struct visit_s {
    hak_block_visitor_t visitor;
    void *arg;
    uint64_t *bits; /* one SuperSlab's free blocks */
} visit_t;

static void mark(uint64_t *bits, const hak_superslab_t *ss, const hak_block_t *b) {
    uintptr_t g = ((uintptr_t)b - (uintptr_t)ss) / GRAIN;
    bits[g / 64] |= (uint64_t)1 << (g % 64);
}

static bool marked(const uint64_t *bits, const hak_superslab_t *ss, const uint8_t *b) {
    uintptr_t g = ((uintptr_t)b - (uintptr_t)ss) / GRAIN;
    return (bits[g / 64] >> (g % 64)) & 1;
}

/* Marks the blocks of a free list that lie in [lo, hi) (a list never holds more than `max` blocks: a longer
 * one is corrupted, and the walk stops there, as it does at a block whose check fails). */
static void mark_list(uint64_t *bits, const hak_superslab_t *ss, const hak_block_t *b, const uint8_t *lo,
                      const uint8_t *hi, uint32_t max, const char *what) {
    for (uint32_t n = 0; b != NULL && n < max; b = hak_block_peek_next(b, what), n++)
        if ((const uint8_t *)b >= lo && (const uint8_t *)b < hi)
            mark(bits, ss, b);
}

typedef struct span_range_s {
    uint8_t *start;
    uint32_t block_size, capacity;
} span_range_t;

/* Under the arena lock: marks ss's free blocks and notes its spans' carved ranges; the number of spans. */
static unsigned gather(visit_t *v, hak_superslab_t *ss, span_range_t ranges[HAK_SLABS_PER_SS]) {
    memset(v->bits, 0, BITMAP_WORDS * sizeof(uint64_t));
    unsigned n = 0, i = 0;
    for (hak_span_t *s; (s = hak_ss_next_span(ss, &i)) != NULL;) {
        uint32_t bs = hak_load_relaxed(&s->block_size), cap = hak_load_relaxed(&s->capacity);
        uint8_t *lo = hak_load_relaxed(&s->start), *hi = lo + (size_t)cap * bs;
        mark_list(v->bits, ss, s->free, lo, hi, cap, "span free list");
        mark_list(v->bits, ss, s->local_free, lo, hi, cap, "span local free list");
        mark_list(v->bits, ss, __atomic_load_n(&s->thread_free, __ATOMIC_ACQUIRE), lo, hi, cap,
                  "remote free list");
        ranges[n++] = (span_range_t){lo, bs, cap};
    }
    hak_theap_t *owner = ss->owner; /* NULL for an abandoned SuperSlab: it has no cache */
    if (owner != NULL)
        for (unsigned cls = 0; cls < HAK_CLASS_COUNT; cls++)
            mark_list(v->bits, ss, owner->tc_head[cls], (uint8_t *)ss, (uint8_t *)ss + HAK_SS_SIZE,
                      hak_tcache_max[cls], "thread cache");
    return n;
}

static int visit_superslab(visit_t *v, hak_tiny_arena_t *arena, hak_superslab_t *ss) {
    span_range_t ranges[HAK_SLABS_PER_SS];
    hak_lock(&arena->lock);
    if (__atomic_load_n(&ss->arena, __ATOMIC_RELAXED) != arena) { /* released since the snapshot */
        hak_unlock(&arena->lock);
        return 0;
    }
    unsigned n = gather(v, ss, ranges);
    hak_unlock(&arena->lock);
    for (unsigned k = 0; k < n; k++) {
        uint8_t *b = ranges[k].start;
        for (uint32_t j = 0; j < ranges[k].capacity; j++, b += ranges[k].block_size)
            if (!marked(v->bits, ss, b)) {
                int rc = v->visitor(b, ranges[k].block_size, v->arg);
                if (rc != 0)
                    return rc;
            }
    }
    return 0;
}

/* The arena's SuperSlabs (its thread heaps' and the abandoned ones), copied under the lock; NULL with *count
 * 0 when it has none, NULL with *count != 0 when out of memory. */
static hak_superslab_t **snapshot_superslabs(hak_tiny_arena_t *arena, size_t *count) {
    hak_lock(&arena->lock);
    size_t n = 0;
    for (hak_list_node_t *t = arena->theaps.first; t != NULL; t = t->next)
        for (hak_list_node_t *l = hak_list_entry(t, hak_theap_t, link)->superslabs.first; l != NULL;
             l = l->next)
            n++;
    for (hak_list_node_t *l = arena->abandoned.first; l != NULL; l = l->next)
        n++;
    hak_superslab_t **list = n != 0 ? hak_meta_alloc(n * sizeof *list) : NULL; /* arena -> metadata lock */
    if (list != NULL) {
        size_t k = 0;
        for (hak_list_node_t *t = arena->theaps.first; t != NULL; t = t->next)
            for (hak_list_node_t *l = hak_list_entry(t, hak_theap_t, link)->superslabs.first; l != NULL;
                 l = l->next)
                list[k++] = hak_ss_of_link(l);
        for (hak_list_node_t *l = arena->abandoned.first; l != NULL; l = l->next)
            list[k++] = hak_ss_of_link(l);
    }
    hak_unlock(&arena->lock);
    *count = n;
    return list;
}

static int visit_slabs(visit_t *v, hak_tiny_arena_t *arena) {
    size_t n;
    hak_superslab_t **list = snapshot_superslabs(arena, &n);
    if (n == 0)
        return 0;
    int rc = -1;
    v->bits = hak_meta_alloc(BITMAP_WORDS * sizeof(uint64_t));
    if (list != NULL && v->bits != NULL) {
        rc = 0;
        for (size_t k = 0; k < n && rc == 0; k++)
            rc = visit_superslab(v, arena, list[k]);
    } else {
        errno = ENOMEM;
    }
    hak_meta_free(v->bits, BITMAP_WORDS * sizeof(uint64_t));
    hak_meta_free(list, n * sizeof *list);
    return rc;
}

typedef struct large_entry_s {
    void *block;
    size_t usable;
} large_entry_t;

static int visit_large(visit_t *v, hak_large_set_t *set) {
    hak_lock(&set->lock);
    size_t n = 0;
    for (hak_list_node_t *l = set->blocks.first; l != NULL; l = l->next)
        n++;
    large_entry_t *list = n != 0 ? hak_meta_alloc(n * sizeof *list) : NULL; /* set -> metadata lock */
    if (list != NULL) {
        size_t k = 0;
        for (hak_list_node_t *l = set->blocks.first; l != NULL; l = l->next) {
            hak_large_t *h = hak_list_entry(l, hak_large_t, link);
            list[k++] = (large_entry_t){h->block, h->usable};
        }
    }
    hak_unlock(&set->lock);
    if (n != 0 && list == NULL) {
        errno = ENOMEM;
        return -1;
    }
    int rc = 0;
    for (size_t k = 0; k < n && rc == 0; k++)
        rc = v->visitor(list[k].block, list[k].usable, v->arg);
    hak_meta_free(list, n * sizeof *list);
    return rc;
}

int hak_heap_visit(hak_heap_t *heap, hak_block_visitor_t visitor, void *arg) {
    hak_init();
    if (heap == NULL) {
        heap = &hak_heap_main;
    } else if (!hak_heap_handle_ok(heap)) {
        hak_heap_report_bad("hak_heap_visit of a destroyed or invalid heap", heap);
        errno = EINVAL;
        return -1;
    }
    if (visitor == NULL) {
        errno = EINVAL;
        return -1;
    }
    visit_t v = {visitor, arg, NULL};
    int rc = visit_slabs(&v, &heap->slabs);
    return rc != 0 ? rc : visit_large(&v, &heap->large);
}
