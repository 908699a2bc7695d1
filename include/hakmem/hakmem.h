/* SPDX-License-Identifier: MIT */
/* hakmem: a general-purpose memory allocator with first-class private heaps. The reference manual of every
 * function, the options and the statistics is docs/API.md (and the man page hakmem(3)).
 *
 * Every function is thread-safe. Blocks are at least 16-byte aligned. Failed calls return NULL and set errno
 * (ENOMEM for sizes that overflow or when memory or a heap's limit is exhausted, EINVAL for an alignment that
 * is not a power of two); nothing already allocated is harmed by a failed call. */
#ifndef HAKMEM_HAKMEM_H
#define HAKMEM_HAKMEM_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define HAK_API __attribute__((visibility("default")))
/* `malloc` only: the result aliases nothing. Not warn_unused_result, which a (void) cast cannot silence. */
#define HAK_MALLOC_ATTR __attribute__((malloc))
#else
#define HAK_API
#define HAK_MALLOC_ATTR
#endif

#define HAKMEM_VERSION_MAJOR 0
#define HAKMEM_VERSION_MINOR 1
#define HAKMEM_VERSION_PATCH 0
#define HAKMEM_VERSION_NUMBER                                                                                \
    (HAKMEM_VERSION_MAJOR * 10000 + HAKMEM_VERSION_MINOR * 100 + HAKMEM_VERSION_PATCH)

/* ---- default heap ---- */
HAK_API HAK_MALLOC_ATTR void *hak_alloc(size_t size);
HAK_API HAK_MALLOC_ATTR void *hak_calloc(size_t count, size_t size);
HAK_API void *hak_realloc(void *p, size_t size);
HAK_API HAK_MALLOC_ATTR void *hak_aligned_alloc(size_t alignment, size_t size);
HAK_API void hak_free(void *p);                /* any block, any heap, any thread; NULL is a no-op */
HAK_API size_t hak_usable_size(const void *p); /* >= requested size; 0 for NULL */
HAK_API HAK_MALLOC_ATTR char *hak_strdup(const char *s);
HAK_API HAK_MALLOC_ATTR char *hak_strndup(const char *s, size_t n); /* at most n bytes of s, then a NUL */
HAK_API HAK_MALLOC_ATTR void *hak_aligned_calloc(size_t alignment, size_t count, size_t size);
HAK_API void *hak_aligned_realloc(void *p, size_t alignment, size_t size); /* the result has the alignment */
HAK_API void *hak_rezalloc(void *p, size_t size); /* realloc; bytes past the old usable size are zero */

/* ---- private heaps ---- */
typedef struct hak_heap_s hak_heap_t;
typedef struct hak_heap_options_s {
    size_t limit_bytes; /* 0 = unlimited; memory the heap may hold from the OS */
    const char *name;   /* shown in stats; copied */
} hak_heap_options_t;

HAK_API hak_heap_t *hak_heap_create(const hak_heap_options_t *opts); /* opts may be NULL */
HAK_API void hak_heap_destroy(hak_heap_t *heap); /* frees every block of the heap at once */
HAK_API hak_heap_t *hak_heap_default(void);
HAK_API HAK_MALLOC_ATTR void *hak_heap_alloc(hak_heap_t *heap, size_t size);
HAK_API HAK_MALLOC_ATTR void *hak_heap_calloc(hak_heap_t *heap, size_t count, size_t size);
HAK_API void *hak_heap_realloc(hak_heap_t *heap, void *p, size_t size);
HAK_API HAK_MALLOC_ATTR void *hak_heap_aligned_alloc(hak_heap_t *heap, size_t alignment, size_t size);
HAK_API hak_heap_t *hak_heap_of(const void *p); /* owning heap, or NULL if hakmem does not own p */
HAK_API HAK_MALLOC_ATTR char *hak_heap_strdup(hak_heap_t *heap, const char *s);
HAK_API HAK_MALLOC_ATTR char *hak_heap_strndup(hak_heap_t *heap, const char *s, size_t n);
HAK_API HAK_MALLOC_ATTR void *hak_heap_aligned_calloc(hak_heap_t *heap, size_t alignment, size_t count,
                                                      size_t size);
HAK_API void *hak_heap_aligned_realloc(hak_heap_t *heap, void *p, size_t alignment, size_t size);
HAK_API void *hak_heap_rezalloc(hak_heap_t *heap, void *p, size_t size);
HAK_API int hak_heap_contains(hak_heap_t *heap, const void *p); /* 1: p is a live block of heap; else 0 */
/* Calls visitor(block, usable size, arg) for every live block of heap (NULL: the default heap) until it
 * returns non-zero. Returns 0 after the last block, the visitor's non-zero value if it stopped the visit, -1
 * with errno (EINVAL: bad heap or NULL visitor; ENOMEM). Other threads may use other heaps meanwhile, not
 * this one; the visitor may call hakmem, even allocate and free in this heap (docs/API.md). */
typedef int (*hak_block_visitor_t)(void *block, size_t size, void *arg);
HAK_API int hak_heap_visit(hak_heap_t *heap, hak_block_visitor_t visitor, void *arg);

/* ---- statistics ---- */
#define HAK_STATS_NAME_MAX 64
#define HAK_STATS_CLASSES_MAX 64

typedef struct hak_class_stats_s {
    uint64_t block_size;  /* 0 = unused entry */
    uint64_t live_blocks; /* blocks handed out and not yet freed */
    uint64_t slabs;       /* slabs (or spans) of this class held */
} hak_class_stats_t;

typedef struct hak_stats_s {
    size_t size; /* set by the caller to sizeof(hak_stats_t); the library fills what fits */
    char name[HAK_STATS_NAME_MAX];
    uint64_t live_blocks;     /* all tiers */
    uint64_t live_bytes;      /* usable bytes of live blocks */
    uint64_t peak_live_bytes; /* highest live_bytes seen by a statistics walk (walks only: a lower bound of
                                 the true peak; peak_held_bytes below is the true high-water mark) */
    uint64_t reserved_bytes;  /* address space held from the OS */
    uint64_t committed_bytes; /* of which possibly backed by memory (not purged) */
    uint64_t cached_bytes;    /* of which free: empty slabs and spans, cached large mappings (not purged) */
    uint64_t large_blocks;    /* blocks served by their own mapping */
    uint64_t large_bytes;
    uint64_t limit_bytes; /* 0 = unlimited */
    uint64_t heap_count;  /* process stats: live heaps, including the default one */
    uint32_t class_count; /* entries used in classes[] */
    hak_class_stats_t classes[HAK_STATS_CLASSES_MAX];
    /* Fields appended after classes[]: a caller built against an older header passes a smaller size and gets
     * the fields before, exactly as before. */
    uint64_t held_bytes;      /* bytes charged to the heap's quota now: spans in use and live large blocks
                                 (whole spans and pages, so >= live_bytes; cached memory is not held) */
    uint64_t peak_held_bytes; /* highest held_bytes ever, kept where the quota is charged (exact, any time) */
    /* Event counters, since the process started (or the heap was created), counted off the fast paths. The
     * process's include destroyed heaps'. Those marked (process) count shared structures: they are 0 in a
     * heap's statistics. */
    uint64_t alloc_slow;        /* slab-served allocations that left the fast path */
    uint64_t free_slow;         /* slab-served frees that left the fast path, other threads' frees included */
    uint64_t remote_frees;      /* blocks freed by a thread other than their owner, collected back so far */
    uint64_t spans_carved;      /* spans taken from SuperSlabs */
    uint64_t spans_released;    /* empty spans given back to their SuperSlab */
    uint64_t superslabs_mapped; /* SuperSlabs (2 MiB) mapped from the OS */
    uint64_t superslabs_reused; /* SuperSlabs taken from the cache of empty ones */
    uint64_t superslabs_adopted; /* SuperSlabs of exited threads taken over by another thread */
    uint64_t superslabs_purged;  /* (process) cached empty SuperSlabs whose pages went back to the OS */
    uint64_t large_allocs;       /* large blocks allocated */
    uint64_t large_frees;        /* large blocks freed (a heap's destroy frees the rest: process only) */
    uint64_t bigcache_hits;      /* large blocks served from the BigCache of freed mappings */
    uint64_t bigcache_misses;    /* large blocks that needed a new mapping (alignments >= 2 MiB: neither) */
    uint64_t bigcache_trims;     /* (process) cached mappings purged down to the resident budget */
    uint64_t mmap_calls;         /* (process) system calls: mmap */
    uint64_t munmap_calls;       /* (process) munmap */
    uint64_t mremap_calls;       /* (process) mremap (large realloc, the BigCache's merges and moves) */
    uint64_t madvise_calls;      /* (process) madvise(MADV_DONTNEED): purges */
    /* Per size class (as classes[]): the largest thread-cache capacity, in blocks, among the live threads'
     * caches of the heap (the process: of all heaps); 0 when no live thread has one. */
    uint32_t tcache_capacity[HAK_STATS_CLASSES_MAX];
} hak_stats_t;

/* heap == NULL: the whole process. 0 on success; -1 with errno EINVAL for out == NULL, out->size below
 * sizeof(size_t) or a destroyed heap. Fills min(out->size, sizeof(hak_stats_t)) bytes. */
HAK_API int hak_heap_stats(hak_heap_t *heap, hak_stats_t *out);
/* Prints a heap's statistics (heap == NULL: the process) as text or, json != 0, one JSON object and a newline
 * (schema: docs/API.md); -1 (errno EINVAL) for a destroyed or invalid heap, else 0. */
HAK_API int hak_heap_stats_print(hak_heap_t *heap, FILE *out, int json);
HAK_API void hak_stats_print(FILE *out, int json); /* hak_heap_stats_print(NULL, out, json) */
HAK_API void hak_collect(int force);               /* give cached and empty memory back to the OS now */

/* ---- version and options ---- */
HAK_API const char *hak_version(void); /* "MAJOR.MINOR.PATCH" of the library actually loaded */
HAK_API int hak_version_number(void);  /* HAKMEM_VERSION_NUMBER of the library actually loaded */
/* Options by the name of their environment variable ("HAKMEM_PURGE_DELAY_MS"); HAKMEM_ON_ERROR is 1 for
 * abort, 0 for warn. 0 on success; -1 with errno EINVAL for an unknown name, a NULL pointer or a value out of
 * range. Every option can be changed at run time, from any thread (docs/API.md says when each change takes
 * effect). */
HAK_API int hak_option_get(const char *name, long long *value);
HAK_API int hak_option_set(const char *name, long long value);

#ifdef __cplusplus
}
#endif
#endif /* HAKMEM_HAKMEM_H */
