/* BigCache: freed large mappings kept for reuse, keyed by size, bounded in bytes, purged after a delay. */
#ifndef HAKMEM_BIGCACHE_BIGCACHE_H
#define HAKMEM_BIGCACHE_BIGCACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A cached 2 MiB-aligned mapping of at least map_size bytes, trimmed to exactly map_size; NULL on a miss. */
void *hak_bigcache_take(size_t map_size);
/* Keeps a 2 MiB-aligned mapping for reuse; false if it does not fit the cache (the caller unmaps it). */
bool hak_bigcache_put(void *base, size_t map_size);
/* Returns cached mappings to the OS: all if force, else those idle past the purge delay. */
void hak_bigcache_collect(bool force);
void hak_bigcache_stats(uint64_t *entries, uint64_t *bytes);
void hak_bigcache_fork_prepare(void);
void hak_bigcache_fork_parent(void);
void hak_bigcache_fork_child(void);

#endif
