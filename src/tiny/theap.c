/* SPDX-License-Identifier: MIT */
/* Thread heaps and tiny arenas: creation, thread exit (abandon), heap destroy (release all), hak_collect, and
 * settling the abandoned SuperSlabs that nobody owns. */
#include "tiny/theap.h"

#include "common/meta.h"
#include "common/track.h"
#include "tiny/span.h"
#include "tiny/span_list.h"
#include "tiny/tcache.h"

__thread char hak_tls_id_anchor;

void hak_tiny_arena_init(hak_tiny_arena_t *arena, hak_quota_t *quota, void (*reclaim)(void)) {
    arena->quota = quota;
    arena->reclaim = reclaim;
    hak_lock_init(&arena->lock);
    arena->theaps.first = arena->theaps.last = NULL;
    arena->abandoned.first = arena->abandoned.last = NULL;
    arena->abandoned_count = 0;
}

hak_theap_t *hak_theap_create(hak_tiny_arena_t *arena) {
    hak_theap_t *th = hak_meta_alloc(sizeof *th);
    if (th == NULL)
        return NULL;
    for (unsigned c = 0; c < HAK_CLASS_COUNT; c++)
        th->direct[c] = &hak_span_empty;
    hak_tcache_init(th);
    th->arena = arena;
    th->tid = hak_thread_id();
    th->flush_requested = false;
    hak_lock(&arena->lock);
    hak_list_push_front(&arena->theaps, &th->link);
    hak_unlock(&arena->lock);
    return th;
}

static void abandoned_push_locked(hak_tiny_arena_t *arena, hak_superslab_t *ss) {
    hak_list_push_front(&arena->abandoned, &ss->link);
    __atomic_store_n(&arena->abandoned_count, arena->abandoned_count + 1, __ATOMIC_RELAXED);
}

static void abandoned_remove_locked(hak_tiny_arena_t *arena, hak_superslab_t *ss) {
    hak_list_remove(&arena->abandoned, &ss->link);
    __atomic_store_n(&arena->abandoned_count, arena->abandoned_count - 1, __ATOMIC_RELAXED);
}

/* Settles every span of ss; true if that emptied and released the SuperSlab. */
static bool settle_superslab(hak_theap_t *th, hak_superslab_t *ss) {
    unsigned i = 0;
    for (hak_span_t *s; (s = hak_ss_next_span(ss, &i)) != NULL;)
        if (hak_theap_span_settle(th, ss, s))
            return true;
    return false;
}

void hak_theap_abandon(hak_theap_t *th) {
    hak_tiny_arena_t *arena = th->arena;
    hak_tcache_flush(th);
    for (unsigned c = 0; c < HAK_CLASS_COUNT; c++)
        th->direct[c] = &hak_span_empty; /* lets settling retire every empty span */
    /* Every SuperSlab is settled before any is handed to the arena: retiring a span takes it off th's class
     * list, which writes the links of its neighbours there, spans of other SuperSlabs of th. Once a SuperSlab
     * is abandoned another thread may adopt it and reset (and reuse) its spans' links, so after the first
     * hand-over th must not touch its lists any more. */
    hak_list_for_each_safe(l, next, &th->superslabs) settle_superslab(th, hak_ss_of_link(l));
    for (unsigned c = 0; c < HAK_CLASS_COUNT; c++)
        th->avail[c].first = th->avail[c].last = NULL; /* the spans' links are dead: adoption resets them */
    /* What is left has live blocks: to the arena. */
    hak_list_for_each_safe(l, next, &th->superslabs) {
        hak_superslab_t *ss = hak_ss_of_link(l);
        hak_lock(&arena->lock);
        hak_list_remove(&th->superslabs, &ss->link);
        ss->owner = NULL;
        __atomic_store_n(&ss->owner_tid, 0, __ATOMIC_RELEASE);
        abandoned_push_locked(arena, ss);
        hak_unlock(&arena->lock);
    }
    hak_lock(&arena->lock);
    hak_list_remove(&arena->theaps, &th->link);
    hak_tiny_counts_add(&arena->retired, &th->counts); /* in the same section: statistics see them once */
    hak_unlock(&arena->lock);
    hak_meta_free(th, sizeof *th);
}

void hak_tiny_arena_orphan_others(hak_tiny_arena_t *arena, uintptr_t survivor) {
    hak_list_for_each_safe(t, tnext, &arena->theaps) {
        hak_theap_t *th = hak_list_entry(t, hak_theap_t, link);
        if (th->tid == survivor)
            continue;
        hak_list_for_each_safe(l, next, &th->superslabs) {
            hak_superslab_t *ss = hak_ss_of_link(l);
            hak_list_remove(&th->superslabs, &ss->link);
            ss->owner = NULL;
            __atomic_store_n(&ss->owner_tid, 0, __ATOMIC_RELEASE);
            abandoned_push_locked(arena, ss);
        }
        hak_list_remove(&arena->theaps, &th->link); /* the thread heap itself is leaked: its cache is lost */
    }
}

/* Heap destroy: the SuperSlab goes back with every block in it. */
static void release_destroyed(hak_superslab_t *ss) {
    hak_track_free_range((uint8_t *)ss + HAK_SS_HEADER_SIZE, HAK_SS_SIZE - HAK_SS_HEADER_SIZE);
    hak_ss_release(ss);
}

void hak_tiny_arena_release_all(hak_tiny_arena_t *arena) {
    hak_lock(&arena->lock);
    hak_list_for_each_safe(t, tnext, &arena->theaps) {
        hak_theap_t *th = hak_list_entry(t, hak_theap_t, link);
        hak_list_for_each_safe(l, next, &th->superslabs) release_destroyed(hak_ss_of_link(l));
        hak_meta_free(th, sizeof *th);
    }
    hak_list_for_each_safe(l, next, &arena->abandoned) release_destroyed(hak_ss_of_link(l));
    arena->theaps.first = arena->theaps.last = NULL;
    arena->abandoned.first = arena->abandoned.last = NULL;
    __atomic_store_n(&arena->abandoned_count, 0, __ATOMIC_RELAXED);
    hak_unlock(&arena->lock);
}

void hak_tiny_arena_settle_abandoned(hak_tiny_arena_t *arena) {
    hak_lock(&arena->lock);
    hak_list_for_each_safe(l, next, &arena->abandoned) {
        hak_superslab_t *ss = hak_ss_of_link(l);
        (void)__atomic_exchange_n(&ss->remote_mask, 0, __ATOMIC_ACQ_REL); /* as in adopt (span.c) */
        unsigned i = 0;
        for (hak_span_t *s; (s = hak_ss_next_span(ss, &i)) != NULL;) {
            arena->retired.remote_frees += hak_span_collect_remote(s);
            if (s->used == 0) {
                hak_quota_uncharge(arena->quota, (size_t)s->span_slabs * HAK_SLAB_SIZE);
                hak_ss_span_release(ss, s);
                arena->retired.spans_released++;
            }
        }
        if (hak_ss_is_empty(ss)) {
            abandoned_remove_locked(arena, ss);
            hak_ss_release(ss);
        }
    }
    hak_unlock(&arena->lock);
}

void hak_theap_release_empty(hak_theap_t *th) {
    hak_tcache_flush(th);
    hak_list_for_each_safe(l, next, &th->superslabs) {
        hak_superslab_t *ss = hak_ss_of_link(l);
        unsigned i = 0;
        for (hak_span_t *s; (s = hak_ss_next_span(ss, &i)) != NULL;) {
            if (th->direct[s->cls] == s)
                th->direct[s->cls] = &hak_span_empty; /* lets settling free the current span too */
            if (hak_theap_span_settle(th, ss, s))
                break;
            if (th->direct[s->cls] == &hak_span_empty && !hak_list_is_empty(&th->avail[s->cls]))
                th->direct[s->cls] = hak_avail_first(th, s->cls);
        }
    }
}

void hak_tiny_arena_request_flush(hak_tiny_arena_t *arena) {
    hak_lock(&arena->lock);
    for (hak_list_node_t *l = arena->theaps.first; l != NULL; l = l->next)
        __atomic_store_n(&hak_list_entry(l, hak_theap_t, link)->flush_requested, true, __ATOMIC_RELAXED);
    hak_unlock(&arena->lock);
}

void hak_theap_flush_requested(hak_theap_t *th) {
    __atomic_store_n(&th->flush_requested, false, __ATOMIC_RELAXED); /* before: a new request is kept */
    hak_tcache_flush(th);
}
