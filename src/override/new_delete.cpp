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

#include <cstdlib>
#include <unistd.h>

// The C++ runtime without depending on it: every symbol of it these operators use is a weak reference, and the
// override links no C++ library. Linking libstdc++ into the override cost every preloaded C program 1.4 MiB
// of resident memory (the library's pages, and its emergency exception pool allocated at load: /bin/true went
// from 1.1 MiB to 2.6 MiB peak RSS). A C++ program has the runtime loaded, and these resolve to it; a C program
// never calls operator new, so they stay null and are never reached; the one case in between (an allocation
// failure in C++ code of a program started without the runtime, loaded later with dlopen) aborts with a
// message below rather than jumping to a null address.
__asm__(".weak _ZSt15get_new_handlerv\n.weak _ZNSt9bad_allocD1Ev\n.weak _ZTISt9bad_alloc\n"
        ".weak _ZTVSt9bad_alloc\n.weak _ZSt9terminatev\n.weak __cxa_allocate_exception\n.weak __cxa_throw\n"
        ".weak __cxa_begin_catch\n.weak __cxa_end_catch\n.weak __gxx_personality_v0\n");
extern "C" char hak_cxx_runtime_probe __asm__("__cxa_throw") __attribute__((weak));

static void hak_cxx_runtime_check() {
    if (&hak_cxx_runtime_probe != nullptr)
        return;
    static const char msg[] = "hakmem: error: operator new failed and no C++ runtime is loaded to report it\n";
    (void)!write(2, msg, sizeof msg - 1);
    std::abort();
}
#define HAKMEM_NEW_DELETE_FAILING() hak_cxx_runtime_check()

#define HAKMEM_NEW_DELETE_ALLOC(size) hak_override_malloc(size)
#define HAKMEM_NEW_DELETE_ALIGNED_ALLOC(alignment, size) hak_override_aligned_alloc(alignment, size)
#define HAKMEM_NEW_DELETE_FREE(p) hak_override_free(p)
#include "hakmem/hakmem_new_delete.h"

// Every form, whatever the compiler's defaults: the build compiles this file as C++17 with
// -fsized-deallocation.
#if !defined(__cpp_sized_deallocation) || !defined(__cpp_aligned_new)
#error "new_delete.cpp needs sized deallocation and aligned new (C++17, -fsized-deallocation)"
#endif
