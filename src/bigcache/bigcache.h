/* BigCache: freed large mappings kept for reuse. A hash table keyed by size grain (16 grains per doubling)
 * finds a near fit in O(1); the table grows and shrinks with its content. Total cached bytes are bounded
 * (HAKMEM_BIGCACHE_MAX) and entries idle longer than the purge delay (HAKMEM_PURGE_DELAY_MS) are unmapped.
 * On a near miss, a cached mapping that is larger is trimmed, or one that is smaller is grown with mremap,
 * so its resident pages are reused instead of faulting in new ones (page faults are the dominant cost). */
#ifndef HAKMEM_BIGCACHE_BIGCACHE_H
#define HAKMEM_BIGCACHE_BIGCACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A cached 2 MiB-aligned mapping resized to at least `need` bytes (*got = its size); NULL on a miss. */
void *hak_bigcache_take(size_t need, size_t *got);
/* Keeps a 2 MiB-aligned mapping for reuse; false if it does not fit the cache (the caller unmaps it). */
bool hak_bigcache_put(void *base, size_t size);
/* Returns cached mappings to the OS: all if force, else those idle past the purge delay. */
void hak_bigcache_collect(bool force);

typedef struct hak_bigcache_info_s {
    uint64_t entries, bytes, table_capacity, hits, misses, purged;
} hak_bigcache_info_t;
void hak_bigcache_info(hak_bigcache_info_t *out);
void hak_bigcache_stats(uint64_t *entries, uint64_t *bytes);
void hak_bigcache_fork_prepare(void);
void hak_bigcache_fork_parent(void);
void hak_bigcache_fork_child(void);

#endif
