#include "bigcache/bigcache.h"

#include <string.h>

#include "api/options.h"
#include "common/lock.h"
#include "common/meta.h"
#include "os/os.h"
#include "superslab/region_map.h"

#define GRAIN_BITS 4  /* 16 grains per doubling: sizes in one grain differ by < 6.25% */
#define NEAR_GRAINS 4 /* a hit may be up to 4 grains larger (about 25% waste at most) */
#define TABLE_MIN 16

/* The entry lives in the first bytes of the cached mapping itself (those pages stay resident). */
typedef struct entry_s {
    size_t size;
    uint64_t grain;
    uint64_t since_ms;
    struct entry_s *chain;         /* next in the same bucket */
    struct entry_s *newer, *older; /* age list: head = newest, tail = oldest */
} entry_t;

typedef struct bucket_s {
    uint64_t grain; /* key */
    entry_t *head;  /* NULL = empty slot (open addressing, linear probing) */
} bucket_t;

static hak_lock_t cache_lock = HAK_LOCK_INIT;
static bucket_t *table;
static size_t table_cap, table_used; /* used = buckets holding a chain */
static entry_t *newest, *oldest;
static size_t cached_bytes, cached_entries;
static uint64_t stat_hits, stat_misses, stat_purged;

static uint64_t grain_of(size_t size) {
    uint64_t pages = size >> 12;
    if (pages < (1u << GRAIN_BITS))
        return pages;
    unsigned bit = 63u - (unsigned)__builtin_clzll(pages);
    uint64_t sub = (pages >> (bit - GRAIN_BITS)) & ((1u << GRAIN_BITS) - 1);
    return ((uint64_t)(bit - GRAIN_BITS + 1) << GRAIN_BITS) + sub;
}

/* Fibonacci (multiplicative) hashing of the grain. */
static size_t slot_of(uint64_t grain, size_t cap) {
    return (size_t)((grain * 0x9e3779b97f4a7c15ull) >> 32) & (cap - 1);
}

static bucket_t *find_bucket(uint64_t grain) {
    if (table_cap == 0)
        return NULL;
    for (size_t i = slot_of(grain, table_cap);; i = (i + 1) & (table_cap - 1)) {
        if (table[i].head == NULL)
            return NULL;
        if (table[i].grain == grain)
            return &table[i];
    }
}

static void insert_bucket(bucket_t *t, size_t cap, uint64_t grain, entry_t *head) {
    size_t i = slot_of(grain, cap);
    while (t[i].head != NULL)
        i = (i + 1) & (cap - 1);
    t[i].grain = grain;
    t[i].head = head;
}

/* Rebuilds the table at a new capacity (grows at 3/4 load, shrinks below 1/8). */
static bool resize_table(size_t cap) {
    bucket_t *t = hak_meta_alloc(cap * sizeof *t);
    if (t == NULL)
        return false;
    for (size_t i = 0; i < table_cap; i++)
        if (table[i].head != NULL)
            insert_bucket(t, cap, table[i].grain, table[i].head);
    if (table != NULL)
        hak_meta_free(table, table_cap * sizeof *table);
    table = t;
    table_cap = cap;
    return true;
}

/* Removing from an open-addressing table: re-insert the rest of the probe run. */
static void erase_bucket(bucket_t *b) {
    size_t i = (size_t)(b - table);
    table[i].head = NULL;
    table_used--;
    for (size_t j = (i + 1) & (table_cap - 1); table[j].head != NULL; j = (j + 1) & (table_cap - 1)) {
        bucket_t moved = table[j];
        table[j].head = NULL;
        insert_bucket(table, table_cap, moved.grain, moved.head);
    }
    if (table_cap > TABLE_MIN && table_used < table_cap / 8)
        resize_table(table_cap / 2);
}

static void unlink_entry(entry_t *e) {
    bucket_t *b = find_bucket(e->grain);
    entry_t **pp = &b->head;
    while (*pp != e)
        pp = &(*pp)->chain;
    *pp = e->chain;
    if (b->head == NULL)
        erase_bucket(b);
    if (e->newer)
        e->newer->older = e->older;
    else
        newest = e->older;
    if (e->older)
        e->older->newer = e->newer;
    else
        oldest = e->newer;
    cached_bytes -= e->size;
    __atomic_store_n(&cached_entries, cached_entries - 1, __ATOMIC_RELAXED);
}

static bool link_entry(entry_t *e) {
    bucket_t *b = find_bucket(e->grain);
    if (b == NULL) {
        if ((table_used + 1) * 4 > table_cap * 3 && !resize_table(table_cap ? table_cap * 2 : TABLE_MIN))
            return false;
        insert_bucket(table, table_cap, e->grain, e);
        e->chain = NULL;
        table_used++;
    } else {
        e->chain = b->head;
        b->head = e;
    }
    e->older = newest;
    e->newer = NULL;
    if (newest)
        newest->newer = e;
    else
        oldest = e;
    newest = e;
    cached_bytes += e->size;
    __atomic_store_n(&cached_entries, cached_entries + 1, __ATOMIC_RELAXED);
    return true;
}

/* Takes entries to unmap off the age list while the cache is over its bounds; the caller unmaps them
 * after dropping the lock (chained through `chain`). */
static entry_t *evict_locked(uint64_t now, bool force, size_t extra) {
    entry_t *victims = NULL;
    while (oldest != NULL && (force || cached_bytes + extra > hak_options.bigcache_max ||
                              now - oldest->since_ms >= hak_options.purge_delay_ms)) {
        entry_t *e = oldest;
        unlink_entry(e);
        e->chain = victims;
        victims = e;
        stat_purged++;
    }
    return victims;
}

static void unmap_all(entry_t *victims) {
    while (victims != NULL) {
        entry_t *next = victims->chain;
        hak_os_unmap(victims, victims->size);
        victims = next;
    }
}

/* Best entry for `need`: the smallest within NEAR_GRAINS grains above; else (scanning the age list) the
 * smallest larger one, else the largest smaller one: growing it reuses its resident pages, which is cheaper
 * than faulting in a fresh mapping. */
static entry_t *choose_locked(size_t need) {
    uint64_t g = grain_of(need);
    for (uint64_t k = 0; k <= NEAR_GRAINS; k++) {
        bucket_t *b = find_bucket(g + k);
        if (b == NULL)
            continue;
        entry_t *best = NULL;
        for (entry_t *e = b->head; e != NULL; e = e->chain)
            if (e->size >= need && (best == NULL || e->size < best->size))
                best = e;
        if (best != NULL)
            return best;
    }
    entry_t *larger = NULL, *smaller = NULL;
    for (entry_t *e = newest; e != NULL; e = e->older) {
        if (e->size >= need) {
            if (larger == NULL || e->size < larger->size)
                larger = e;
        } else if (smaller == NULL || e->size > smaller->size) {
            smaller = e;
        }
    }
    return larger ? larger : smaller;
}

void *hak_bigcache_take(size_t need, size_t *got) {
    if (__atomic_load_n(&cached_entries, __ATOMIC_RELAXED) == 0)
        return NULL; /* the common case when nothing is cached: no lock */
    hak_lock(&cache_lock);
    entry_t *e = choose_locked(need);
    if (e != NULL) {
        unlink_entry(e);
        stat_hits++;
    } else {
        stat_misses++;
    }
    /* On a miss the caller maps `need` fresh bytes: make room for them under the bound first. */
    entry_t *victims = evict_locked(hak_os_now_ms(), false, e == NULL ? need : 0);
    hak_unlock(&cache_lock);
    unmap_all(victims);
    if (e == NULL)
        return NULL;
    uint8_t *base = (uint8_t *)e;
    size_t have = e->size;
    if (have / 2 > need) {
        /* Far larger: give the tail back. Up to twice the size the block keeps it all: those pages are
         * resident, and trimming them only to fault them in again on the next growth costs more. */
        hak_os_unmap(base + need, have - need);
        have = need;
    } else if (have < need) {
        /* Smaller: grow it, keeping its resident pages. In place if the space after it is free, else move
         * the pages (no copy) to a fresh 2 MiB-aligned range. */
        if (!hak_os_resize_in_place(base, have, need)) {
            uint8_t *dst = hak_os_map_aligned(need, HAK_CHUNK_SIZE);
            if (dst == NULL || hak_os_move(base, have, dst, need) == NULL) {
                if (dst != NULL)
                    hak_os_unmap(dst, need);
                hak_os_unmap(base, have);
                return NULL;
            }
            base = dst;
        }
        have = need;
    }
    *got = have;
    return base;
}

bool hak_bigcache_put(void *base, size_t size) {
    if (size > hak_options.bigcache_max)
        return false;
    uint64_t now = hak_os_now_ms();
    entry_t *e = base;
    e->size = size;
    e->grain = grain_of(size);
    e->since_ms = now;
    hak_lock(&cache_lock);
    entry_t *victims = evict_locked(now, false, size);
    bool ok = link_entry(e);
    hak_unlock(&cache_lock);
    unmap_all(victims);
    return ok;
}

void hak_bigcache_collect(bool force) {
    hak_lock(&cache_lock);
    entry_t *victims = evict_locked(hak_os_now_ms(), force, 0);
    hak_unlock(&cache_lock);
    unmap_all(victims);
}

void hak_bigcache_info(hak_bigcache_info_t *out) {
    hak_lock(&cache_lock);
    out->entries = cached_entries;
    out->bytes = cached_bytes;
    out->table_capacity = table_cap;
    out->hits = stat_hits;
    out->misses = stat_misses;
    out->purged = stat_purged;
    hak_unlock(&cache_lock);
}

void hak_bigcache_stats(uint64_t *entries, uint64_t *bytes) {
    hak_bigcache_info_t info;
    hak_bigcache_info(&info);
    *entries = info.entries;
    *bytes = info.bytes;
}

void hak_bigcache_fork_prepare(void) { hak_lock(&cache_lock); }
void hak_bigcache_fork_parent(void) { hak_unlock(&cache_lock); }
void hak_bigcache_fork_child(void) { hak_lock_init(&cache_lock); }
