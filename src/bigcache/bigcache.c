/* SPDX-License-Identifier: MIT */
#include "bigcache/bigcache.h"

#include <stdint.h>

#include "bigcache/chunks.h"
#include "bigcache/size_table.h"
#include "common/error.h"
#include "common/list.h"
#include "common/lock.h"
#include "common/options.h"
#include "common/region_map.h"
#include "common/secret.h"
#include "common/track.h"
#include "os/os.h"

/* The entry lives in the first bytes of the cached mapping itself; the region map marks its chunk CACHED (and
 * the mapping's other chunks LARGE_INNER). Its check word covers the fields the cache follows (size, dirty
 * prefix, age, links) and sits at offset 64, where the freed block started: a write through a stale pointer
 * to the block is found before the entry is used. */
typedef struct entry_s {
    size_t size;      /* whole chunks */
    size_t dirty;     /* pages past this prefix are not resident (never touched, or purged); >= one page */
    size_t trim_from; /* while being trimmed: purge from here to `dirty` */
    size_t donate;    /* while being gathered: bytes (whole chunks) moving into a block */
    uint64_t since_ms;
    struct entry_s *chain; /* next of the same size (table chain) */
    hak_list_node_t age;   /* in `ages`: first = newest, last = oldest */
    uintptr_t check;       /* keyed check (seal) */
} entry_t;
_Static_assert(offsetof(entry_t, check) == 64, "the check word covers a freed block's first word");

static hak_lock_t cache_lock = HAK_LOCK_INIT;
static hak_size_table_t table; /* chunk count -> chain of entries of that size */
static hak_list_t ages;        /* every cached entry, newest first */
static size_t cached_bytes, cached_entries;
/* The resident budget (see budget_locked): live = resident bytes of live large blocks, as reported; its
 * high-water mark bounds live + cached dirty bytes. */
static size_t cached_dirty, live_bytes, live_peak;
static uint64_t stat_hits, stat_misses, stat_purged, stat_trimmed, stat_trims, stat_gathered,
    stat_move_failures;

static bool poisoned; /* a corrupted entry was found: the cache was dropped (leaked) and stays empty */

static uintptr_t entry_check(const entry_t *e) {
    uintptr_t k = hak_secret.header;
    uintptr_t x = hak_secret_mix(k, (uintptr_t)e, e->size);
    x = hak_secret_mix(k ^ x, e->dirty, e->since_ms);
    return hak_secret_mix(k ^ x, (uintptr_t)e->chain ^ ((uintptr_t)e->age.next << 1), (uintptr_t)e->age.prev);
}

/* Records the entry's fields in its check word; called after every change of them (neighbours included). */
static void seal(entry_t *e) {
    if (e != NULL)
        e->check = entry_check(e);
}

/* A detected corruption: reported (abort by default); with HAKMEM_ON_ERROR=warn every entry is forgotten (its
 * address space leaked, its chunks still marked hakmem's) and the cache stays empty, so nothing is ever done
 * through a corrupted entry. */
static hak_cold void drop_everything_locked(const entry_t *e) {
    hak_report_invalid("corrupted BigCache entry (a write into a freed large block?)", e);
    poisoned = true;
    for (size_t i = 0; i < table.cap; i++)
        table.slots[i].head = NULL;
    table.used = 0;
    ages.first = ages.last = NULL;
    cached_bytes = 0;
    __atomic_store_n(&cached_dirty, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&cached_entries, 0, __ATOMIC_RELAXED);
}

/* e itself if its check word matches (or e is NULL), else NULL after dropping the cache. Every entry reached
 * through a pointer of the cache's goes through here before it is used. */
static entry_t *verified(entry_t *e) {
    if (e == NULL || hak_likely(e->check == entry_check(e)))
        return e;
    drop_everything_locked(e);
    return NULL;
}

static entry_t *entry_of(hak_list_node_t *n) { return verified(hak_list_entry_or_null(n, entry_t, age)); }
static entry_t *older(entry_t *e) { return entry_of(e->age.next); }
static entry_t *newer(entry_t *e) { return entry_of(e->age.prev); }
static entry_t *node_entry(hak_list_node_t *n) { return hak_list_entry_or_null(n, entry_t, age); }

static uint64_t chunks_of(size_t size) { return size >> HAK_CHUNK_SHIFT; }

/* The dirty prefix of what lies `off` bytes into a range resident up to `dirty`. */
static size_t dirty_past(size_t dirty, size_t off) { return dirty > off ? dirty - off : 0; }

/* Takes a verified entry out of the cache; false if a neighbour turned out corrupted (the cache was dropped,
 * e with it). */
static bool unlink_entry(entry_t *e) {
    hak_size_slot_t *slot = hak_size_table_find(&table, chunks_of(e->size));
    if (slot == NULL) { /* its size says otherwise: corrupted after all */
        drop_everything_locked(e);
        return false;
    }
    if (slot->head == e) {
        slot->head = e->chain;
        if (slot->head == NULL)
            hak_size_table_remove(&table, slot);
    } else {
        entry_t *prev = verified(slot->head);
        while (prev != NULL && prev->chain != e)
            prev = verified(prev->chain);
        if (prev == NULL) {
            if (!poisoned)
                drop_everything_locked(e);
            return false;
        }
        prev->chain = e->chain;
        seal(prev);
    }
    entry_t *newer_one = node_entry(e->age.prev), *older_one = node_entry(e->age.next);
    if (verified(newer_one) != newer_one || verified(older_one) != older_one)
        return false;
    hak_list_remove(&ages, &e->age);
    seal(newer_one);
    seal(older_one);
    cached_bytes -= e->size;
    __atomic_store_n(&cached_dirty, cached_dirty - e->dirty, __ATOMIC_RELAXED); /* read by gather unlocked */
    __atomic_store_n(&cached_entries, cached_entries - 1, __ATOMIC_RELAXED);
    hak_region_set(e, HAK_REGION_LARGE_INNER); /* still hakmem's: its taker, or the OS, comes next */
    return true;
}

/* Caches [base, base+size), resident up to `dirty`, as the newest entry. False only if the table cannot
 * grow. */
static bool link_entry(void *base, size_t size, size_t dirty, uint64_t since) {
    entry_t *e = base;
    hak_track_open(e, sizeof *e); /* its bytes 64..71 were the freed block's first word: no-access */
    e->size = size;
    e->dirty = dirty < HAK_OS_PAGE ? HAK_OS_PAGE : dirty; /* the entry itself dirties the first page */
    e->since_ms = since;
    if (poisoned)
        return false;
    hak_size_slot_t *slot = hak_size_table_find(&table, chunks_of(size));
    if (slot != NULL) {
        e->chain = slot->head;
        slot->head = e;
    } else {
        e->chain = NULL;
        if (!hak_size_table_add(&table, chunks_of(size), e))
            return false;
    }
    entry_t *was_newest = node_entry(ages.first);
    hak_list_push_front(&ages, &e->age);
    seal(e);
    seal(was_newest);
    cached_bytes += size;
    __atomic_store_n(&cached_dirty, cached_dirty + e->dirty, __ATOMIC_RELAXED);
    __atomic_store_n(&cached_entries, cached_entries + 1, __ATOMIC_RELAXED);
    hak_region_set(e, HAK_REGION_CACHED);
    return true;
}

/* Keeps the first `keep` bytes of [base, base+size), resident up to *dirty, and caches the rest; false
 * (nothing split) if the table cannot grow. */
static bool split_locked(uint8_t *base, size_t size, size_t keep, size_t *dirty, uint64_t now) {
    if (!link_entry(base + keep, size - keep, dirty_past(*dirty, keep), now))
        return false;
    if (*dirty > keep)
        *dirty = keep;
    return true;
}

/* Merges the cached entries that follow [base, base+size), resident up to *dirty, until the mapping reaches
 * `want` bytes; a surplus beyond `want` goes back to the cache. Returns the new size and updates *dirty. */
static size_t absorb_locked(uint8_t *base, size_t size, size_t *dirty, size_t want, uint64_t now) {
    while (size < want && hak_region_kind(base + size) == HAK_REGION_CACHED) {
        entry_t *n = verified((entry_t *)(base + size));
        if (n == NULL || !unlink_entry(n))
            break;
        *dirty = size + n->dirty; /* n's header page is dirty, so the prefix now reaches into n */
        size += n->size;
    }
    if (size > want && want != SIZE_MAX && split_locked(base, size, want, dirty, now))
        size = want;
    return size;
}

/* Cached dirty bytes past each entry's first page (which holds the entry and is never purged). */
static size_t trimmable_locked(void) { return cached_dirty - cached_entries * HAK_OS_PAGE; }

/* Takes entries off the age list while the cache is over its bounds; the caller unmaps them after dropping
 * the lock (chained through `chain`). Entries idle past the purge delay also lower the high-water mark of
 * live bytes to what is held now, so a peak long past does not keep licensing cached pages. */
static entry_t *evict_locked(uint64_t now, bool force) {
    entry_t *victims = NULL;
    bool aged = force;
    for (entry_t *oldest; (oldest = entry_of(ages.last)) != NULL;) {
        bool old = hak_older_than(now, oldest->since_ms, hak_options.purge_delay_ms);
        if (!force && !old && cached_bytes <= hak_options.bigcache_max)
            break;
        aged |= old;
        entry_t *e = oldest;
        if (!unlink_entry(e))
            break;
        e->chain = victims;
        victims = e;
        stat_purged++;
    }
    if (aged)
        live_peak = live_bytes + trimmable_locked();
    return victims;
}

static void unmap_all(entry_t *victims) {
    while (victims != NULL) {
        entry_t *next = victims->chain;
        hak_chunks_unmap(victims, victims->size);
        victims = next;
    }
}

/* The budget for live + trimmable cached bytes: the high-water mark of live plus an eighth. With no margin, a
 * program that stays near its peak (a steady churn of large blocks) had every freed page purged and faulted
 * in again: random-mixed 16 KiB-1 MiB took 234K page faults instead of 38K, 2x the time. */
static size_t budget_locked(void) { return live_peak + (live_peak / 8 & ~(HAK_OS_PAGE - 1)); }

/* Trimming starts once live + trimmable cached bytes pass the budget by a chunk, and then goes back down to
 * the budget: a block growing page by page (realloc) triggers one purge per 2 MiB, not one per page. */
#define TRIM_SLACK HAK_CHUNK_SIZE

/* Raises the high-water mark of live to live; true if the cache is over its resident budget. */
static bool over_budget_locked(void) {
    if (live_bytes > live_peak)
        live_peak = live_bytes;
    return live_bytes + trimmable_locked() > budget_locked() + TRIM_SLACK;
}

/* Takes dirty pages off the oldest entries until live + trimmable cached bytes are back at the budget. The
 * entries leave the cache with `trim_from` set; the caller purges their pages after dropping the lock and
 * links them back. */
static entry_t *pick_trim_locked(void) {
    size_t limit = budget_locked() - live_bytes,
           pending = 0; /* pending: what the picked entries keep, trimmable */
    entry_t *picked = NULL, *next;
    for (entry_t *e = entry_of(ages.last); e != NULL && trimmable_locked() + pending > limit; e = next) {
        next = newer(e);
        if (e->dirty <= HAK_OS_PAGE)
            continue;
        size_t excess = trimmable_locked() + pending - limit;
        size_t cut = hak_align_up(excess, HAK_OS_PAGE); /* madvise takes whole pages only */
        if (cut > e->dirty - HAK_OS_PAGE)
            cut = e->dirty - HAK_OS_PAGE;
        if (!unlink_entry(e))
            break;
        e->trim_from = e->dirty - cut;
        pending += e->trim_from - HAK_OS_PAGE;
        e->chain = picked;
        picked = e;
    }
    return picked;
}

/* Purges what pick_trim_locked chose, then links the entries back as the newest: they hold little memory now,
 * and the next trim need not walk past them. */
static void trim(entry_t *picked) {
    if (picked == NULL)
        return;
    for (entry_t *e = picked; e != NULL; e = e->chain)
        if (!hak_os_purge((uint8_t *)e + e->trim_from, e->dirty - e->trim_from))
            e->trim_from = e->dirty; /* nothing was purged: the pages keep their contents */
    hak_lock(&cache_lock);
    uint64_t now = hak_os_now_ms();
    entry_t *lost = NULL, *next;
    for (entry_t *e = picked; e != NULL; e = next) {
        next = e->chain;
        stat_trimmed += e->dirty - e->trim_from;
        stat_trims += e->dirty > e->trim_from;
        if (!link_entry(e, e->size, e->trim_from, now)) {
            e->chain = lost;
            lost = e;
        }
    }
    hak_unlock(&cache_lock);
    unmap_all(lost);
}

/* Among the first entries of a chain (all of one size), the one whose resident prefix covers `used` bytes
 * most tightly, else the most resident one: fewer fresh pages to fault in, and fewer resident pages left
 * unused past the block's end. A few looks only: each entry is in its own mapping, a cache miss. */
#define FIT_LOOKS 8
static entry_t *best_dirty_fit(entry_t *e, size_t used) {
    entry_t *best = e;
    for (unsigned n = 0; e != NULL && n < FIT_LOOKS; e = verified(e->chain), n++) {
        bool covers = e->dirty >= used, best_covers = best->dirty >= used;
        if (covers ? !best_covers || e->dirty < best->dirty : !best_covers && e->dirty > best->dirty)
            best = e;
    }
    return best;
}

/* An entry of exactly `need` bytes, else the smallest larger one, else the largest smaller one. */
static entry_t *choose_locked(size_t need, size_t used) {
    hak_size_slot_t *exact = hak_size_table_find(&table, chunks_of(need));
    if (exact != NULL) {
        entry_t *e = best_dirty_fit(verified(exact->head), used);
        return poisoned ? NULL : e;
    }
    entry_t *larger = NULL, *smaller = NULL;
    for (entry_t *e = entry_of(ages.first); e != NULL; e = older(e)) {
        if (e->size > need) {
            if (larger == NULL || e->size < larger->size)
                larger = e;
        } else if (smaller == NULL || e->size > smaller->size) {
            smaller = e;
        }
    }
    if (poisoned)
        return NULL;
    return larger ? larger : smaller;
}

/* A donor must hold at least this many dirty bytes: moving a chunk costs a system call, about what a few
 * page faults cost. */
#define DONOR_MIN_DIRTY ((size_t)64 << 10)

/* Picks cached entries whose dirty chunks will fill [pos, need) of a block, newest first (their pages are
 * the likeliest to be resident), and takes them out of the cache with `donate` set. */
static entry_t *pick_donors_locked(size_t pos, size_t need) {
    entry_t *donors = NULL, **tail = &donors, *next;
    for (entry_t *e = entry_of(ages.first); e != NULL && pos < need; e = next) {
        next = older(e);
        if (e->dirty < DONOR_MIN_DIRTY)
            continue;
        size_t k = hak_align_up(e->dirty, HAK_CHUNK_SIZE);
        if (k > e->size)
            k = e->size;
        if (k > need - pos)
            k = need - pos;
        if (!unlink_entry(e))
            break;
        e->donate = k;
        e->chain = NULL;
        *tail = e;
        tail = &e->chain;
        pos += k;
    }
    return donors;
}

/* Caches [base, base+size), resident up to dirty, or unmaps it if the cache cannot take it. */
static void keep_or_unmap(uint8_t *base, size_t size, size_t dirty) {
    if (size != 0 && !hak_bigcache_put(base, size, dirty))
        hak_chunks_unmap(base, size);
}

/* Moves n bytes (whole chunks) from src to dst with mremap, chunk by chunk: a cached range can span several
 * kernel mappings (always split at chunk boundaries), and mremap moves only within one. Returns the bytes
 * moved; on a shortfall the kernel has already unmapped the target chunk (it clears the target first). */
static size_t move_chunks(uint8_t *src, uint8_t *dst, size_t n) {
    size_t moved = 0;
    while (moved < n && hak_chunks_move(src + moved, HAK_CHUNK_SIZE, dst + moved, HAK_CHUNK_SIZE) != NULL)
        moved += HAK_CHUNK_SIZE;
    return moved;
}

/* A move into the block [base, base+need) failed at `hole`: cache the parts around the hole (the block is
 * given up). Should the target chunk still be mapped, 2 MiB of address space leak: unmapping it could hit
 * another thread's new mapping. */
static void give_up_block(uint8_t *base, size_t need, size_t hole) {
    hak_lock(&cache_lock);
    stat_move_failures++;
    hak_unlock(&cache_lock);
    keep_or_unmap(base, hole, hole);
    if (hole + HAK_CHUNK_SIZE < need)
        keep_or_unmap(base + hole + HAK_CHUNK_SIZE, need - hole - HAK_CHUNK_SIZE, 0);
}

/* Fills the zero part of a block [base, base+need), resident up to *dirty, with the dirty chunks of other
 * cached entries, moved by mremap (no copy, no fault): pages that would otherwise sit in the cache (and be
 * purged by the resident budget) while the block faults in fresh ones. False if a move failed: the block is
 * then back in the cache, in pieces, and the caller maps a fresh one. */
static bool gather(uint8_t *base, size_t need, size_t *dirty) {
    size_t start = hak_align_up(*dirty, HAK_CHUNK_SIZE), pos = start;
    if (pos + HAK_CHUNK_SIZE > need || __atomic_load_n(&cached_dirty, __ATOMIC_RELAXED) < DONOR_MIN_DIRTY)
        return true;
    hak_lock(&cache_lock);
    entry_t *donors = pick_donors_locked(pos, need);
    hak_unlock(&cache_lock);
    bool ok = true;
    for (entry_t *e = donors, *next; e != NULL; e = next) {
        next = e->chain; /* the entry's fields move with its first chunk: read them first */
        uint8_t *src = (uint8_t *)e;
        size_t size = e->size, edirty = e->dirty, k = ok ? e->donate : 0;
        size_t moved = move_chunks(src, base + pos, k);
        pos += moved;
        if (moved < k) {
            ok = false;
            give_up_block(base, need, pos);
        }
        if (moved < size) { /* the rest of the donor stays cached */
            hak_lock(&cache_lock);
            bool kept = link_entry(src + moved, size - moved, dirty_past(edirty, moved), hak_os_now_ms());
            hak_unlock(&cache_lock);
            if (!kept)
                hak_chunks_unmap(src + moved, size - moved);
        }
    }
    if (ok && pos > start) {
        hak_lock(&cache_lock);
        stat_gathered += pos - start;
        hak_unlock(&cache_lock);
        *dirty = pos;
    }
    return ok;
}

/* Grows the entry [base, base+have), resident up to dirty, to `need` bytes keeping its resident pages: in
 * place if the space after it is free, else its dirty chunks move to a fresh range (the clean rest of the old
 * range stays cached). NULL if it could not (the entry is back in the cache). */
static uint8_t *grow(uint8_t *base, size_t have, size_t need, size_t dirty) {
    if (hak_chunks_resize(base, have, need))
        return base;
    uint8_t *dst = hak_chunks_map(need);
    if (dst == NULL) {
        keep_or_unmap(base, have, dirty);
        return NULL;
    }
    size_t k = hak_align_up(dirty, HAK_CHUNK_SIZE) < have ? hak_align_up(dirty, HAK_CHUNK_SIZE) : have;
    size_t moved = move_chunks(base, dst, k);
    keep_or_unmap(base + moved, have - moved, dirty_past(dirty, moved));
    if (moved < k) {
        give_up_block(dst, need, moved);
        return NULL;
    }
    return dst;
}

void *hak_bigcache_take(size_t need, size_t used, size_t *dirty) {
    if (__atomic_load_n(&cached_entries, __ATOMIC_RELAXED) == 0)
        return NULL; /* the common case when nothing is cached: no lock */
    hak_lock(&cache_lock);
    uint64_t now = hak_os_now_ms();
    entry_t *e = choose_locked(need, used);
    size_t have = 0;
    if (e != NULL && !unlink_entry(e))
        e = NULL; /* the cache was corrupted and dropped */
    if (e != NULL) {
        have = e->size;
        *dirty = e->dirty;
        if (have > need && split_locked((uint8_t *)e, have, need, dirty, now))
            have = need; /* the rest stays cached */
        else if (have < need)
            have = absorb_locked((uint8_t *)e, have, dirty, need, now);
        stat_hits++;
    } else {
        stat_misses++;
    }
    entry_t *victims = evict_locked(now, false);
    hak_unlock(&cache_lock);
    unmap_all(victims);
    if (e == NULL)
        return NULL;
    uint8_t *base = have < need ? grow((uint8_t *)e, have, need, *dirty) : (uint8_t *)e;
    if (base != NULL && gather(base, need, dirty))
        return base;
    hak_lock(&cache_lock); /* a miss after all */
    stat_hits--;
    stat_misses++;
    hak_unlock(&cache_lock);
    return NULL;
}

/* Test hook, called by hak_bigcache_put before it takes the cache lock (a test makes other threads go first).
 */
__attribute__((weak)) void hak_test_hook_bigcache_put(void) {}

bool hak_bigcache_put(void *base, size_t size, size_t dirty) {
    if (size > hak_options.bigcache_max)
        return false;
    hak_test_hook_bigcache_put();
    hak_lock(&cache_lock);
    uint64_t now = hak_os_now_ms(); /* under the lock, as everywhere here: no entry is younger than this */
    if (poisoned) {                 /* the cache was dropped after a corruption: it keeps nothing */
        hak_unlock(&cache_lock);
        return false;
    }
    size = absorb_locked(base, size, &dirty, SIZE_MAX, now); /* merge with the cached entries that follow */
    bool fits = size <= hak_options.bigcache_max && link_entry(base, size, dirty, now);
    entry_t *victims = evict_locked(now, false);
    hak_unlock(&cache_lock);
    unmap_all(victims);
    if (!fits)
        hak_chunks_unmap(base, size); /* merged past the bound (or no table): all of it goes back */
    return true;
}

size_t hak_bigcache_extend(void *base, size_t size, size_t want, size_t *dirty) {
    if (__atomic_load_n(&cached_entries, __ATOMIC_RELAXED) == 0)
        return size;
    hak_lock(&cache_lock);
    size = absorb_locked(base, size, dirty, want, hak_os_now_ms());
    hak_unlock(&cache_lock);
    return size;
}

void hak_bigcache_live_add(size_t bytes) {
    hak_lock(&cache_lock);
    live_bytes += bytes;
    entry_t *picked = over_budget_locked() ? pick_trim_locked() : NULL;
    hak_unlock(&cache_lock);
    trim(picked);
}

void hak_bigcache_live_sub(size_t bytes) {
    hak_lock(&cache_lock);
    live_bytes -= bytes;
    hak_unlock(&cache_lock);
}

void hak_bigcache_collect(bool force) {
    hak_lock(&cache_lock);
    entry_t *victims = evict_locked(hak_os_now_ms(), force);
    hak_unlock(&cache_lock);
    unmap_all(victims);
}

void hak_bigcache_info(hak_bigcache_info_t *out) {
    hak_lock(&cache_lock);
    out->entries = cached_entries;
    out->bytes = cached_bytes;
    out->table_capacity = table.cap;
    out->hits = stat_hits;
    out->misses = stat_misses;
    out->purged = stat_purged;
    out->dirty = cached_dirty;
    out->live = live_bytes;
    out->live_peak = live_peak;
    out->trimmed = stat_trimmed;
    out->trims = stat_trims;
    out->gathered = stat_gathered;
    out->move_failures = stat_move_failures;
    hak_unlock(&cache_lock);
}

void hak_bigcache_stats(uint64_t *entries, uint64_t *bytes, uint64_t *dirty) {
    hak_bigcache_info_t info;
    hak_bigcache_info(&info);
    *entries = info.entries;
    *bytes = info.bytes;
    *dirty = info.dirty;
}

void hak_bigcache_fork_prepare(void) { hak_lock(&cache_lock); }
void hak_bigcache_fork_parent(void) { hak_unlock(&cache_lock); }
void hak_bigcache_fork_child(void) { hak_lock_init(&cache_lock); }
