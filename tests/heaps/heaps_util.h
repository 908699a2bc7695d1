/* Helpers shared by the private-heap tests (tests/heaps): workload scale, /proc probes, tiered sizes, blocks
 * that carry their own identity, and a thread barrier. Header-only; builds on tests/test_util.h. */
#ifndef HAKMEM_TESTS_HEAPS_UTIL_H
#define HAKMEM_TESTS_HEAPS_UTIL_H

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hakmem/hakmem.h>

#include "test_util.h"

/* HEAPS_SLOWDOWN comes from CMake (1, or 2 / 10 under ASan / TSan): divide workloads by it. */
#ifndef HEAPS_SLOWDOWN
#define HEAPS_SLOWDOWN 1
#endif
/* Sanitizer runtimes keep shadow memory resident: RSS-based checks are skipped under them. */
#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
#define HS_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer) || __has_feature(address_sanitizer)
#define HS_SANITIZED 1
#endif
#endif
#ifndef HS_SANITIZED
#define HS_SANITIZED 0
#endif
#define HS_SCALE(n) ((size_t)(n) / HEAPS_SLOWDOWN ? (size_t)(n) / HEAPS_SLOWDOWN : 1)

#define HS_KIB ((size_t)1 << 10)
#define HS_SLAB ((uintptr_t)64 << 10)
#define HS_TINY_MAX ((size_t)8192)
#define HS_SLAB_MAX ((size_t)256 << 10)
#define HS_LARGE_HDR ((size_t)64)
#define HS_PAGE ((size_t)4096)

static inline size_t hs_align_up(size_t n, size_t a) { return (n + a - 1) & ~(a - 1); }

/* Sizes covering every tier: tiny (16 B .. 8 KiB), pool (8 KiB .. 256 KiB), large (> 256 KiB). */
static const size_t hs_tier_sizes[] = {
    1,       16,     24,     48,     100,
    128,     129,    500,    1000,   1024,
    2000,    4096,   8000,   8192,   8193,
    9000,    16384,  40000,  65536,  100000,
    200000,  262144, 262145, 300000, (size_t)1 << 20,
    3 << 20,
};
#define HS_TIER_SIZES (sizeof hs_tier_sizes / sizeof hs_tier_sizes[0])

/* A size from a mixed distribution: mostly tiny, some pool, a few large (1 in 128). */
static inline size_t hs_mixed_size(uint64_t r) {
    switch (r % 128) {
    case 0:
        return 262145 + (size_t)(r >> 8) % (768 * 1024);
    case 1:
    case 2:
    case 3:
    case 4:
        return 8193 + (size_t)(r >> 8) % (HS_SLAB_MAX - 8192);
    default:
        return 1 + (size_t)(r >> 8) % ((r >> 40) % 4 == 0 ? 8192 : 512);
    }
}

/* Blocks carry (size, id) in their first 16 bytes and a pattern of id in the rest. */
typedef struct {
    uint64_t size;
    uint64_t id;
} hs_hdr_t;

static inline size_t hs_block_size(size_t n) { return n < sizeof(hs_hdr_t) ? sizeof(hs_hdr_t) : n; }

static inline void hs_stamp(void *p, size_t n, uint64_t id) {
    n = hs_block_size(n);
    hs_hdr_t h = {n, id};
    memcpy(p, &h, sizeof h);
    /* large blocks: pattern the first and last 4 KiB only (keeps multi-MiB blocks cheap) */
    if (n > 16384) {
        tu_fill((char *)p + sizeof h, 4096, id);
        tu_fill((char *)p + n - 4096, 4096, id ^ 0x5555);
    } else {
        tu_fill((char *)p + sizeof h, n - sizeof h, id);
    }
}

/* 0 if intact, else a code telling what is wrong. */
static inline int hs_verify(const void *p, uint64_t id) {
    hs_hdr_t h;
    memcpy(&h, p, sizeof h);
    if (h.id != id)
        return 1;
    if (hak_usable_size(p) < h.size)
        return 2;
    if (h.size > 16384) {
        if (tu_check((const char *)p + sizeof h, 4096, id) != (size_t)-1)
            return 3;
        if (tu_check((const char *)p + h.size - 4096, 4096, id ^ 0x5555) != (size_t)-1)
            return 4;
    } else if (tu_check((const char *)p + sizeof h, h.size - sizeof h, id) != (size_t)-1) {
        return 5;
    }
    return 0;
}

static inline void *hs_make(hak_heap_t *heap, size_t n, uint64_t id) {
    void *p = hak_heap_alloc(heap, hs_block_size(n));
    if (p != NULL)
        hs_stamp(p, n, id);
    return p;
}

/* ---- /proc probes -------------------------------------------------------------------------------------- */

static inline long hs_maps_count(void) {
    FILE *f = fopen("/proc/self/maps", "r");
    if (f == NULL)
        return -1;
    long lines = 0;
    int c;
    while ((c = fgetc(f)) != EOF)
        if (c == '\n')
            lines++;
    fclose(f);
    return lines;
}

/* A field of /proc/self/status in KiB ("VmSize", "VmRSS"), -1 if missing. */
static inline long hs_status_kib(const char *field) {
    FILE *f = fopen("/proc/self/status", "r");
    if (f == NULL)
        return -1;
    char line[256];
    long v = -1;
    size_t n = strlen(field);
    while (fgets(line, sizeof line, f))
        if (strncmp(line, field, n) == 0 && line[n] == ':') {
            v = strtol(line + n + 1, NULL, 10);
            break;
        }
    fclose(f);
    return v;
}

/* ---- statistics ---------------------------------------------------------------------------------------- */

static inline void hs_stats(hak_heap_t *heap, hak_stats_t *st) {
    memset(st, 0, sizeof *st);
    st->size = sizeof *st;
    int rc = hak_heap_stats(heap, st);
    if (rc != 0) {
        fprintf(stderr, "hak_heap_stats failed: %d\n", rc);
        abort();
    }
}

/* Index in st->classes of the entry with this block size, -1 if none. */
static inline int hs_class_index(const hak_stats_t *st, uint64_t block_size) {
    for (uint32_t c = 0; c < st->class_count && c < HAK_STATS_CLASSES_MAX; c++)
        if (st->classes[c].block_size == block_size)
            return (int)c;
    return -1;
}

/* ---- a reusable barrier (pthread_barrier_t is optional in some libcs; this one also works under TSan) ----
 */
typedef struct {
    pthread_mutex_t m;
    pthread_cond_t c;
    unsigned count, waiting;
    unsigned long phase;
} hs_barrier_t;

static inline void hs_barrier_init(hs_barrier_t *b, unsigned count) {
    pthread_mutex_init(&b->m, NULL);
    pthread_cond_init(&b->c, NULL);
    b->count = count;
    b->waiting = 0;
    b->phase = 0;
}

static inline void hs_barrier_wait(hs_barrier_t *b) {
    pthread_mutex_lock(&b->m);
    unsigned long phase = b->phase;
    if (++b->waiting == b->count) {
        b->waiting = 0;
        b->phase++;
        pthread_cond_broadcast(&b->c);
    } else {
        while (phase == b->phase)
            pthread_cond_wait(&b->c, &b->m);
    }
    pthread_mutex_unlock(&b->m);
}

static inline void hs_barrier_destroy(hs_barrier_t *b) {
    pthread_cond_destroy(&b->c);
    pthread_mutex_destroy(&b->m);
}

#endif
