/* SPDX-License-Identifier: MIT */
/* hakmem_new_delete.h: C++'s global operators new and delete on top of hakmem's API.
 *
 * For a program linked with hakmem::hakmem or hakmem::hakmem_static (-lhakmem), not with the override
 * library, which defines these operators itself. Include this header in exactly ONE source file of the
 * program:
 *
 *     #include <hakmem/hakmem_new_delete.h>
 *
 * It defines the replaceable global allocation and deallocation functions, so that every new-expression of
 * the program, the C++ standard library's included, allocates from hakmem's default heap (hak_alloc,
 * hak_aligned_alloc) and every delete-expression frees with hak_free. The standard forbids inline
 * replacements, so the definitions are ordinary ones: a second file including this header is a
 * multiple-definition error at link time. malloc and free stay the system's.
 *
 * Semantics are the standard's:
 * - new never returns a null pointer. When hakmem cannot allocate, it calls the installed new-handler
 *   (std::get_new_handler()) and tries again, for as long as there is one; with none it throws std::bad_alloc
 *   (or aborts, when exceptions are disabled).
 * - The std::nothrow_t forms return a null pointer instead, also when the new-handler throws std::bad_alloc.
 * - The std::align_val_t forms return memory aligned to the requested alignment (hak_aligned_alloc).
 * - delete of a null pointer does nothing; the sized forms of delete ignore the size.
 *
 * Which forms are defined follows the language mode of the file that includes the header: plain, array and
 * nothrow forms always (C++11 or later); sized delete when the compiler has sized deallocation
 * (__cpp_sized_deallocation: g++ from C++14 on, clang with -fsized-deallocation); the std::align_val_t forms
 * with aligned new (__cpp_aligned_new: C++17, or -faligned-new). A form left out stays the C++ library's,
 * which in libstdc++ forwards sized delete and the nothrow forms to the plain ones defined here, while its
 * aligned forms use aligned_alloc and free, consistently. Include the header in a file compiled in the
 * program's newest language mode to get them all. */
#ifndef HAKMEM_HAKMEM_NEW_DELETE_H
#define HAKMEM_HAKMEM_NEW_DELETE_H

#if !defined(__cplusplus) || __cplusplus < 201103L
#error "hakmem_new_delete.h defines C++ operators: include it from C++11 or later"
#endif

#include <cstddef>
#include <cstdlib>
#include <new>

#include <hakmem/hakmem.h>

/* The allocation functions underneath. libhakmem_override sets them to its own malloc, aligned_alloc and free
 * before including this header; a program has no reason to. */
#ifndef HAKMEM_NEW_DELETE_ALLOC
#define HAKMEM_NEW_DELETE_ALLOC(size) hak_alloc(size)
#define HAKMEM_NEW_DELETE_ALIGNED_ALLOC(alignment, size) hak_aligned_alloc(alignment, size)
#define HAKMEM_NEW_DELETE_FREE(p) hak_free(p)
#endif

/* Called first when an allocation failed, before the C++ runtime is used (libhakmem_override checks there that
 * the runtime is present; a program has no reason to set it). */
#ifndef HAKMEM_NEW_DELETE_FAILING
#define HAKMEM_NEW_DELETE_FAILING() ((void)0)
#endif

#if defined(__GNUC__)
/* Exported even from code compiled with -fvisibility=hidden: the C++ library's own new and delete must come
 * here too, or a block could be allocated by one allocator and freed by the other. */
#define HAKMEM_NEW_DELETE_API __attribute__((visibility("default")))
#define HAKMEM_NEW_DELETE_LIKELY(x) __builtin_expect(!!(x), 1)
#define HAKMEM_NEW_DELETE_COLD __attribute__((cold, noinline))
#else
#define HAKMEM_NEW_DELETE_API
#define HAKMEM_NEW_DELETE_LIKELY(x) (x)
#define HAKMEM_NEW_DELETE_COLD
#endif

namespace hakmem_new_delete_detail {

/* One attempt; alignment 0 means the default alignment (plain new). */
static inline void *try_alloc(std::size_t size, std::size_t alignment) noexcept {
    return alignment == 0 ? HAKMEM_NEW_DELETE_ALLOC(size) : HAKMEM_NEW_DELETE_ALIGNED_ALLOC(alignment, size);
}

/* A throwing new found no memory: call the new-handler and try again while there is one, then fail. */
static HAKMEM_NEW_DELETE_COLD void *retry(std::size_t size, std::size_t alignment) {
    HAKMEM_NEW_DELETE_FAILING();
    for (;;) {
        std::new_handler handler = std::get_new_handler();
        if (handler == nullptr) {
#if defined(__cpp_exceptions) || defined(__EXCEPTIONS)
            throw std::bad_alloc();
#else
            std::abort();
#endif
        }
        handler();
        void *p = try_alloc(size, alignment);
        if (p != nullptr)
            return p;
    }
}

/* The same for a nothrow new: a null pointer when there is no new-handler or when it throws std::bad_alloc.
 */
static HAKMEM_NEW_DELETE_COLD void *retry_nothrow(std::size_t size, std::size_t alignment) noexcept {
    HAKMEM_NEW_DELETE_FAILING();
    for (;;) {
        std::new_handler handler = std::get_new_handler();
        if (handler == nullptr)
            return nullptr;
#if defined(__cpp_exceptions) || defined(__EXCEPTIONS)
        try {
            handler();
        } catch (const std::bad_alloc &) {
            return nullptr;
        }
#else
        handler();
#endif
        void *p = try_alloc(size, alignment);
        if (p != nullptr)
            return p;
    }
}

static inline void *alloc(std::size_t size, std::size_t alignment) {
    void *p = try_alloc(size, alignment);
    return HAKMEM_NEW_DELETE_LIKELY(p != nullptr) ? p : retry(size, alignment);
}

static inline void *alloc_nothrow(std::size_t size, std::size_t alignment) noexcept {
    void *p = try_alloc(size, alignment);
    return HAKMEM_NEW_DELETE_LIKELY(p != nullptr) ? p : retry_nothrow(size, alignment);
}

} // namespace hakmem_new_delete_detail

/* ---- C++11: plain, array, nothrow ---- */
HAKMEM_NEW_DELETE_API void *operator new(std::size_t size) {
    return hakmem_new_delete_detail::alloc(size, 0);
}
HAKMEM_NEW_DELETE_API void *operator new[](std::size_t size) {
    return hakmem_new_delete_detail::alloc(size, 0);
}
HAKMEM_NEW_DELETE_API void *operator new(std::size_t size, const std::nothrow_t &) noexcept {
    return hakmem_new_delete_detail::alloc_nothrow(size, 0);
}
HAKMEM_NEW_DELETE_API void *operator new[](std::size_t size, const std::nothrow_t &) noexcept {
    return hakmem_new_delete_detail::alloc_nothrow(size, 0);
}

HAKMEM_NEW_DELETE_API void operator delete(void *p) noexcept { HAKMEM_NEW_DELETE_FREE(p); }
HAKMEM_NEW_DELETE_API void operator delete[](void *p) noexcept { HAKMEM_NEW_DELETE_FREE(p); }
HAKMEM_NEW_DELETE_API void operator delete(void *p, const std::nothrow_t &) noexcept {
    HAKMEM_NEW_DELETE_FREE(p);
}
HAKMEM_NEW_DELETE_API void operator delete[](void *p, const std::nothrow_t &) noexcept {
    HAKMEM_NEW_DELETE_FREE(p);
}

/* ---- C++14: sized delete ---- */
#if defined(__cpp_sized_deallocation)
HAKMEM_NEW_DELETE_API void operator delete(void *p, std::size_t) noexcept { HAKMEM_NEW_DELETE_FREE(p); }
HAKMEM_NEW_DELETE_API void operator delete[](void *p, std::size_t) noexcept { HAKMEM_NEW_DELETE_FREE(p); }
#endif

/* ---- C++17: aligned new and delete ---- */
#if defined(__cpp_aligned_new)
HAKMEM_NEW_DELETE_API void *operator new(std::size_t size, std::align_val_t alignment) {
    return hakmem_new_delete_detail::alloc(size, static_cast<std::size_t>(alignment));
}
HAKMEM_NEW_DELETE_API void *operator new[](std::size_t size, std::align_val_t alignment) {
    return hakmem_new_delete_detail::alloc(size, static_cast<std::size_t>(alignment));
}
HAKMEM_NEW_DELETE_API void *operator new(std::size_t size, std::align_val_t alignment,
                                         const std::nothrow_t &) noexcept {
    return hakmem_new_delete_detail::alloc_nothrow(size, static_cast<std::size_t>(alignment));
}
HAKMEM_NEW_DELETE_API void *operator new[](std::size_t size, std::align_val_t alignment,
                                           const std::nothrow_t &) noexcept {
    return hakmem_new_delete_detail::alloc_nothrow(size, static_cast<std::size_t>(alignment));
}

HAKMEM_NEW_DELETE_API void operator delete(void *p, std::align_val_t) noexcept { HAKMEM_NEW_DELETE_FREE(p); }
HAKMEM_NEW_DELETE_API void operator delete[](void *p, std::align_val_t) noexcept {
    HAKMEM_NEW_DELETE_FREE(p);
}
HAKMEM_NEW_DELETE_API void operator delete(void *p, std::align_val_t, const std::nothrow_t &) noexcept {
    HAKMEM_NEW_DELETE_FREE(p);
}
HAKMEM_NEW_DELETE_API void operator delete[](void *p, std::align_val_t, const std::nothrow_t &) noexcept {
    HAKMEM_NEW_DELETE_FREE(p);
}
#if defined(__cpp_sized_deallocation)
HAKMEM_NEW_DELETE_API void operator delete(void *p, std::size_t, std::align_val_t) noexcept {
    HAKMEM_NEW_DELETE_FREE(p);
}
HAKMEM_NEW_DELETE_API void operator delete[](void *p, std::size_t, std::align_val_t) noexcept {
    HAKMEM_NEW_DELETE_FREE(p);
}
#endif
#endif /* __cpp_aligned_new */

#endif /* HAKMEM_HAKMEM_NEW_DELETE_H */
