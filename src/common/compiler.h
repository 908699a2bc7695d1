/* SPDX-License-Identifier: MIT */
/* Compiler helpers shared by every layer. */
#ifndef HAKMEM_COMMON_COMPILER_H
#define HAKMEM_COMMON_COMPILER_H

#define hak_likely(x) __builtin_expect(!!(x), 1)
#define hak_unlikely(x) __builtin_expect(!!(x), 0)
#define hak_noinline __attribute__((noinline))
#define hak_cold __attribute__((cold, noinline))
#define hak_always_inline inline __attribute__((always_inline))
#define HAK_CACHE_LINE 64
/* On declarations of the library's own globals: they are never interposed, so code in the shared library
 * reaches them PC-relative in one instruction instead of through the GOT. */
#define HAK_HIDDEN __attribute__((visibility("hidden")))

#endif
