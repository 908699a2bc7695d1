/* Placeholder policy until the BigCache lands: cache nothing, so every large block maps and unmaps. */
#include "bigcache/bigcache.h"

void *hak_bigcache_take(size_t map_size) {
    (void)map_size;
    return NULL;
}
bool hak_bigcache_put(void *base, size_t map_size) {
    (void)base;
    (void)map_size;
    return false;
}
void hak_bigcache_collect(bool force) { (void)force; }
void hak_bigcache_stats(uint64_t *entries, uint64_t *bytes) { *entries = *bytes = 0; }
void hak_bigcache_fork_prepare(void) {}
void hak_bigcache_fork_parent(void) {}
void hak_bigcache_fork_child(void) {}
