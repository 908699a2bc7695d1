/* SPDX-License-Identifier: MIT */
/* Each thread's thread heaps: the lookup slots of private heaps, creation on first use, and thread exit. */
#include <pthread.h>
#include <string.h>

#include "common/meta.h"
#include "heap/heap.h"

hak_theap_t hak_theap_empty = {.direct = {[0 ... HAK_CLASS_COUNT - 1] = &hak_span_empty},
                               .arena = &hak_heap_main.slabs};
__thread hak_theap_t *hak_tls_theap = &hak_theap_empty;
__thread hak_tslot_t *hak_tls_slots;
__thread uint32_t hak_tls_slot_count;

static pthread_key_t thread_key;

static void thread_exit(void *arg);

void hak_thread_init(void) { pthread_key_create(&thread_key, thread_exit); }

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
    hak_theap_t *th = hak_theap_create(&heap->slabs);
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

hak_theap_t *hak_theap_first_use(void) { return hak_theap_get_slow(&hak_heap_main); }

/* Thread exit: every thread heap of this thread hands its SuperSlabs to its heap. The default heap is never
 * destroyed; a private one is held by its lock meanwhile, and one destroyed earlier already released this
 * thread's state, which the generation check detects. */
static void thread_exit(void *arg) {
    (void)arg;
    hak_theap_t *th = hak_tls_theap;
    if (th != &hak_theap_empty) {
        hak_tls_theap = &hak_theap_empty;
        hak_theap_abandon(th);
    }
    hak_tslot_t *slots = hak_tls_slots;
    uint32_t count = hak_tls_slot_count;
    hak_tls_slots = NULL;
    hak_tls_slot_count = 0;
    for (uint32_t id = 1; id < count; id++) {
        if (slots[id].theap == NULL)
            continue;
        hak_heap_registry_lock();
        hak_heap_t *heap = hak_heap_lookup_locked(id, slots[id].gen);
        if (heap != NULL) {
            hak_lock(&heap->lock);
            hak_heap_registry_unlock();
            hak_theap_abandon(slots[id].theap);
            hak_unlock(&heap->lock);
        } else {
            hak_heap_registry_unlock();
        }
    }
    if (slots != NULL)
        hak_meta_free(slots, count * sizeof *slots);
}
