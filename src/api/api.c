/* SPDX-License-Identifier: MIT */
/* The public allocation API: routes each call by size (slab classes or large blocks) and by the region map
 * for pointers. Bad input fails with errno, misuse of pointers is reported. */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "bigcache/bigcache.h"
#include "bigcache/large.h"
#include "common/error.h"
#include "common/track.h"
#include "heap/heap.h"
#include "os/os.h"
#include "superslab/superslab.h"
#include "tiny/tiny.h"

static hak_noinline void *alloc_large(hak_heap_t *heap, size_t size, size_t align, bool zero) {
    if (size > (size_t)PTRDIFF_MAX) {
        errno = ENOMEM;
        return NULL;
    }
    hak_init();
    return hak_large_alloc(&heap->large, size, align, zero);
}

static inline void *heap_alloc(hak_heap_t *heap, size_t size) {
    hak_theap_t *th = hak_theap_get(heap);
    if (hak_unlikely(th == NULL)) {
        errno = ENOMEM;
        return NULL;
    }
    if (hak_likely(size <= HAK_SLAB_MAX_SIZE))
        return hak_tiny_alloc(th, size);
    return alloc_large(heap, size, 0, false);
}

void *hak_alloc(size_t size) {
    if (hak_likely(size <= HAK_SLAB_MAX_SIZE))
        return hak_track_alloc(hak_tiny_alloc(hak_tls_theap, size), size, false);
    return hak_track_alloc(alloc_large(&hak_heap_main, size, 0, false), size, false);
}

/* The heap a hak_heap_* call works on: NULL is the default heap; a destroyed or bogus handle is reported (the
 * call then fails with EINVAL) and never used. */
static inline hak_heap_t *heap_arg(hak_heap_t *heap, const char *what) {
    if (heap == NULL)
        return &hak_heap_main;
    if (hak_likely(hak_heap_handle_ok(heap)))
        return heap;
    hak_heap_report_bad(what, heap);
    errno = EINVAL;
    return NULL;
}

void *hak_heap_alloc(hak_heap_t *heap, size_t size) {
    heap = heap_arg(heap, "hak_heap_alloc from a destroyed or invalid heap");
    return heap != NULL ? hak_track_alloc(heap_alloc(heap, size), size, false) : NULL;
}

/* What a pointer outside the SuperSlabs is: a large block, or something hakmem reports (never frees). */
static hak_cold void free_not_slab(void *p, unsigned kind) {
    if (p == NULL)
        return;
    switch (kind) {
    case HAK_REGION_LARGE:
    case HAK_REGION_LARGE_FAR: {
        hak_large_t *h = hak_large_header_of(p, kind); /* a corrupted header is reported there */
        if (h == NULL)
            return;
        if (h->block != (uint8_t *)p) {
            hak_report_invalid("free of an interior pointer of a large block", p);
            return;
        }
        hak_large_free(h);
        return;
    }
    case HAK_REGION_CACHED:
        hak_report_invalid("free of a large block that is already free", p);
        return;
    case HAK_REGION_LARGE_INNER:
        hak_report_invalid("free of a pointer inside a large block (interior, or freed already)", p);
        return;
    default:
        hak_report_invalid("free of a pointer hakmem does not own", p);
        return;
    }
}

#if HAK_TRACK
static size_t usable_size_quiet(const void *p, unsigned kind);

/* Memory tracking (common/track.h): p, in hakmem's memory, is about to be freed (a large block's mapping is
 * marked by bigcache/large.c). Memory that is not hakmem's is none of the tracker's business here. */
static void track_free(void *p, unsigned kind) {
    if (kind == HAK_REGION_NONE)
        return;
    hak_track_free(p, HAK_TRACK_ASAN && kind == HAK_REGION_SUPERSLAB ? usable_size_quiet(p, kind) : 0);
}
#else
#define track_free(p, kind) ((void)0)
#endif

void hak_free(void *p) {
    unsigned kind = hak_region_kind(p);
    track_free(p, kind);
    if (hak_likely(kind == HAK_REGION_SUPERSLAB)) {
        hak_tiny_free(hak_ss_of(p), p);
        return;
    }
    free_not_slab(p, kind);
}

/* Usable size without reporting; 0 if p is not a live block. */
static size_t usable_size_quiet(const void *p, unsigned kind) {
    if (kind == HAK_REGION_SUPERSLAB)
        return hak_tiny_usable_size(hak_ss_of(p), p);
    if (kind == HAK_REGION_LARGE || kind == HAK_REGION_LARGE_FAR) {
        hak_large_t *h = hak_large_of(p, kind);
        return h ? (size_t)(h->block + h->usable - (const uint8_t *)p) : 0;
    }
    return 0;
}

size_t hak_usable_size(const void *p) {
    if (p == NULL)
        return 0;
    size_t n = usable_size_quiet(p, hak_region_kind(p));
    if (n == 0)
        hak_report_invalid(
            "usable size of a pointer that is not a live hakmem block (freed, interior or foreign)", p);
    if (n != 0) /* with tracking: the caller may use all n bytes from now on, the block grows to them */
        (void)hak_track_resize((void *)p, hak_track_size(p, n), n);
    return n;
}

hak_heap_t *hak_heap_of(const void *p) {
    unsigned kind = hak_region_kind(p);
    if (p == NULL || usable_size_quiet(p, kind) == 0)
        return NULL;
    if (kind == HAK_REGION_SUPERSLAB)
        return hak_heap_of_arena(__atomic_load_n(&hak_ss_of(p)->arena, __ATOMIC_RELAXED));
    return hak_heap_of_large_set(hak_large_of(p, kind)->set);
}

static void *calloc_in(hak_heap_t *heap, size_t count, size_t size) {
    size_t total;
    if (__builtin_mul_overflow(count, size, &total) || total > (size_t)PTRDIFF_MAX) {
        errno = ENOMEM;
        return NULL;
    }
    if (total > HAK_SLAB_MAX_SIZE)
        return hak_track_alloc(alloc_large(heap, total, 0, true), total, true);
    void *p = hak_track_alloc(heap_alloc(heap, total), total, false);
    if (p != NULL)
        memset(p, 0, total);
    return p;
}

void *hak_calloc(size_t count, size_t size) { return calloc_in(&hak_heap_main, count, size); }
void *hak_heap_calloc(hak_heap_t *heap, size_t count, size_t size) {
    heap = heap_arg(heap, "hak_heap_calloc from a destroyed or invalid heap");
    return heap != NULL ? calloc_in(heap, count, size) : NULL;
}

/* Aligned allocation. Up to HAK_NATURAL_ALIGN_MAX a class that is a multiple of the alignment gives aligned
 * blocks; larger alignments over-allocate and return an aligned pointer inside the block, flagging the slab
 * so frees round down to the block start; the largest go to large blocks. */
/* Zeroed when `zero` (fresh large mappings already are: only reused ones are cleared). */
static void *aligned_in(hak_heap_t *heap, size_t align, size_t size, bool zero) {
    if (!hak_is_pow2(align)) {
        errno = EINVAL;
        return NULL;
    }
    if (size > (size_t)PTRDIFF_MAX) {
        errno = ENOMEM;
        return NULL;
    }
    if (align <= HAK_MIN_ALIGN) { /* (not calloc_in: the caller tracks the block, once) */
        if (zero && size > HAK_SLAB_MAX_SIZE)
            return alloc_large(heap, size, 0, true);
        void *p = heap_alloc(heap, size);
        if (p != NULL && zero) {
            hak_track_open(p, size);
            memset(p, 0, size);
        }
        return p;
    }
    size_t n = size != 0 ? size : 1; /* the aligned pointer must lie inside the block, not at its end */
    if (align <= HAK_NATURAL_ALIGN_MAX && n <= HAK_SLAB_MAX_SIZE) {
        /* Spans start on HAK_NATURAL_ALIGN_MAX boundaries, so every block of a class that is a multiple of
         * the alignment is aligned: take the smallest such class. */
        unsigned cls = hak_size_class(n > align ? n : align);
        while (cls < HAK_CLASS_COUNT && hak_class_size(cls) % align != 0)
            cls++;
        if (cls < HAK_CLASS_COUNT) {
            void *p = heap_alloc(heap, hak_class_size(cls));
            if (p != NULL && zero) {
                hak_track_open(
                    p, n); /* before the caller's hak_track_alloc: these bytes are not handed out yet */
                memset(p, 0, n);
            }
            return p;
        }
    }
    if (align <= HAK_SLAB_MAX_SIZE && n + align - HAK_MIN_ALIGN <= HAK_SLAB_MAX_SIZE) {
        uint8_t *p = heap_alloc(heap, n + align - HAK_MIN_ALIGN);
        if (p == NULL)
            return NULL;
        uint8_t *q = (uint8_t *)(((uintptr_t)p + align - 1) & ~(uintptr_t)(align - 1));
        if (q != p)
            hak_tiny_note_aligned(hak_span_of(hak_ss_of(p), p), q);
        if (zero) {
            hak_track_open(q, n);
            memset(q, 0, n);
        }
        return q;
    }
    return alloc_large(heap, n, align, zero);
}

/* (A zero-byte aligned block is tracked as the one byte aligned_in makes it.) */
void *hak_aligned_alloc(size_t alignment, size_t size) {
    return hak_track_alloc(aligned_in(&hak_heap_main, alignment, size, false), size + (size == 0), false);
}
void *hak_heap_aligned_alloc(hak_heap_t *heap, size_t alignment, size_t size) {
    heap = heap_arg(heap, "hak_heap_aligned_alloc from a destroyed or invalid heap");
    return heap != NULL ? hak_track_alloc(aligned_in(heap, alignment, size, false), size + (size == 0), false)
                        : NULL;
}

static void *aligned_calloc_in(hak_heap_t *heap, size_t align, size_t count, size_t size) {
    size_t total;
    if (__builtin_mul_overflow(count, size, &total)) {
        errno = ENOMEM;
        return NULL;
    }
    return hak_track_alloc(aligned_in(heap, align, total, true), total + (total == 0), true);
}

void *hak_aligned_calloc(size_t alignment, size_t count, size_t size) {
    return aligned_calloc_in(&hak_heap_main, alignment, count, size);
}
void *hak_heap_aligned_calloc(hak_heap_t *heap, size_t alignment, size_t count, size_t size) {
    heap = heap_arg(heap, "hak_heap_aligned_calloc from a destroyed or invalid heap");
    return heap != NULL ? aligned_calloc_in(heap, alignment, count, size) : NULL;
}

/* A new block of the heap for a realloc to `align` (16 or less: an ordinary block), tracked. */
static void *realloc_new_block(hak_heap_t *heap, size_t align, size_t size) {
    if (align <= HAK_MIN_ALIGN)
        return hak_track_alloc(heap_alloc(heap, size), size, false);
    /* (a zero-byte aligned block is tracked as the one byte aligned_in makes it) */
    return hak_track_alloc(aligned_in(heap, align, size, false), size + (size == 0), false);
}

/* Realloc, to an alignment (16 or less for plain realloc). The block keeps its heap; a size that still fits
 * (and is not far below) keeps the block itself if it has the alignment; a large block grows or shrinks in
 * its mapping (or moves its pages, which keeps its offset in a 2 MiB-aligned mapping, so its alignment). */
static void *realloc_aligned_in(hak_heap_t *heap, void *p, size_t align, size_t size) {
    if (p == NULL)
        return realloc_new_block(heap, align, size);
    if (size > (size_t)PTRDIFF_MAX) {
        errno = ENOMEM;
        return NULL;
    }
    unsigned kind = hak_region_kind(p);
    size_t usable = usable_size_quiet(p, kind);
    if (usable == 0) {
        hak_report_invalid(
            align <= HAK_MIN_ALIGN
                ? "realloc of a pointer that is not a live hakmem block (freed, interior or foreign)"
                : "aligned realloc of a pointer that is not a live hakmem block (freed, interior or "
                  "foreign)",
            p);
        errno = EINVAL;
        return NULL;
    }
    size_t old = hak_track_size(p, usable); /* the bytes to keep: with tracking, the requested size */
    bool aligned = ((uintptr_t)p & (align - 1)) == 0;
    if (aligned && size <= usable && (size >= usable / 2 || usable <= 2 * HAK_MIN_ALIGN))
        return hak_track_resize(p, old, size);
    if (kind == HAK_REGION_SUPERSLAB) {
        heap = hak_heap_of_arena(__atomic_load_n(&hak_ss_of(p)->arena, __ATOMIC_RELAXED));
    } else {
        hak_large_t *h = hak_large_of(p, kind);
        heap = hak_heap_of_large_set(h->set);
        if (aligned && size > HAK_SLAB_MAX_SIZE) {
            void *q = hak_large_realloc(h, size);
            if (q != NULL)
                return q;
        }
    }
    void *q = realloc_new_block(heap, align, size);
    if (q == NULL)
        return NULL;
    memcpy(q, p, size < old ? size : old);
    hak_free(p);
    return q;
}

static void *realloc_in(hak_heap_t *heap, void *p, size_t size) {
    return realloc_aligned_in(heap, p, HAK_MIN_ALIGN, size);
}

void *hak_realloc(void *p, size_t size) { return realloc_in(&hak_heap_main, p, size); }
void *hak_heap_realloc(hak_heap_t *heap, void *p, size_t size) {
    heap = heap_arg(heap, "hak_heap_realloc with a destroyed or invalid heap");
    return heap != NULL ? realloc_in(heap, p, size) : NULL;
}

static void *aligned_realloc_in(hak_heap_t *heap, void *p, size_t align, size_t size) {
    if (!hak_is_pow2(align)) {
        errno = EINVAL;
        return NULL;
    }
    return realloc_aligned_in(heap, p, align, size);
}

void *hak_aligned_realloc(void *p, size_t alignment, size_t size) {
    return aligned_realloc_in(&hak_heap_main, p, alignment, size);
}
void *hak_heap_aligned_realloc(hak_heap_t *heap, void *p, size_t alignment, size_t size) {
    heap = heap_arg(heap, "hak_heap_aligned_realloc with a destroyed or invalid heap");
    return heap != NULL ? aligned_realloc_in(heap, p, alignment, size) : NULL;
}

/* Zeroing realloc: the bytes past the old block's usable size are zero, up to the new one's (all of it for a
 * new block). A block that stays in place and does not grow has no new bytes; one that grows gets them
 * cleared here (for a large block that touches its new pages, which a first write would fault in anyway). */
static void *rezalloc_in(hak_heap_t *heap, void *p, size_t size) {
    if (p == NULL) { /* all of the new block: calloc clears the request (and not fresh large mappings) */
        uint8_t *q = calloc_in(heap, 1, size);
        if (q != NULL && size <= HAK_SLAB_MAX_SIZE) {
            size_t usable = usable_size_quiet(q, HAK_REGION_SUPERSLAB);
            q = hak_track_resize(q, size, usable); /* with tracking: all of it is the caller's now */
            memset(q + size, 0, usable - size);
        }
        return q;
    }
    size_t old = usable_size_quiet(p, hak_region_kind(p)); /* 0: realloc_in reports it */
    uint8_t *q = realloc_in(heap, p, size);
    if (q == NULL)
        return NULL;
    size_t now = usable_size_quiet(q, hak_region_kind(q));
    if (now > old) {
        q = hak_track_resize(q, hak_track_size(q, now),
                             now); /* with tracking: the new bytes are the caller's */
        memset(q + old, 0, now - old);
    }
    return q;
}

void *hak_rezalloc(void *p, size_t size) { return rezalloc_in(&hak_heap_main, p, size); }
void *hak_heap_rezalloc(hak_heap_t *heap, void *p, size_t size) {
    heap = heap_arg(heap, "hak_heap_rezalloc with a destroyed or invalid heap");
    return heap != NULL ? rezalloc_in(heap, p, size) : NULL;
}

/* ---- strings ---- */

/* A copy of the first len bytes of s, then a NUL. */
static char *dup_in(hak_heap_t *heap, const char *s, size_t len) {
    char *d = hak_track_alloc(heap_alloc(heap, len + 1), len + 1, false);
    if (d != NULL) {
        memcpy(d, s, len);
        d[len] = '\0';
    }
    return d;
}

static char *strdup_in(hak_heap_t *heap, const char *s) {
    if (s == NULL) {
        errno = EINVAL;
        return NULL;
    }
    return dup_in(heap, s, strlen(s));
}

static char *strndup_in(hak_heap_t *heap, const char *s, size_t n) {
    if (s == NULL) {
        errno = EINVAL;
        return NULL;
    }
    return dup_in(heap, s, strnlen(s, n));
}

char *hak_strdup(const char *s) { return strdup_in(&hak_heap_main, s); }
char *hak_strndup(const char *s, size_t n) { return strndup_in(&hak_heap_main, s, n); }
char *hak_heap_strdup(hak_heap_t *heap, const char *s) {
    heap = heap_arg(heap, "hak_heap_strdup from a destroyed or invalid heap");
    return heap != NULL ? strdup_in(heap, s) : NULL;
}
char *hak_heap_strndup(hak_heap_t *heap, const char *s, size_t n) {
    heap = heap_arg(heap, "hak_heap_strndup from a destroyed or invalid heap");
    return heap != NULL ? strndup_in(heap, s, n) : NULL;
}

int hak_heap_contains(hak_heap_t *heap, const void *p) {
    heap = heap_arg(heap, "hak_heap_contains with a destroyed or invalid heap");
    return heap != NULL && p != NULL && hak_heap_of(p) == heap;
}

/* For each live heap (the registry is locked, so none is destroyed meanwhile): the calling thread's empty
 * spans, and the abandoned SuperSlabs of exited threads. */
static void collect_heap(hak_heap_t *heap, void *arg) {
    (void)arg;
    hak_theap_t *th = hak_theap_find(heap);
    if (th != NULL)
        hak_theap_release_empty(th);
    hak_tiny_arena_settle_abandoned(&heap->slabs);
}

void hak_collect(int force) {
    hak_init();
    hak_heap_foreach(collect_heap, NULL);
    hak_ss_cache_collect(force != 0);
    hak_bigcache_collect(force != 0);
}
