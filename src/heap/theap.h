/* Thread heaps: creation, span supply, remote-free collection, abandonment at thread exit and adoption. */
#ifndef HAKMEM_HEAP_THEAP_H
#define HAKMEM_HEAP_THEAP_H

#include "heap/heap.h"

/* A new span for class cls, owned by th (from th's SuperSlabs, an adopted one, or a fresh one).
 * NULL with errno = ENOMEM when out of memory or over the heap's limit. */
hak_span_t *hak_theap_span_new(hak_theap_t *th, unsigned cls);
/* Gives an empty span that is not its class's current one back to its SuperSlab (taking it off the class
 * list), and the SuperSlab back to the global cache when it becomes empty. */
bool hak_theap_span_free(hak_theap_t *th, hak_superslab_t *ss, hak_span_t *s); /* true: ss released */
/* Collects remote frees flagged in th's SuperSlabs; full slabs that got blocks back become available. */
void hak_theap_collect_remote(hak_theap_t *th);
/* Makes th the owner of an abandoned SuperSlab; false if it was empty and went back to the cache. */
bool hak_theap_adopt(hak_theap_t *th, hak_superslab_t *ss);
/* Creates the calling thread's heap for `heap` (heap lock not held). */
hak_theap_t *hak_theap_create(hak_heap_t *heap);
/* Hands th's SuperSlabs to its heap (or back to the cache when empty) and frees th. Heap lock held. */
void hak_theap_abandon_locked(hak_theap_t *th);
/* hak_collect for the calling thread: collects remote frees and gives back every empty span, including the
 * current one of each class. */
void hak_theap_release_empty(hak_theap_t *th);
/* Collects remote frees into the heap's abandoned SuperSlabs (nobody owns them while they sit on the list,
 * and the heap lock is held) and gives back the spans and SuperSlabs that turned out empty. */
void hak_heap_settle_abandoned_locked(hak_heap_t *heap);
/* Releases every SuperSlab of th to the global cache without looking at blocks. Heap lock held. */
void hak_theap_drop_locked(hak_theap_t *th);

#endif
