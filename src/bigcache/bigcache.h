/* SPDX-License-Identifier: MIT */
/* BigCache: freed large mappings kept for reuse, so their resident pages serve the next large blocks
 * instead of faulting in fresh ones (page faults are the dominant cost of large blocks).
 *
 * Mappings are whole 2 MiB chunks. The cache is a hash table keyed by chunk count (multiplicative hashing,
 * open addressing, growing and shrinking with its content) plus an age list. A request takes an entry of
 * exactly its size, else splits the smallest larger one (the rest stays cached), else grows the largest
 * smaller one, first by merging the cached entries that follow it in memory. Freed mappings merge with
 * cached entries that follow them. Total cached bytes are bounded (HAKMEM_BIGCACHE_MAX) and entries idle
 * longer than HAKMEM_PURGE_DELAY_MS are unmapped.
 *
 * Resident budget: each entry knows the prefix of its pages that may be resident ("dirty"; the rest is zero
 * and costs no memory). Cached dirty bytes are kept only while live + dirty stays under the high-water mark
 * of live plus an eighth, where live = the resident bytes of live large blocks (the callers report them).
 * Past that (by more than a chunk, so that purges come in batches), the oldest entries' pages are purged
 * down to the budget (the address space stays cached; an entry's first page, which holds the entry, stays).
 * So the cache keeps peak RSS near the program's own peak of live large blocks, yet serves the next blocks
 * without page faults. An exact-size hit takes, among a few entries of that size, the one whose resident
 * prefix fits the block best; a block whose tail would fault in fresh pages gets the dirty chunks of other
 * entries moved into that tail instead (mremap, no copy), so cached pages are reused, not purged. */
#ifndef HAKMEM_BIGCACHE_BIGCACHE_H
#define HAKMEM_BIGCACHE_BIGCACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A cached mapping of exactly `need` bytes (a multiple of 2 MiB, 2 MiB aligned), whose pages past *dirty
 * are zero, for a block that will use its first `used` bytes; NULL on a miss. */
void *hak_bigcache_take(size_t need, size_t used, size_t *dirty);
/* Keeps a free mapping (2 MiB aligned, whole chunks) whose pages past `dirty` are zero; false if it is
 * larger than the cache bound (the caller unmaps it). Once merged with cached neighbours, a mapping over the
 * bound is unmapped here. */
bool hak_bigcache_put(void *base, size_t size, size_t dirty);
/* Grows the mapping [base, base+size), zero past *dirty, towards `want` bytes by merging the cached entries
 * right after it; returns the mapping's new size (>= size; exactly want if it got there), updates *dirty. */
size_t hak_bigcache_extend(void *base, size_t size, size_t want, size_t *dirty);
/* Resident bytes of live large blocks grew or shrank (alloc, free, realloc); growth may trim the cache. */
void hak_bigcache_live_add(size_t bytes);
void hak_bigcache_live_sub(size_t bytes);
/* Returns cached mappings to the OS: all if force, else those idle past the purge delay. */
void hak_bigcache_collect(bool force);

typedef struct hak_bigcache_info_s {
    uint64_t entries, bytes, table_capacity, hits, misses, purged;
    uint64_t dirty;     /* cached bytes that may be resident */
    uint64_t live;      /* resident bytes of live large blocks, as reported */
    uint64_t live_peak; /* their high-water mark (lowered when entries age out) */
    uint64_t trimmed;   /* bytes purged by the resident budget */
    uint64_t trims;     /* entries purged by the resident budget */
    uint64_t gathered;  /* bytes of cached dirty chunks moved into blocks handed out */
    uint64_t move_failures;
} hak_bigcache_info_t;
void hak_bigcache_info(hak_bigcache_info_t *out);
void hak_bigcache_stats(uint64_t *entries, uint64_t *bytes, uint64_t *dirty);
void hak_bigcache_fork_prepare(void);
void hak_bigcache_fork_parent(void);
void hak_bigcache_fork_child(void);

#endif
