/* Blocks hakmem does not own that reach the override's entry points: memory glibc's own malloc handed out
 * before the override took effect (or through glibc's exported __libc_* entry points). The region map tells
 * them apart with one load: a 2 MiB chunk is either wholly hakmem's or not at all, so a pointer in a chunk
 * the map marks HAK_REGION_NONE can never be a hakmem block and goes back to glibc. */
#ifndef HAKMEM_OVERRIDE_FOREIGN_H
#define HAKMEM_OVERRIDE_FOREIGN_H

#include <stddef.h>

#include "common/compiler.h"

/* glibc's own allocator, exported under these names by every glibc since 2.2.5 (checked against 2.36 with
 * `nm -D libc.so.6`). Calling them directly needs no dlsym, so nothing here can recurse into malloc. */
extern void __libc_free(void *p);
extern void *__libc_realloc(void *p, size_t size);

/* Usable size of a glibc block: glibc's malloc_usable_size, found lazily through dlsym(RTLD_NEXT) (it has no
 * __libc_ alias). Only reached for foreign pointers, never on the allocation path. 0 if it cannot be found.
 */
hak_cold size_t hak_foreign_usable_size(void *p);

#endif
