/* SPDX-License-Identifier: MIT */
/* Internal metadata allocator (thread heaps, heap objects, per-thread slot tables). It must not use malloc,
 * so it carves zeroed objects from its own mappings; freed objects are kept on per-size lists for reuse. */
#ifndef HAKMEM_COMMON_META_H
#define HAKMEM_COMMON_META_H

#include <stddef.h>

void *hak_meta_alloc(size_t size); /* zeroed; NULL if the OS refuses */
void hak_meta_free(void *p, size_t size);
void hak_meta_fork_prepare(void);
void hak_meta_fork_parent(void);
void hak_meta_fork_child(void);

#endif
