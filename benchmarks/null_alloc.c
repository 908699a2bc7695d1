/* SPDX-License-Identifier: MIT */
/* A null allocator for benchmarks/fastpath_instructions.sh: malloc of a small block returns one static buffer
 * and free of it returns, so a loop run against it costs the loop and the two calls through the PLT, nothing
 * else. Subtracting that from a real allocator's count leaves its own malloc+free. Anything else (the C
 * runtime's own allocations) goes to glibc. Linked into fastpath_pair_null only: an LD_PRELOAD of it would
 * also be loaded into valgrind's launcher, which cannot live with it. */
#include <stddef.h>
#include <stdint.h>

void *__libc_malloc(size_t size);
void __libc_free(void *p);
void *__libc_calloc(size_t n, size_t size);
void *__libc_realloc(void *p, size_t size);

static _Alignas(64) char null_block[512];

void *malloc(size_t size) { return size <= sizeof null_block ? null_block : __libc_malloc(size); }

void free(void *p) {
    if (p != null_block)
        __libc_free(p);
}

void *calloc(size_t n, size_t size) { return __libc_calloc(n, size); }

void *realloc(void *p, size_t size) { return p == null_block ? NULL : __libc_realloc(p, size); }
