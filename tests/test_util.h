/* Small helpers shared by the cmocka tests: patterns, a PRNG, memory probes. Header-only. */
#ifndef HAKMEM_TEST_UTIL_H
#define HAKMEM_TEST_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <hakmem/hakmem.h>

#define TU_MIB ((size_t)1 << 20)
#define TU_CHUNK ((uintptr_t)2 << 20) /* SuperSlab / region-map granule */

static inline uint64_t tu_mix(uint64_t x) {
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ull;
    x ^= x >> 33;
    return x;
}

typedef struct {
    uint64_t s;
} tu_rng_t;

static inline uint64_t tu_next(tu_rng_t *r) { /* xorshift64* */
    uint64_t x = r->s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    r->s = x;
    return x * 0x2545F4914F6CDD1Dull;
}

static inline void tu_seed(tu_rng_t *r, uint64_t seed) { r->s = tu_mix(seed) | 1; }

/* Pattern byte at offset i of a block tagged `tag`. */
static inline unsigned char tu_pat(uint64_t tag, size_t i) {
    return (unsigned char)(tu_mix(tag + (i >> 3)) >> ((i & 7) * 8));
}

/* Fill n bytes with the pattern of `tag` (8 bytes at a time). */
static inline void tu_fill(void *p, size_t n, uint64_t tag) {
    unsigned char *b = (unsigned char *)p;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t v = tu_mix(tag + (i >> 3));
        memcpy(b + i, &v, 8);
    }
    for (; i < n; i++)
        b[i] = tu_pat(tag, i);
}

/* Returns the first offset whose byte differs from the pattern, or (size_t)-1 if all n bytes match. */
static inline size_t tu_check(const void *p, size_t n, uint64_t tag) {
    const unsigned char *b = (const unsigned char *)p;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t v = tu_mix(tag + (i >> 3)), w;
        memcpy(&w, b + i, 8);
        if (v != w)
            break;
    }
    for (; i < n; i++)
        if (b[i] != tu_pat(tag, i))
            return i;
    return (size_t)-1;
}

static inline int tu_all_equal(const void *p, size_t n, unsigned char c) {
    const unsigned char *b = (const unsigned char *)p;
    for (size_t i = 0; i < n; i++)
        if (b[i] != c)
            return 0;
    return 1;
}

/* Resident set size of this process in bytes (from /proc/self/statm), 0 if unavailable. */
static inline size_t tu_rss_bytes(void) {
    FILE *f = fopen("/proc/self/statm", "r");
    unsigned long size = 0, res = 0;
    if (!f)
        return 0;
    if (fscanf(f, "%lu %lu", &size, &res) != 2)
        res = 0;
    fclose(f);
    return (size_t)res * (size_t)sysconf(_SC_PAGESIZE);
}

/* Process-wide hakmem statistics; returns 1 if the call succeeded and reported reserved memory. */
static inline int tu_stats(hak_heap_t *heap, hak_stats_t *st) {
    memset(st, 0, sizeof *st);
    st->size = sizeof *st;
    return hak_heap_stats(heap, st) == 0 && st->reserved_bytes != 0;
}

static inline int tu_cmp_uptr(const void *a, const void *b) {
    uintptr_t x = *(const uintptr_t *)a, y = *(const uintptr_t *)b;
    return x < y ? -1 : x > y;
}

#endif
