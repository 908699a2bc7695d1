/* Foreign pointers in the override (see foreign.h). */
#include "override/foreign.h"

#include <dlfcn.h>
#include <malloc.h>

typedef size_t (*usable_fn)(void *);

/* Resolved on first use; racing threads resolve the same value, so a relaxed store/load suffices. */
static usable_fn glibc_usable;
static int glibc_usable_done;

size_t hak_foreign_usable_size(void *p) {
    usable_fn fn;
    if (__atomic_load_n(&glibc_usable_done, __ATOMIC_ACQUIRE)) {
        fn = __atomic_load_n(&glibc_usable, __ATOMIC_RELAXED);
    } else {
        /* dlsym may call malloc (it cannot reach this function again: it allocates, never sizes foreign
         * blocks). Refuse to find our own definition, which would recurse forever. */
        fn = (usable_fn)dlsym(RTLD_NEXT, "malloc_usable_size");
        if (fn == (usable_fn)malloc_usable_size)
            fn = NULL;
        __atomic_store_n(&glibc_usable, fn, __ATOMIC_RELAXED);
        __atomic_store_n(&glibc_usable_done, 1, __ATOMIC_RELEASE);
    }
    return fn != NULL ? fn(p) : 0;
}
