/* SPDX-License-Identifier: MIT */
#include "superslab/superslab.h"

#include <errno.h>
#include <string.h>

#include "common/options.h"
#include "common/lock.h"
#include "common/track.h"
#include "os/os.h"

hak_span_t hak_span_empty;

/* Start of the shortest run of slabs in `free` that holds n of them, or -1; *slack = run length - n. Runs may
 * start only at bits of `start_ok`. */
static int shortest_run(uint32_t free, uint32_t start_ok, unsigned n, unsigned *slack) {
    uint32_t m = free & start_ok;
    /* fit: bit i set iff slabs i .. i+n-1 are all free (the shifts clear bits past the end) */
    uint32_t fit = m;
    for (unsigned k = 1; k < n && fit != 0; k++)
        fit &= free >> k;
    fit &= ~(m << 1); /* only run starts */
    if (fit == 0)
        return -1;
    uint32_t exact = fit & ~(uint32_t)((uint64_t)free >> n); /* the slab after the span is in use */
    if (exact != 0) {
        *slack = 0;
        return __builtin_ctz(exact);
    }
    int best = -1;
    unsigned best_len = HAK_SLABS_PER_SS + 1;
    for (; fit != 0; fit &= fit - 1) {
        unsigned i = (unsigned)__builtin_ctz(fit);
        unsigned len = (unsigned)__builtin_ctzll(~((uint64_t)free >> i)); /* length of the run at i */
        if (len < best_len) {
            best = (int)i;
            best_len = len;
        }
    }
    *slack = best_len - n;
    return best;
}

int hak_ss_find_span(const hak_superslab_t *ss, unsigned n, size_t block_size, unsigned *cost) {
    uint32_t free = ss->free_mask, start_ok = ~0u;
    if (hak_span_bytes(0, n) < block_size)
        start_ok = ~1u; /* a span at slab 0 loses the header and would not hold one block */
    /* Slabs whose pages are still resident first: reuse before faulting purged ones in. */
    int i = shortest_run(free & ~ss->purged_mask, start_ok, n, cost);
    if (i < 0 && (i = shortest_run(free, start_ok, n, cost)) >= 0)
        *cost += HAK_SLABS_PER_SS;
    return i;
}

hak_span_t *hak_ss_span_init(hak_superslab_t *ss, unsigned i, unsigned n, unsigned cls, size_t block_size) {
    hak_span_t *s = &ss->spans[i];
    size_t bytes = hak_span_bytes(i, n);
    for (unsigned k = 1; k < n; k++)
        hak_store_relaxed(&ss->span_first[i + k], (uint8_t)i);
    s->free = NULL;
    s->local_free = NULL;
    hak_list_node_clear(&s->link);
    __atomic_store_n(&s->thread_free, NULL, __ATOMIC_RELAXED);
    hak_store_relaxed(&s->used, 0);
    hak_store_relaxed(&s->remote_pending, 0);
    hak_store_relaxed(&s->flags, 0);
    hak_store_relaxed(&s->cls, (uint8_t)cls);
    hak_store_relaxed(&s->span_slabs, (uint8_t)n);
    hak_store_relaxed(&s->block_size, (uint32_t)block_size);
    hak_store_relaxed(&s->capacity, 0);
    hak_store_relaxed(&s->reserved, (uint32_t)(bytes / block_size));
    hak_span_set_divisors(s, block_size);
    hak_store_relaxed(&s->start, hak_span_start(ss, i));
    uint32_t bits = (n >= 32 ? 0xffffffffu : ((1u << n) - 1u)) << i;
    hak_store_relaxed(&ss->free_mask, ss->free_mask & ~bits);
    ss->purged_mask &= ~bits;
    ss->idle_mask &= ~bits;
    return s;
}

void hak_ss_span_release(hak_superslab_t *ss, hak_span_t *s) {
    unsigned i = hak_span_index(ss, s), n = s->span_slabs;
    for (unsigned k = 0; k < n; k++) {
        hak_span_t *d = &ss->spans[i + k];
        hak_store_relaxed(&ss->span_first[i + k], (uint8_t)(i + k));
        hak_store_relaxed(&d->span_slabs, 0);
        hak_store_relaxed(&d->block_size, 0);
        hak_store_relaxed(&d->capacity, 0);
        hak_store_relaxed(&d->reserved, 0);
        hak_store_relaxed(&d->div_magic, 0);
        hak_store_relaxed(&d->block_inv, 0);
        hak_store_relaxed(&d->block_shift, 0);
        hak_store_relaxed(&d->used, 0);
        hak_store_relaxed(&d->flags, 0);
        d->free = d->local_free = NULL;
        hak_list_node_clear(&d->link);
    }
    uint32_t bits = (n >= 32 ? 0xffffffffu : ((1u << n) - 1u)) << i;
    hak_store_relaxed(&ss->free_mask, ss->free_mask | bits);
}

void hak_ss_purge_free_slabs(hak_superslab_t *ss) {
    uint32_t m = ss->free_mask & ss->idle_mask & ~ss->purged_mask;
    ss->idle_mask = ss->free_mask;
    ss->purged_mask |= m;
    while (m != 0) {
        unsigned i = (unsigned)__builtin_ctz(m);
        unsigned n = (unsigned)__builtin_ctz(~(m >> i)); /* length of the run of free slabs */
        if (i + n > HAK_SLABS_PER_SS)
            n = HAK_SLABS_PER_SS - i;
        uint8_t *from = hak_span_start(ss, i);
        hak_os_purge(from, hak_span_bytes(i, n));
        m &= ~((n >= 32 ? 0xffffffffu : ((1u << n) - 1u)) << i);
    }
}

/* ---- global cache of empty SuperSlabs ----
 * `warm` holds committed ones, newest first (the last is the oldest, purged first after the delay); `cold`
 * holds purged ones; `bare` holds ones whose body (everything past the header) went back to the kernel.
 *
 * Why a header is never unmapped: a thread freeing a block of another thread's span pushes it onto the
 * span's remote list and only then sets the span's bit in the header's remote mask. Between the two, the
 * owner may collect the block, retire the span and cache the SuperSlab; so a late notice can touch the header
 * of a cached SuperSlab. It touches nothing else: the block itself was written before the push, while the
 * span could not yet be retired. So the body of a SuperSlab that has stayed cold for a while (or at
 * hak_collect(1), or when a mapping fails) is unmapped and its 8 KiB header kept: late notices land in mapped
 * memory by construction, and what one tier freed, other tiers and other mmap users can map again. The
 * chunk's region byte is cleared first (the header is hakmem's metadata, not a block), and a bare SuperSlab
 * is reused by mapping its body back in place when that range is still free. All lists are protected by
 * ss_cache_lock. */
static hak_lock_t ss_cache_lock = HAK_LOCK_INIT;
static hak_list_t warm, cold, bare;
static size_t warm_count, cold_count, bare_count;
static uint64_t purged_count; /* SuperSlabs moved from warm to cold (read without the lock) */

static hak_superslab_t *ss_of_link(hak_list_node_t *n) {
    return hak_list_entry_or_null(n, hak_superslab_t, link);
}

static void purge_to_cold(hak_superslab_t *ss) {
    hak_list_remove(&warm, &ss->link);
    warm_count--;
    /* Keep the header pages: they hold the list links. */
    hak_os_purge((uint8_t *)ss + HAK_SS_HEADER_SIZE, HAK_SS_SIZE - HAK_SS_HEADER_SIZE);
    ss->purged = 1;
    hak_list_push_front(&cold, &ss->link);
    cold_count++;
    __atomic_store_n(&purged_count, purged_count + 1, __ATOMIC_RELAXED);
}

#define SS_BODY(ss) ((uint8_t *)(ss) + HAK_SS_HEADER_SIZE)
#define SS_BODY_SIZE (HAK_SS_SIZE - HAK_SS_HEADER_SIZE)

/* Gives a cold SuperSlab's body back to the kernel; the header stays mapped (see above). */
static void unmap_body_locked(hak_superslab_t *ss) {
    hak_list_remove(&cold, &ss->link);
    cold_count--;
    hak_region_set(ss, HAK_REGION_NONE);
    hak_track_forget(SS_BODY(ss), SS_BODY_SIZE);
    hak_os_unmap(SS_BODY(ss), SS_BODY_SIZE);
    hak_list_push_front(&bare, &ss->link);
    bare_count++;
}

/* Purges warm SuperSlabs past the bound or the delay, and unmaps the bodies of cold ones idle for twice the
 * delay; force does both to every cached one. */
static void decay_locked(uint64_t now, bool force) {
    hak_superslab_t *oldest;
    while ((oldest = ss_of_link(warm.last)) != NULL &&
           (force || warm_count > hak_options.ss_cache_max ||
            hak_older_than(now, oldest->cached_since_ms, hak_options.purge_delay_ms)))
        purge_to_cold(oldest);
    uint64_t idle = hak_options.purge_delay_ms, twice = idle * 2 >= idle ? idle * 2 : idle;
    while ((oldest = ss_of_link(cold.last)) != NULL &&
           (force || hak_older_than(now, oldest->cached_since_ms, twice)))
        unmap_body_locked(oldest);
}

/* A bare SuperSlab whose body could be mapped back in place, or NULL (its range is taken: it stays bare). */
static hak_superslab_t *remap_bare_locked(void) {
    hak_superslab_t *ss = ss_of_link(bare.first);
    if (ss == NULL || !hak_os_map_at(SS_BODY(ss), SS_BODY_SIZE))
        return NULL;
    hak_list_remove(&bare, &ss->link);
    bare_count--;
    hak_region_set(ss, HAK_REGION_SUPERSLAB);
    return ss;
}

/* Every slab free: each is its own span's first slab. */
static void span_first_reset(hak_superslab_t *ss) {
    for (unsigned i = 0; i < HAK_SLABS_PER_SS; i++)
        ss->span_first[i] = (uint8_t)i;
}

static void header_reset(hak_superslab_t *ss) {
    /* Descriptors of free slabs are already clean (hak_ss_span_release): only spans still in use (a heap
     * destroyed with live blocks) need clearing, which keeps create/destroy cycles cheap. */
    for (uint32_t used = ~ss->free_mask; used != 0; used &= used - 1)
        memset(&ss->spans[__builtin_ctz(used)], 0, sizeof ss->spans[0]);
    span_first_reset(ss);
    ss->free_mask = HAK_SS_ALL_FREE;
    ss->purged_mask = 0;
    ss->idle_mask = 0;
    __atomic_store_n(&ss->remote_mask, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&ss->owner_tid, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&ss->arena, NULL, __ATOMIC_RELAXED);
    ss->owner = NULL;
    hak_list_node_clear(&ss->link);
    ss->purged = 0;
}

hak_superslab_t *hak_ss_acquire(bool *resident, bool *mapped) {
    hak_lock(&ss_cache_lock);
    hak_superslab_t *ss = ss_of_link(hak_list_pop_front(&warm));
    *resident = ss != NULL;
    *mapped = false;
    if (ss != NULL)
        warm_count--;
    else if ((ss = ss_of_link(hak_list_pop_front(&cold))) != NULL)
        cold_count--;
    else if ((ss = remap_bare_locked()) != NULL)
        *mapped = true;
    if (!hak_list_is_empty(&warm) || !hak_list_is_empty(&cold))
        decay_locked(hak_os_now_ms(), false);
    hak_unlock(&ss_cache_lock);
    if (ss != NULL) {
        header_reset(ss);
        return ss;
    }
    ss = hak_os_map_aligned(HAK_SS_SIZE, HAK_SS_SIZE);
    if (ss == NULL) { /* out of memory or address space: every cached body goes back, and one more try */
        hak_ss_cache_collect(true);
        ss = hak_os_map_aligned(HAK_SS_SIZE, HAK_SS_SIZE);
    }
    if (ss == NULL) {
        errno = ENOMEM;
        return NULL;
    }
    ss->free_mask = HAK_SS_ALL_FREE; /* fresh memory is zero: everything else already is */
    span_first_reset(ss);
    hak_region_set(ss, HAK_REGION_SUPERSLAB);
    /* No block is handed out yet: all of it is no-access. */
    hak_track_noaccess((uint8_t *)ss + HAK_SS_HEADER_SIZE, HAK_SS_SIZE - HAK_SS_HEADER_SIZE);
    *mapped = true;
    return ss;
}

/* Test hook, called by hak_ss_release before it takes the cache lock (a test makes other threads go first).
 */
__attribute__((weak)) void hak_test_hook_ss_release(void) {}

void hak_ss_release(hak_superslab_t *ss) {
    header_reset(ss);
    /* Empty, or its heap is being destroyed: no block in it may be touched any more. */
    hak_track_noaccess((uint8_t *)ss + HAK_SS_HEADER_SIZE, HAK_SS_SIZE - HAK_SS_HEADER_SIZE);
    hak_test_hook_ss_release();
    hak_lock(&ss_cache_lock);
    uint64_t now = hak_os_now_ms(); /* under the lock: no entry on the list can be younger than this */
    ss->cached_since_ms = now;
    hak_list_push_front(&warm, &ss->link);
    warm_count++;
    decay_locked(now, false);
    hak_unlock(&ss_cache_lock);
}

void hak_ss_cache_collect(bool force) {
    hak_lock(&ss_cache_lock);
    decay_locked(hak_os_now_ms(), force);
    hak_unlock(&ss_cache_lock);
}

void hak_ss_cache_stats(uint64_t *count, uint64_t *committed_count) {
    hak_lock(&ss_cache_lock);
    *count = warm_count + cold_count;
    *committed_count = warm_count;
    hak_unlock(&ss_cache_lock);
}

uint64_t hak_ss_cache_purged(void) { return __atomic_load_n(&purged_count, __ATOMIC_RELAXED); }

void hak_ss_fork_prepare(void) { hak_lock(&ss_cache_lock); }
void hak_ss_fork_parent(void) { hak_unlock(&ss_cache_lock); }
void hak_ss_fork_child(void) { hak_lock_init(&ss_cache_lock); }
