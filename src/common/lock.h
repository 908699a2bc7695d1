/* SPDX-License-Identifier: MIT */
/* Locks for the slow paths (registry, heap lists, caches). Plain pthread mutexes, never recursive: a path
 * that would take a lock twice is a bug in the lock order, and an error-checking build would say so.
 *
 * Lock order (a thread holding one may take only those after it):
 *   heap registry (heap/heap.c)
 *   -> a heap's lock (heap/heap.h: its life: destroy against thread exit and statistics)
 *   -> the heap's tiny arena lock (tiny/theap.h) and its large-block list lock (bigcache/large.h)
 *   -> the SuperSlab cache (superslab/superslab.c) and the BigCache (bigcache/bigcache.c)
 *   -> the metadata allocator (common/meta.c)
 * fork() takes them all in this order (heap/heap.c) and the child re-initialises them. */
#ifndef HAKMEM_COMMON_LOCK_H
#define HAKMEM_COMMON_LOCK_H

#include <pthread.h>

typedef pthread_mutex_t hak_lock_t;
#define HAK_LOCK_INIT PTHREAD_MUTEX_INITIALIZER

static inline void hak_lock(hak_lock_t *l) { pthread_mutex_lock(l); }
static inline void hak_unlock(hak_lock_t *l) { pthread_mutex_unlock(l); }
static inline void hak_lock_init(hak_lock_t *l) { pthread_mutex_init(l, NULL); }
static inline void hak_lock_destroy(hak_lock_t *l) { pthread_mutex_destroy(l); }

#endif
