/* SPDX-License-Identifier: MIT */
/* Pointers outside hakmem's memory that reach the override's entry points. The region map marks every chunk
 * of hakmem's memory (SuperSlabs, and every chunk of every large mapping, live or cached), so a pointer in an
 * unmarked chunk is never hakmem's. It may be glibc's own: memory glibc's malloc handed out before the
 * override took effect, or through glibc's exported __libc_* entry points. Such a pointer goes back to glibc
 * only if it looks like a glibc chunk, read without any risk of a fault; anything else (a stack, a global, an
 * unmapped or wild address) is reported by hakmem with its value, and obeys HAKMEM_ON_ERROR. */
#ifndef HAKMEM_OVERRIDE_FOREIGN_H
#define HAKMEM_OVERRIDE_FOREIGN_H

#include <stdbool.h>
#include <stddef.h>

#include "common/compiler.h"

/* glibc's own allocator, exported under these names by every glibc since 2.2.5 (checked against 2.36 with
 * `nm -D libc.so.6`). Calling them directly needs no dlsym, so nothing here can recurse into malloc. */
extern void __libc_free(void *p);
extern void *__libc_realloc(void *p, size_t size);

/* p (outside hakmem's memory) is plausibly a live glibc chunk: 16-byte aligned, with a chunk header that can
 * be read and makes sense for glibc's main arena (inside the brk heap), an mmapped chunk, or another arena's
 * heap.
 */
hak_cold bool hak_foreign_is_glibc(const void *p);

/* Usable size of a glibc block: glibc's malloc_usable_size, found lazily through dlsym(RTLD_NEXT) (it has no
 * __libc_ alias). Only reached for foreign pointers, never on the allocation path. 0 if it cannot be found.
 */
hak_cold size_t hak_foreign_usable_size(void *p);

#endif
