/* Locks for the slow paths (registry, heap lists, caches). Plain pthread mutexes: they never allocate. */
#ifndef HAKMEM_COMMON_LOCK_H
#define HAKMEM_COMMON_LOCK_H

#include <pthread.h>

typedef pthread_mutex_t hak_lock_t;
#define HAK_LOCK_INIT PTHREAD_MUTEX_INITIALIZER

static inline void hak_lock(hak_lock_t *l) { pthread_mutex_lock(l); }
static inline void hak_unlock(hak_lock_t *l) { pthread_mutex_unlock(l); }
static inline void hak_lock_init(hak_lock_t *l) { pthread_mutex_init(l, NULL); }

/* Heap locks are recursive: thread exit holds one while the span code it calls takes it again. */
#define HAK_RECURSIVE_LOCK_INIT PTHREAD_RECURSIVE_MUTEX_INITIALIZER_NP
static inline void hak_lock_init_recursive(hak_lock_t *l) {
    pthread_mutexattr_t attr;
    pthread_mutexattr_init(&attr);
    pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_RECURSIVE);
    pthread_mutex_init(l, &attr);
    pthread_mutexattr_destroy(&attr);
}

#endif
