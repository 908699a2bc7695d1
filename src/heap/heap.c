/* Heap registry, per-thread heap lookup, thread exit, quota accounting and fork safety. */
#include "heap/heap.h"

#include <errno.h>
#include <pthread.h>
#include <string.h>

#include "common/options.h"
#include "bigcache/bigcache.h"
#include "bigcache/large.h"
#include "common/meta.h"
#include "heap/theap.h"
#include "tiny/tcache.h"

hak_theap_t hak_theap_empty = {.direct = {[0 ... HAK_CLASS_COUNT - 1] = &hak_span_empty}};
hak_heap_t hak_heap_main = {.id = 0, .gen = 1, .name = "default", .lock = HAK_RECURSIVE_LOCK_INIT};

__thread hak_theap_t *hak_tls_theap = &hak_theap_empty;
__thread hak_tslot_t *hak_tls_slots;
__thread uint32_t hak_tls_slot_count;
__thread char hak_tls_id_anchor;

/* Registry of live heaps, indexed by id. Slot 0 is the default heap. */
static hak_lock_t registry_lock = HAK_LOCK_INIT;
static hak_heap_t **registry;
static uint32_t registry_cap;
static uint64_t next_gen = 2;

static pthread_key_t thread_key;
static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static int init_done;

static void thread_exit(void *arg);

static void fork_prepare(void) {
    hak_heap_fork_prepare();
    hak_bigcache_fork_prepare();
    hak_ss_fork_prepare();
    hak_meta_fork_prepare();
}
static void fork_parent(void) {
    hak_meta_fork_parent();
    hak_ss_fork_parent();
    hak_bigcache_fork_parent();
    hak_heap_fork_parent();
}
static void fork_child(void) {
    hak_meta_fork_child();
    hak_ss_fork_child();
    hak_bigcache_fork_child();
    hak_heap_fork_child();
}

static void init_once_fn(void) {
    hak_options_load();
    pthread_key_create(&thread_key, thread_exit);
    hak_stats_init();
    /* Marked done before pthread_atfork: glibc allocates there once its inline handler slots are used up,
     * and that malloc must not re-enter this pthread_once. */
    __atomic_store_n(&init_done, 1, __ATOMIC_RELEASE);
    pthread_atfork(fork_prepare, fork_parent, fork_child);
}

void hak_init(void) {
    if (hak_likely(__atomic_load_n(&init_done, __ATOMIC_ACQUIRE)))
        return;
    pthread_once(&init_once, init_once_fn);
}

__attribute__((constructor)) static void hak_init_at_load(void) { hak_init(); }

/* ---- per-thread heaps ---- */

static bool grow_slots(uint32_t need) {
    uint32_t count = hak_tls_slot_count ? hak_tls_slot_count : 8;
    while (count <= need)
        count *= 2;
    hak_tslot_t *slots = hak_meta_alloc(count * sizeof *slots);
    if (slots == NULL)
        return false;
    if (hak_tls_slots != NULL) {
        memcpy(slots, hak_tls_slots, hak_tls_slot_count * sizeof *slots);
        hak_meta_free(hak_tls_slots, hak_tls_slot_count * sizeof *slots);
    }
    hak_tls_slots = slots;
    hak_tls_slot_count = count;
    return true;
}

hak_theap_t *hak_theap_get_slow(hak_heap_t *heap) {
    hak_init();
    if (heap != &hak_heap_main && heap->id >= hak_tls_slot_count && !grow_slots(heap->id))
        return NULL;
    hak_theap_t *th = hak_theap_create(heap);
    if (th == NULL)
        return NULL;
    if (heap == &hak_heap_main) {
        hak_tls_theap = th;
    } else {
        hak_tls_slots[heap->id].theap = th;
        hak_tls_slots[heap->id].gen = heap->gen;
    }
    pthread_setspecific(thread_key, (void *)1); /* non-NULL so that thread_exit runs */
    return th;
}

/* Thread exit: every thread heap of this thread hands its SuperSlabs to its heap. Heaps destroyed meanwhile
 * already released this thread's state, which the generation check detects. */
static void thread_exit(void *arg) {
    (void)arg;
    hak_theap_t *th = hak_tls_theap;
    if (th != &hak_theap_empty) {
        hak_tls_theap = &hak_theap_empty;
        hak_tcache_flush(th); /* outside the lock (abandon flushes too, but finds the cache empty) */
        hak_lock(&hak_heap_main.lock);
        hak_theap_abandon_locked(th);
        hak_unlock(&hak_heap_main.lock);
    }
    hak_tslot_t *slots = hak_tls_slots;
    uint32_t count = hak_tls_slot_count;
    hak_tls_slots = NULL;
    hak_tls_slot_count = 0;
    for (uint32_t id = 1; id < count; id++) {
        if (slots[id].theap == NULL)
            continue;
        hak_lock(&registry_lock);
        hak_heap_t *heap = id < registry_cap ? registry[id] : NULL;
        if (heap != NULL && heap->gen == slots[id].gen) {
            hak_lock(&heap->lock);
            hak_unlock(&registry_lock);
            hak_theap_abandon_locked(slots[id].theap);
            hak_unlock(&heap->lock);
        } else {
            hak_unlock(&registry_lock);
        }
    }
    if (slots != NULL)
        hak_meta_free(slots, count * sizeof *slots);
}

hak_superslab_t *hak_heap_adopt(hak_theap_t *th) {
    hak_heap_t *heap = th->heap;
    for (;;) {
        if (__atomic_load_n(&heap->abandoned, __ATOMIC_RELAXED) == NULL)
            return NULL;
        hak_lock(&heap->lock);
        hak_superslab_t *ss = heap->abandoned;
        if (ss != NULL) {
            __atomic_store_n(&heap->abandoned, ss->next, __ATOMIC_RELAXED);
            if (ss->next)
                ss->next->prev = NULL;
            ss->next = ss->prev = NULL;
        }
        hak_unlock(&heap->lock);
        if (ss == NULL)
            return NULL;
        if (hak_theap_adopt(th, ss))
            return ss;
    }
}

/* ---- quota ---- */

bool hak_heap_charge(hak_heap_t *heap, size_t bytes) {
    size_t now = __atomic_add_fetch(&heap->held_bytes, bytes, __ATOMIC_RELAXED);
    if (heap->limit_bytes != 0 && now > heap->limit_bytes) {
        __atomic_sub_fetch(&heap->held_bytes, bytes, __ATOMIC_RELAXED);
        return false;
    }
    return true;
}

void hak_heap_uncharge(hak_heap_t *heap, size_t bytes) {
    __atomic_sub_fetch(&heap->held_bytes, bytes, __ATOMIC_RELAXED);
}

/* ---- create / destroy ---- */

hak_heap_t *hak_heap_create(const hak_heap_options_t *opts) {
    hak_init();
    hak_heap_t *heap = hak_meta_alloc(sizeof *heap);
    if (heap == NULL) {
        errno = ENOMEM;
        return NULL;
    }
    hak_lock_init_recursive(&heap->lock);
    const char *name = opts && opts->name ? opts->name : "heap";
    for (size_t i = 0; i + 1 < sizeof heap->name && name[i] != '\0'; i++)
        heap->name[i] = name[i]; /* the rest is zero: hak_meta_alloc clears */
    heap->limit_bytes = opts ? opts->limit_bytes : 0;
    hak_lock(&registry_lock);
    uint32_t id = 1;
    while (id < registry_cap && registry[id] != NULL)
        id++;
    if (id >= registry_cap) {
        uint32_t cap = registry_cap ? registry_cap * 2 : 16;
        hak_heap_t **table = hak_meta_alloc(cap * sizeof *table);
        if (table == NULL) {
            hak_unlock(&registry_lock);
            hak_meta_free(heap, sizeof *heap);
            errno = ENOMEM;
            return NULL;
        }
        if (registry != NULL) {
            memcpy(table, registry, registry_cap * sizeof *table);
            hak_meta_free(registry, registry_cap * sizeof *table);
        }
        table[0] = &hak_heap_main;
        registry = table;
        registry_cap = cap;
    }
    heap->id = id;
    heap->gen = next_gen++;
    registry[id] = heap;
    hak_unlock(&registry_lock);
    return heap;
}

void hak_heap_destroy(hak_heap_t *heap) {
    if (heap == NULL || heap == &hak_heap_main)
        return; /* the default heap lives as long as the process */
    hak_lock(&registry_lock);
    registry[heap->id] = NULL;
    hak_lock(&heap->lock);
    hak_unlock(&registry_lock);
    while (heap->theaps != NULL)
        hak_theap_drop_locked(heap->theaps);
    hak_superslab_t *next;
    for (hak_superslab_t *ss = heap->abandoned; ss != NULL; ss = next) {
        next = ss->next;
        hak_ss_release(ss);
    }
    __atomic_store_n(&heap->abandoned, NULL, __ATOMIC_RELAXED);
    hak_large_release_all_locked(heap);
    hak_unlock(&heap->lock);
    pthread_mutex_destroy(&heap->lock);
    heap->gen = 0;
    hak_meta_free(heap, sizeof *heap);
}

hak_heap_t *hak_heap_default(void) { return &hak_heap_main; }

void hak_heap_foreach(void (*fn)(hak_heap_t *heap, void *arg), void *arg) {
    hak_lock(&registry_lock);
    fn(&hak_heap_main, arg);
    for (uint32_t id = 1; id < registry_cap; id++)
        if (registry[id] != NULL)
            fn(registry[id], arg);
    hak_unlock(&registry_lock);
}

/* ---- fork: hold every lock across fork so the child sees consistent lists ---- */

void hak_heap_fork_prepare(void) {
    hak_lock(&registry_lock);
    hak_lock(&hak_heap_main.lock);
    for (uint32_t id = 1; id < registry_cap; id++)
        if (registry[id] != NULL)
            hak_lock(&registry[id]->lock);
}

void hak_heap_fork_parent(void) {
    for (uint32_t id = 1; id < registry_cap; id++)
        if (registry[id] != NULL)
            hak_unlock(&registry[id]->lock);
    hak_unlock(&hak_heap_main.lock);
    hak_unlock(&registry_lock);
}

void hak_heap_fork_child(void) {
    for (uint32_t id = 1; id < registry_cap; id++)
        if (registry[id] != NULL)
            hak_lock_init_recursive(&registry[id]->lock);
    hak_lock_init_recursive(&hak_heap_main.lock);
    hak_lock_init(&registry_lock);
}
