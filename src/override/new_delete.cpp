// SPDX-License-Identifier: MIT
// C++'s replaceable global operators new and delete, every form of C++17 (plain, array, nothrow, sized
// delete, std::align_val_t and their combinations), for libhakmem_override.so and libhakmem_override.a. They
// are the ones of the public header hakmem/hakmem_new_delete.h (semantics described there: the new-handler
// loop, std::bad_alloc, nullptr from the nothrow forms), on top of the override's own malloc, aligned_alloc
// and free instead of hak_alloc and hak_free: the small-size fast path inlined, and blocks that are glibc's
// (allocated before the override took effect) handed back to glibc rather than reported.
//
// Defining them makes a C++ program linked with the shared override depend on it for operator new, so the
// linker keeps it under --as-needed; preloaded, they take the place of libstdc++'s.
#include "override/override.h"

#define HAKMEM_NEW_DELETE_ALLOC(size) hak_override_malloc(size)
#define HAKMEM_NEW_DELETE_ALIGNED_ALLOC(alignment, size) hak_override_aligned_alloc(alignment, size)
#define HAKMEM_NEW_DELETE_FREE(p) hak_override_free(p)
#include "hakmem/hakmem_new_delete.h"

// Every form, whatever the compiler's defaults: the build compiles this file as C++17 with
// -fsized-deallocation.
#if !defined(__cpp_sized_deallocation) || !defined(__cpp_aligned_new)
#error "new_delete.cpp needs sized deallocation and aligned new (C++17, -fsized-deallocation)"
#endif
