/* SPDX-License-Identifier: MIT */
/* The override's malloc, aligned_alloc and free under hidden names, for its C++ operators (new_delete.cpp):
 * calls inside the library reach this library's code directly, whatever the dynamic linker binds malloc to,
 * and behave exactly as the exported functions do (glibc's own blocks go back to glibc, errors reported). */
#ifndef HAKMEM_OVERRIDE_OVERRIDE_H
#define HAKMEM_OVERRIDE_OVERRIDE_H

#include <stddef.h>

#include "common/compiler.h"

#ifdef __cplusplus
extern "C" {
#endif

/* nothrow: they never throw, so the operators need no exception handling around them (as glibc's __THROW) */
#define HAK_OVERRIDE_INTERNAL HAK_HIDDEN __attribute__((nothrow))

HAK_OVERRIDE_INTERNAL void *hak_override_malloc(size_t size);
HAK_OVERRIDE_INTERNAL void *hak_override_aligned_alloc(size_t alignment, size_t size); /* a power of two */
HAK_OVERRIDE_INTERNAL void hak_override_free(void *p);

#ifdef __cplusplus
}
#endif
#endif
