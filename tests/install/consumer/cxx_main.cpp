// SPDX-License-Identifier: MIT
// C++ consumer of an installed hakmem: calls every form of operator new and delete that the language mode
// declares, and checks that each block comes from hakmem's default heap with the right alignment and goes
// back to it, that blocks allocated inside the C++ library do too, that the dynamic linker binds every
// operator to hakmem's definition, and the failure semantics (new-handler loop, std::bad_alloc, nullptr from
// the nothrow forms). Exits non-zero on any failure. Built as C++11 and as C++17, in these variants:
//   CONSUMER_NEW_DELETE_HEADER  linked with hakmem::hakmem; this file includes hakmem/hakmem_new_delete.h
//   CONSUMER_OPERATORS_IN_EXE   the operators are defined in the executable (the header, or the static
//   override) CONSUMER_DLSYM              linked with no hakmem library (LD_PRELOAD of the override):
//   hakmem's functions
//                               are found with dlsym
#include <hakmem/hakmem.h>
#ifdef CONSUMER_NEW_DELETE_HEADER
#include <hakmem/hakmem_new_delete.h>
#endif

#include <dlfcn.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <initializer_list>
#include <new>
#include <stdexcept>
#include <string>
#include <vector>

#ifndef CONSUMER_VARIANT
#define CONSUMER_VARIANT "c++"
#endif

namespace {

int failures;

void check(bool ok, const char *cond, const char *what, int line) {
    if (!ok) {
        std::fprintf(stderr, "%s:%d: check failed: %s (%s)\n", __FILE__, line, cond, what);
        failures++;
    }
}
#define CHECK(cond, what) check((cond), #cond, (what), __LINE__)

// ---- hakmem's functions: linked, or found in the preloaded override
// ----------------------------------------
#ifdef CONSUMER_DLSYM
template <class F> F find(const char *name) {
    void *sym = dlsym(RTLD_DEFAULT, name);
    if (sym == nullptr) {
        std::fprintf(stderr, "%s not found: is libhakmem_override.so preloaded?\n", name);
        std::exit(1);
    }
    F f;
    std::memcpy(&f, &sym, sizeof f);
    return f;
}
hak_heap_t *heap_of(const void *p) { return find<hak_heap_t *(*)(const void *)>("hak_heap_of")(p); }
hak_heap_t *heap_default() { return find<hak_heap_t *(*)()>("hak_heap_default")(); }
int heap_stats(hak_heap_t *h, hak_stats_t *st) {
    return find<int (*)(hak_heap_t *, hak_stats_t *)>("hak_heap_stats")(h, st);
}
#else
hak_heap_t *heap_of(const void *p) { return hak_heap_of(p); }
hak_heap_t *heap_default() { return hak_heap_default(); }
int heap_stats(hak_heap_t *h, hak_stats_t *st) { return hak_heap_stats(h, st); }
#endif

// Live blocks of the default heap (exact: blocks in a thread cache are not counted). Allocates nothing.
std::uint64_t live_blocks() {
    hak_stats_t st;
    std::memset(&st, 0, sizeof st);
    st.size = sizeof st;
    CHECK(heap_stats(heap_default(), &st) == 0, "hak_heap_stats");
    return st.live_blocks;
}

bool aligned_to(const void *p, std::size_t alignment) {
    return (reinterpret_cast<std::uintptr_t>(p) & (alignment - 1)) == 0;
}

// ---- every form: allocate, check, free
// -----------------------------------------------------------------------
const std::size_t sizes[] = {0, 24, 4000, 100000, std::size_t(1) << 20};
int forms; // operator forms exercised (one allocation form with its deallocation form counts two)

// A fresh block from a form: non-null, aligned, hakmem's, writable, one more live block.
void check_block(void *p, std::size_t size, std::size_t alignment, std::uint64_t live_before,
                 const char *what) {
    CHECK(p != nullptr, what);
    if (p == nullptr)
        return;
    CHECK(aligned_to(p, alignment), what);
    CHECK(heap_of(p) == heap_default(), what);
    std::memset(p, 0x5a, size);
    CHECK(live_blocks() == live_before + 1, what);
}

#define ROUND_TRIP(what, size, alignment, alloc, dealloc)                                                    \
    do {                                                                                                     \
        std::uint64_t before_ = live_blocks();                                                               \
        void *p = (alloc);                                                                                   \
        check_block(p, (size), (alignment), before_, what);                                                  \
        dealloc;                                                                                             \
        CHECK(live_blocks() == before_, what " (freed)");                                                    \
    } while (0)

void test_forms() {
    for (std::size_t n : sizes) {
        ROUND_TRIP("new(size) / delete(p)", n, 16, ::operator new(n), ::operator delete(p));
        ROUND_TRIP("new[](size) / delete[](p)", n, 16, ::operator new[](n), ::operator delete[](p));
        ROUND_TRIP("new(size, nothrow) / delete(p, nothrow)", n, 16, ::operator new(n, std::nothrow),
                   ::operator delete(p, std::nothrow));
        ROUND_TRIP("new[](size, nothrow) / delete[](p, nothrow)", n, 16, ::operator new[](n, std::nothrow),
                   ::operator delete[](p, std::nothrow));
#if defined(__cpp_sized_deallocation)
        ROUND_TRIP("new(size) / delete(p, size)", n, 16, ::operator new(n), ::operator delete(p, n));
        ROUND_TRIP("new[](size) / delete[](p, size)", n, 16, ::operator new[](n), ::operator delete[](p, n));
#endif
#if defined(__cpp_aligned_new)
        for (std::size_t a :
             {std::size_t(8), std::size_t(16), std::size_t(32), std::size_t(64), std::size_t(256),
              std::size_t(4096), std::size_t(1) << 16, std::size_t(1) << 21}) {
            std::align_val_t al = static_cast<std::align_val_t>(a);
            ROUND_TRIP("new(size, align) / delete(p, align)", n, a, ::operator new(n, al),
                       ::operator delete(p, al));
            ROUND_TRIP("new[](size, align) / delete[](p, align)", n, a, ::operator new[](n, al),
                       ::operator delete[](p, al));
            ROUND_TRIP("new(size, align, nothrow) / delete(p, align, nothrow)", n, a,
                       ::operator new(n, al, std::nothrow), ::operator delete(p, al, std::nothrow));
            ROUND_TRIP("new[](size, align, nothrow) / delete[](p, align, nothrow)", n, a,
                       ::operator new[](n, al, std::nothrow), ::operator delete[](p, al, std::nothrow));
#if defined(__cpp_sized_deallocation)
            ROUND_TRIP("new(size, align) / delete(p, size, align)", n, a, ::operator new(n, al),
                       ::operator delete(p, n, al));
            ROUND_TRIP("new[](size, align) / delete[](p, size, align)", n, a, ::operator new[](n, al),
                       ::operator delete[](p, n, al));
#endif
        }
#endif
    }
    forms = 8;
#if defined(__cpp_sized_deallocation)
    forms += 2;
#endif
#if defined(__cpp_aligned_new)
    forms += 8;
#if defined(__cpp_sized_deallocation)
    forms += 2;
#endif
#endif
}

// ---- new- and delete-expressions, and the C++ library's own allocations
// -------------------------------------
#if defined(__cpp_aligned_new)
struct alignas(256) Overaligned {
    char bytes[300];
};
#endif

void test_expressions() {
    std::uint64_t before = live_blocks();
    int *i = new int(42);
    CHECK(heap_of(i) == heap_default() && *i == 42, "new int");
    int *arr = new int[1000];
    CHECK(heap_of(arr) == heap_default(), "new int[1000]");
    long *nt = new (std::nothrow) long(7);
    CHECK(nt != nullptr && heap_of(nt) == heap_default(), "new (std::nothrow) long");
    CHECK(live_blocks() == before + 3, "three new-expressions");
    delete i;
    delete[] arr;
    delete nt;
    CHECK(live_blocks() == before, "three delete-expressions");
    delete static_cast<int *>(nullptr); // no-ops
    delete[] static_cast<int *>(nullptr);
    ::operator delete(nullptr);
    ::operator delete[](nullptr);
    ::operator delete(nullptr, std::nothrow);
#if defined(__cpp_aligned_new)
    Overaligned *o = new Overaligned;
    CHECK(aligned_to(o, 256) && heap_of(o) == heap_default(), "new Overaligned");
    Overaligned *oa = new Overaligned[3];
    CHECK(aligned_to(oa, 256) && heap_of(oa) == heap_default(), "new Overaligned[3]");
    delete o;
    delete[] oa;
    ::operator delete(nullptr, std::align_val_t(64));
    CHECK(live_blocks() == before, "aligned delete-expressions");
#endif
    {
        std::vector<std::string> v;
        for (int k = 0; k < 100; k++)
            v.push_back(std::string(100 + k, 'x'));
        CHECK(heap_of(v.data()) == heap_default() && heap_of(v[50].data()) == heap_default(), "std::vector");
    }
    CHECK(live_blocks() == before, "std::vector freed");
    // std::runtime_error copies its message inside libstdc++.so: the C++ library's own new comes here too.
    std::string message(1000, 'm');
    before = live_blocks();
    {
        std::runtime_error e(message);
        CHECK(live_blocks() > before, "allocation inside the C++ library");
    }
    CHECK(live_blocks() == before, "freed inside the C++ library");
}

// ---- which definition the dynamic linker binds: hakmem's, for the whole process
// ------------------------------
void test_binding() {
    static const char *const names[] = {
        "_Znwm",
        "_Znam",
        "_ZnwmRKSt9nothrow_t",
        "_ZnamRKSt9nothrow_t",
        "_ZdlPv",
        "_ZdaPv",
        "_ZdlPvRKSt9nothrow_t",
        "_ZdaPvRKSt9nothrow_t",
#if defined(__cpp_sized_deallocation)
        "_ZdlPvm",
        "_ZdaPvm",
#endif
#if defined(__cpp_aligned_new)
        "_ZnwmSt11align_val_t",
        "_ZnamSt11align_val_t",
        "_ZnwmSt11align_val_tRKSt9nothrow_t",
        "_ZnamSt11align_val_tRKSt9nothrow_t",
        "_ZdlPvSt11align_val_t",
        "_ZdaPvSt11align_val_t",
        "_ZdlPvSt11align_val_tRKSt9nothrow_t",
        "_ZdaPvSt11align_val_tRKSt9nothrow_t",
#if defined(__cpp_sized_deallocation)
        "_ZdlPvmSt11align_val_t",
        "_ZdaPvmSt11align_val_t",
#endif
#endif
    };
    // The object that should define them: this executable, or the library that has hak_heap_of.
    Dl_info expected;
#ifdef CONSUMER_OPERATORS_IN_EXE
    void *anchor = reinterpret_cast<void *>(&test_binding);
#else
    void *anchor = dlsym(RTLD_DEFAULT, "hak_heap_of");
#endif
    CHECK(anchor != nullptr && dladdr(anchor, &expected) != 0, "dladdr of the expected object");
    for (const char *name : names) {
        void *sym = dlsym(RTLD_DEFAULT, name);
        Dl_info info;
        bool found = sym != nullptr && dladdr(sym, &info) != 0;
        CHECK(found, name);
        if (found && info.dli_fbase != expected.dli_fbase) {
            std::fprintf(stderr, "%s is bound to %s, expected %s\n", name, info.dli_fname,
                         expected.dli_fname);
            failures++;
        }
    }
    CHECK(sizeof names / sizeof names[0] == static_cast<std::size_t>(forms), "every form looked up");
}

// ---- failure: the new-handler loop, std::bad_alloc, nullptr
// --------------------------------------------------
volatile std::size_t huge = SIZE_MAX / 2; // volatile: no compile-time size warnings; hakmem cannot map it
int handler_calls;

void handler_three_times() { // the allocator retries after each call; the third uninstalls the handler
    if (++handler_calls == 3)
        std::set_new_handler(nullptr);
}
void handler_throws() {
    ++handler_calls;
    throw std::bad_alloc();
}

template <class Alloc> void expect_bad_alloc(const char *what, Alloc alloc) {
    handler_calls = 0;
    std::set_new_handler(handler_three_times);
    bool threw = false;
    try {
        void *p = alloc();
        CHECK(p == nullptr, what); // not reached: new does not return nullptr
    } catch (const std::bad_alloc &) {
        threw = true;
    }
    CHECK(threw, what);
    CHECK(handler_calls == 3, what);
    CHECK(std::get_new_handler() == nullptr, what);
}

template <class Alloc> void expect_nullptr(const char *what, Alloc alloc) {
    std::set_new_handler(nullptr);
    CHECK(alloc() == nullptr, what); // no handler
    handler_calls = 0;
    std::set_new_handler(handler_throws);
    CHECK(alloc() == nullptr && handler_calls == 1, what); // the handler throws std::bad_alloc
    handler_calls = 0;
    std::set_new_handler(handler_three_times);
    CHECK(alloc() == nullptr && handler_calls == 3, what); // called until it uninstalls itself
    std::set_new_handler(nullptr);
}

void test_failure() {
    std::size_t n = huge;
    expect_bad_alloc("new(huge)", [n] { return ::operator new(n); });
    expect_bad_alloc("new[](huge)", [n] { return ::operator new[](n); });
    expect_nullptr("new(huge, nothrow)", [n] { return ::operator new(n, std::nothrow); });
    expect_nullptr("new[](huge, nothrow)", [n] { return ::operator new[](n, std::nothrow); });
#if defined(__cpp_aligned_new)
    std::align_val_t al = std::align_val_t(64);
    expect_bad_alloc("new(huge, align)", [n, al] { return ::operator new(n, al); });
    expect_bad_alloc("new[](huge, align)", [n, al] { return ::operator new[](n, al); });
    expect_nullptr("new(huge, align, nothrow)", [n, al] { return ::operator new(n, al, std::nothrow); });
    expect_nullptr("new[](huge, align, nothrow)", [n, al] { return ::operator new[](n, al, std::nothrow); });
#endif
    // The same through new-expressions.
    expect_bad_alloc("new char[huge]", [n] { return static_cast<void *>(new char[n]); });
    expect_nullptr("new (std::nothrow) char[huge]",
                   [n] { return static_cast<void *>(new (std::nothrow) char[n]); });
    std::set_new_handler(nullptr);
}

} // namespace

int main() {
    test_forms();
    test_expressions();
    test_binding();
    test_failure();
    if (failures) {
        std::fprintf(stderr, "hakmem consumer (%s): %d check(s) FAILED\n", CONSUMER_VARIANT, failures);
        return 1;
    }
    std::printf("hakmem consumer (%s): OK (%d operator forms, C++ %ld)\n", CONSUMER_VARIANT, forms,
                static_cast<long>(__cplusplus));
    return 0;
}
