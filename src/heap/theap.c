#include "heap/theap.h"

#include <errno.h>
#include <limits.h>

#include "bigcache/bigcache.h"
#include "common/meta.h"
#include "pool/pool.h"
#include "tiny/slab_list.h"
#include "tiny/tcache.h"

static bool span_settle(hak_theap_t *th, hak_superslab_t *ss, hak_span_t *s);

#define HAK_SPAN_FIT_LOOKS 32 /* SuperSlabs examined after the first that fits */

static void ss_link(hak_superslab_t **head, hak_superslab_t *ss) {
    ss->prev = NULL;
    ss->next = *head;
    if (*head)
        (*head)->prev = ss;
    *head = ss;
}

static void ss_unlink(hak_superslab_t **head, hak_superslab_t *ss) {
    if (ss->prev)
        ss->prev->next = ss->next;
    else
        *head = ss->next;
    if (ss->next)
        ss->next->prev = ss->prev;
    ss->next = ss->prev = NULL;
}

/* The heap's list of abandoned SuperSlabs; its head is also read without the lock (adoption's quick check).
 */
static void abandoned_push_locked(hak_heap_t *heap, hak_superslab_t *ss) {
    ss->prev = NULL;
    ss->next = heap->abandoned;
    if (ss->next)
        ss->next->prev = ss;
    __atomic_store_n(&heap->abandoned, ss, __ATOMIC_RELAXED);
}

static void abandoned_unlink_locked(hak_heap_t *heap, hak_superslab_t *ss) {
    if (ss->prev)
        ss->prev->next = ss->next;
    else
        __atomic_store_n(&heap->abandoned, ss->next, __ATOMIC_RELAXED);
    if (ss->next)
        ss->next->prev = ss->prev;
    ss->next = ss->prev = NULL;
}

/* A thread heap's SuperSlab list changes under its heap's lock, so statistics can walk it from any thread. */
static void theap_ss_link(hak_theap_t *th, hak_superslab_t *ss) {
    hak_lock(&th->heap->lock);
    ss_link(&th->superslabs, ss);
    hak_unlock(&th->heap->lock);
}

static void theap_ss_unlink(hak_theap_t *th, hak_superslab_t *ss) {
    hak_lock(&th->heap->lock);
    ss_unlink(&th->superslabs, ss);
    hak_unlock(&th->heap->lock);
}

static void ss_take_ownership(hak_theap_t *th, hak_superslab_t *ss) {
    ss->owner = th;
    __atomic_store_n(&ss->heap, th->heap, __ATOMIC_RELAXED);
    __atomic_store_n(&ss->owner_tid, th->tid, __ATOMIC_RELEASE);
    theap_ss_link(th, ss);
}

static hak_span_t *span_carve(hak_superslab_t *ss, int i, unsigned n, unsigned cls) {
    return hak_ss_span_init(ss, (unsigned)i, n, cls, hak_class_size(cls));
}

hak_span_t *hak_theap_span_new(hak_theap_t *th, unsigned cls) {
    unsigned n = hak_span_slabs_for(cls);
    size_t charge = (size_t)n * HAK_SLAB_SIZE;
    if (!hak_heap_charge(th->heap, charge)) {
        /* At the limit: blocks freed into abandoned SuperSlabs may have emptied spans still charged. */
        hak_lock(&th->heap->lock);
        hak_heap_settle_abandoned_locked(th->heap);
        hak_unlock(&th->heap->lock);
        hak_theap_collect_remote(th);
        hak_tcache_flush(th); /* cached blocks may pin spans that are otherwise empty */
        if (!hak_heap_charge(th->heap, charge)) {
            errno = ENOMEM;
            return NULL;
        }
    }
    /* Best fit over the owned SuperSlabs: first fit broke up the runs that longer spans need, and each miss
     * takes another SuperSlab. The search stops a few SuperSlabs after the first fit: each look is a cache
     * miss, and a thread heap may own hundreds. */
    hak_superslab_t *best = NULL;
    int best_i = -1;
    unsigned best_cost = UINT_MAX, cost, budget = HAK_SPAN_FIT_LOOKS;
    for (hak_superslab_t *ss = th->superslabs; ss != NULL && budget != 0; ss = ss->next) {
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
    if (best != NULL)
        return span_carve(best, best_i, n, cls);
    hak_superslab_t *ss;
    while ((ss = hak_heap_adopt(th)) != NULL) {
        int i = hak_ss_find_span(ss, n, hak_class_size(cls), &cost);
        if (i >= 0)
            return span_carve(ss, i, n, cls);
    }
    bool resident;
    ss = hak_ss_acquire(&resident);
    if (ss == NULL) {
        hak_bigcache_collect(true); /* out of memory or address space: cached large mappings go first */
        ss = hak_ss_acquire(&resident);
    }
    /* A new SuperSlab is about to be faulted in while the free slabs of the owned ones are too scattered for
     * this span: give their pages back, so resident memory tracks the spans in use. A cached SuperSlab that
     * is still resident adds nothing, and purging then only made the next spans fault the slabs in again. */
    if (ss != NULL && !resident)
        for (hak_superslab_t *o = th->superslabs; o != NULL; o = o->next)
            hak_ss_purge_free_slabs(o);
    if (ss == NULL) {
        hak_heap_uncharge(th->heap, charge);
        errno = ENOMEM;
        return NULL;
    }
    ss_take_ownership(th, ss);
    return span_carve(ss, hak_ss_find_span(ss, n, hak_class_size(cls), &cost), n, cls);
}

bool hak_theap_span_free(hak_theap_t *th, hak_superslab_t *ss, hak_span_t *s) {
    if (!(s->flags & HAK_SPAN_FULL))
        hak_avail_remove(th, s); /* full spans are on no list */
    hak_heap_uncharge(th->heap, (size_t)s->span_slabs * HAK_SLAB_SIZE);
    hak_ss_span_release(ss, s);
    if (!hak_ss_is_empty(ss))
        return false;
    theap_ss_unlink(th, ss);
    hak_ss_release(ss);
    return true;
}

/* Settles one span after its owner changed or remote frees arrived: collects remote frees, retires it when
 * empty, and puts it on the right list. Returns true if the SuperSlab itself was released. */
static bool span_settle(hak_theap_t *th, hak_superslab_t *ss, hak_span_t *s) {
    hak_span_collect_remote(s);
    if (s->used == 0 && th->direct[s->cls] != s)
        return hak_theap_span_free(th, ss, s);
    if ((s->flags & HAK_SPAN_FULL) && s->free != NULL)
        hak_span_unfull(th, s);
    return false;
}

void hak_theap_collect_remote(hak_theap_t *th) {
    hak_superslab_t *next;
    for (hak_superslab_t *ss = th->superslabs; ss != NULL; ss = next) {
        next = ss->next;
        if (__atomic_load_n(&ss->remote_mask, __ATOMIC_RELAXED) == 0)
            continue;
        uint32_t m = __atomic_exchange_n(&ss->remote_mask, 0, __ATOMIC_ACQUIRE);
        while (m != 0) {
            unsigned i = (unsigned)__builtin_ctz(m);
            m &= m - 1;
            hak_span_t *s = &ss->spans[i];
            if (s->span_slabs == 0 || ss->span_back[i] != 0)
                continue; /* stale notification: the span was freed or re-carved meanwhile */
            if (span_settle(th, ss, s))
                break;
        }
    }
}

/* Adoption: th becomes the owner of an abandoned SuperSlab and its spans join th's lists. Returns false if
 * every span turned out empty, in which case the SuperSlab went back to the global cache. */
bool hak_theap_adopt(hak_theap_t *th, hak_superslab_t *ss) {
    ss_take_ownership(th, ss);
    __atomic_store_n(&ss->remote_mask, 0, __ATOMIC_RELAXED);
    unsigned i = 0;
    for (hak_span_t *s; (s = hak_ss_next_span(ss, &i)) != NULL;) {
        s->next = s->prev = NULL; /* links of the previous owner's lists */
        hak_store_relaxed(&s->flags, (uint8_t)(s->flags | HAK_SPAN_FULL));
        if (s->free == NULL) {
            s->free = s->local_free;
            s->local_free = NULL;
        }
        if (span_settle(th, ss, s))
            return false;
        if ((s->flags & HAK_SPAN_FULL) && s->capacity < s->reserved)
            hak_span_unfull(th, s); /* room to extend */
    }
    return true;
}

hak_theap_t *hak_theap_create(hak_heap_t *heap) {
    hak_theap_t *th = hak_meta_alloc(sizeof *th);
    if (th == NULL)
        return NULL;
    for (unsigned c = 0; c < HAK_CLASS_COUNT; c++)
        th->direct[c] = &hak_span_empty;
    hak_tcache_init(th);
    th->heap = heap;
    th->tid = hak_thread_id();
    hak_lock(&heap->lock);
    th->next = heap->theaps;
    if (th->next)
        th->next->prev = th;
    heap->theaps = th;
    hak_unlock(&heap->lock);
    return th;
}

static void theap_unlink_locked(hak_theap_t *th) {
    hak_heap_t *heap = th->heap;
    if (th->prev)
        th->prev->next = th->next;
    else
        heap->theaps = th->next;
    if (th->next)
        th->next->prev = th->prev;
}

void hak_theap_abandon_locked(hak_theap_t *th) {
    hak_heap_t *heap = th->heap;
    hak_tcache_flush(th);
    for (unsigned c = 0; c < HAK_CLASS_COUNT; c++)
        th->direct[c] = &hak_span_empty; /* lets span_settle retire every empty span */
    hak_superslab_t *next;
    for (hak_superslab_t *ss = th->superslabs; ss != NULL; ss = next) {
        next = ss->next;
        bool released = false;
        unsigned i = 0;
        for (hak_span_t *s; !released && (s = hak_ss_next_span(ss, &i)) != NULL;) {
            released = span_settle(th, ss, s);
        }
        if (released)
            continue;
        /* Still has live blocks: hand it to the heap. Its spans leave th's lists (links are reset on
         * adoption). */
        ss_unlink(&th->superslabs, ss);
        ss->owner = NULL;
        __atomic_store_n(&ss->owner_tid, 0, __ATOMIC_RELEASE);
        abandoned_push_locked(heap, ss);
    }
    theap_unlink_locked(th);
    hak_meta_free(th, sizeof *th);
}

void hak_theap_drop_locked(hak_theap_t *th) {
    hak_superslab_t *next;
    for (hak_superslab_t *ss = th->superslabs; ss != NULL; ss = next) {
        next = ss->next;
        hak_ss_release(ss);
    }
    theap_unlink_locked(th);
    hak_meta_free(th, sizeof *th);
}

void hak_heap_settle_abandoned_locked(hak_heap_t *heap) {
    hak_superslab_t *next;
    for (hak_superslab_t *ss = heap->abandoned; ss != NULL; ss = next) {
        next = ss->next;
        __atomic_store_n(&ss->remote_mask, 0, __ATOMIC_RELAXED);
        unsigned i = 0;
        for (hak_span_t *s; (s = hak_ss_next_span(ss, &i)) != NULL;) {
            hak_span_collect_remote(s);
            if (s->used == 0) {
                hak_heap_uncharge(heap, (size_t)s->span_slabs * HAK_SLAB_SIZE);
                hak_ss_span_release(ss, s);
            }
        }
        if (hak_ss_is_empty(ss)) {
            abandoned_unlink_locked(heap, ss);
            hak_ss_release(ss);
        }
    }
}

void hak_theap_release_empty(hak_theap_t *th) {
    hak_tcache_flush(th);
    hak_superslab_t *next;
    for (hak_superslab_t *ss = th->superslabs; ss != NULL; ss = next) {
        next = ss->next;
        unsigned i = 0;
        for (hak_span_t *s; (s = hak_ss_next_span(ss, &i)) != NULL;) {
            if (th->direct[s->cls] == s)
                th->direct[s->cls] = &hak_span_empty; /* lets span_settle free the current span too */
            if (span_settle(th, ss, s))
                break;
            if (th->direct[s->cls] == &hak_span_empty && th->avail[s->cls] != NULL)
                th->direct[s->cls] = th->avail[s->cls];
        }
    }
}
