/* SPDX-License-Identifier: MIT */
/* Span supply for thread heaps: placement (best fit), adoption of abandoned SuperSlabs, the purge of
 * scattered free slabs, retiring empty spans, and collecting remote frees. */
#include "tiny/span.h"

#include <errno.h>
#include <limits.h>

#include "tiny/span_list.h"
#include "tiny/tcache.h"

#define HAK_SPAN_FIT_LOOKS 32 /* SuperSlabs examined after the first that fits */

/* A thread heap's SuperSlab list changes under its arena's lock, so statistics can walk it from any thread.
 */
static void theap_ss_link(hak_theap_t *th, hak_superslab_t *ss) {
    hak_lock(&th->arena->lock);
    hak_list_push_front(&th->superslabs, &ss->link);
    hak_unlock(&th->arena->lock);
}

static void theap_ss_unlink(hak_theap_t *th, hak_superslab_t *ss) {
    hak_lock(&th->arena->lock);
    hak_list_remove(&th->superslabs, &ss->link);
    hak_unlock(&th->arena->lock);
}

static void ss_take_ownership(hak_theap_t *th, hak_superslab_t *ss) {
    ss->owner = th;
    __atomic_store_n(&ss->arena, th->arena, __ATOMIC_RELAXED);
    __atomic_store_n(&ss->owner_tid, th->tid, __ATOMIC_RELEASE);
    theap_ss_link(th, ss);
}

static hak_span_t *span_carve(hak_superslab_t *ss, int i, unsigned n, unsigned cls) {
    return hak_ss_span_init(ss, (unsigned)i, n, cls, hak_class_size(cls));
}

/* Adoption: th becomes the owner of an abandoned SuperSlab and its spans join th's lists. Returns false if
 * every span turned out empty, in which case the SuperSlab went back to the global cache. */
static bool adopt(hak_theap_t *th, hak_superslab_t *ss) {
    ss_take_ownership(th, ss);
    /* An exchange, not a store: a locked instruction, so the loads of the spans' remote lists below cannot be
     * done before the mask is cleared (x86 lets a load pass an earlier plain store). With a store, a remote
     * free landing in that window had its notice wiped while the walk had already read its list as empty. */
    (void)__atomic_exchange_n(&ss->remote_mask, 0, __ATOMIC_ACQ_REL);
    unsigned i = 0;
    for (hak_span_t *s; (s = hak_ss_next_span(ss, &i)) != NULL;) {
        hak_list_node_clear(&s->link); /* links of the previous owner's lists */
        hak_store_relaxed(&s->flags, (uint8_t)(s->flags | HAK_SPAN_FULL));
        if (s->free == NULL) {
            s->free = s->local_free;
            s->local_free = NULL;
        }
        if (hak_theap_span_settle(th, ss, s))
            return false;
        if ((s->flags & HAK_SPAN_FULL) && s->capacity < s->reserved)
            hak_span_unfull(th, s); /* room to extend */
    }
    return true;
}

/* Takes an abandoned SuperSlab of th's arena, if any, and makes th its owner. */
static hak_superslab_t *adopt_one(hak_theap_t *th) {
    hak_tiny_arena_t *arena = th->arena;
    for (;;) {
        if (__atomic_load_n(&arena->abandoned_count, __ATOMIC_RELAXED) == 0)
            return NULL;
        hak_lock(&arena->lock);
        hak_superslab_t *ss = hak_ss_of_link(hak_list_pop_front(&arena->abandoned));
        if (ss != NULL)
            __atomic_store_n(&arena->abandoned_count, arena->abandoned_count - 1, __ATOMIC_RELAXED);
        hak_unlock(&arena->lock);
        if (ss == NULL)
            return NULL;
        if (adopt(th, ss)) {
            hak_tiny_count(&th->counts.ss_adopted, 1);
            return ss;
        }
    }
}

/* Charges a span to the quota. At the limit, blocks freed into abandoned SuperSlabs, remote frees and the
 * thread cache may hold spans that are empty but still charged: they are given back first. */
static bool charge_span(hak_theap_t *th, size_t bytes) {
    if (hak_quota_charge(th->arena->quota, bytes))
        return true;
    /* Other threads' caches may hold the quota: they give it back at their next slow path (an idle thread
     * keeps its cache until then). What needs no owner is done now, and the charge tried once more. */
    hak_tiny_arena_request_flush(th->arena);
    hak_tiny_arena_settle_abandoned(th->arena);
    hak_theap_collect_remote(th);
    hak_theap_flush_requested(th);
    return hak_quota_charge(th->arena->quota, bytes);
}

/* Best fit over the owned SuperSlabs: first fit broke up the runs that longer spans need, and each miss takes
 * another SuperSlab. The search stops a few SuperSlabs after the first fit: each look is a cache miss, and a
 * thread heap may own hundreds. */
static hak_span_t *span_best_fit(hak_theap_t *th, unsigned n, unsigned cls) {
    hak_superslab_t *best = NULL;
    int best_i = -1;
    unsigned best_cost = UINT_MAX, cost, budget = HAK_SPAN_FIT_LOOKS;
    for (hak_list_node_t *l = th->superslabs.first; l != NULL && budget != 0; l = l->next) {
        hak_superslab_t *ss = hak_ss_of_link(l);
        int i = hak_ss_find_span(ss, n, hak_class_size(cls), &cost);
        if (best != NULL)
            budget--;
        if (i >= 0 && cost < best_cost) {
            best = ss;
            best_i = i;
            best_cost = cost;
            if (cost == 0)
                break;
        }
    }
    return best != NULL ? span_carve(best, best_i, n, cls) : NULL;
}

/* A SuperSlab from the global supply; out of memory or address space, the layer above drops its caches (the
 * BigCache's mappings) and the supply is tried once more. */
static hak_superslab_t *acquire_superslab(hak_theap_t *th, bool *resident) {
    bool mapped;
    hak_superslab_t *ss = hak_ss_acquire(resident, &mapped);
    if (ss == NULL && th->arena->reclaim != NULL) {
        th->arena->reclaim();
        ss = hak_ss_acquire(resident, &mapped);
    }
    if (ss != NULL)
        hak_tiny_count(mapped ? &th->counts.ss_mapped : &th->counts.ss_reused, 1);
    return ss;
}

static hak_span_t *span_new(hak_theap_t *th, unsigned cls) {
    unsigned n = hak_span_slabs_for(cls), cost;
    size_t charge = (size_t)n * HAK_SLAB_SIZE;
    if (!charge_span(th, charge)) {
        errno = ENOMEM;
        return NULL;
    }
    hak_span_t *s = span_best_fit(th, n, cls);
    if (s != NULL)
        return s;
    hak_superslab_t *ss;
    while ((ss = adopt_one(th)) != NULL) {
        int i = hak_ss_find_span(ss, n, hak_class_size(cls), &cost);
        if (i >= 0)
            return span_carve(ss, i, n, cls);
    }
    bool resident;
    ss = acquire_superslab(th, &resident);
    if (ss == NULL) {
        hak_quota_uncharge(th->arena->quota, charge);
        errno = ENOMEM;
        return NULL;
    }
    /* A new SuperSlab is about to be faulted in while the free slabs of the owned ones are too scattered for
     * this span: give their pages back, so resident memory tracks the spans in use. A cached SuperSlab that
     * is still resident adds nothing, and purging then only made the next spans fault the slabs in again. */
    if (!resident)
        for (hak_list_node_t *l = th->superslabs.first; l != NULL; l = l->next)
            hak_ss_purge_free_slabs(hak_ss_of_link(l));
    ss_take_ownership(th, ss);
    return span_carve(ss, hak_ss_find_span(ss, n, hak_class_size(cls), &cost), n, cls);
}

hak_span_t *hak_theap_span_new(hak_theap_t *th, unsigned cls) {
    hak_span_t *s = span_new(th, cls);
    if (s != NULL)
        hak_tiny_count(&th->counts.spans_carved, 1);
    return s;
}

bool hak_theap_span_free(hak_theap_t *th, hak_superslab_t *ss, hak_span_t *s) {
    hak_tiny_count(&th->counts.spans_released, 1);
    if (!(s->flags & HAK_SPAN_FULL))
        hak_avail_remove(th, s); /* full spans are on no list */
    hak_quota_uncharge(th->arena->quota, (size_t)s->span_slabs * HAK_SLAB_SIZE);
    hak_ss_span_release(ss, s);
    if (!hak_ss_is_empty(ss))
        return false;
    theap_ss_unlink(th, ss);
    hak_ss_release(ss);
    return true;
}

bool hak_theap_span_settle(hak_theap_t *th, hak_superslab_t *ss, hak_span_t *s) {
    uint32_t remote = hak_span_collect_remote(s);
    if (remote != 0)
        hak_tiny_count(&th->counts.remote_frees, remote);
    if (s->used == 0 && th->direct[s->cls] != s)
        return hak_theap_span_free(th, ss, s);
    if ((s->flags & HAK_SPAN_FULL) && s->free != NULL)
        hak_span_unfull(th, s);
    return false;
}

void hak_theap_collect_remote(hak_theap_t *th) {
    hak_list_for_each_safe(l, next, &th->superslabs) {
        hak_superslab_t *ss = hak_ss_of_link(l);
        if (__atomic_load_n(&ss->remote_mask, __ATOMIC_RELAXED) == 0)
            continue;
        uint32_t m = __atomic_exchange_n(&ss->remote_mask, 0, __ATOMIC_ACQUIRE);
        while (m != 0) {
            unsigned i = (unsigned)__builtin_ctz(m);
            m &= m - 1;
            hak_span_t *s = &ss->spans[i];
            if (s->span_slabs == 0 || ss->span_first[i] != i)
                continue; /* stale notification: the span was freed or re-carved meanwhile */
            if (hak_theap_span_settle(th, ss, s))
                break;
        }
    }
}
