/* SPDX-License-Identifier: MIT */
/* The malloc family on top of hakmem's default heap, built into
 * - libhakmem_override.so (hakmem::override): `LD_PRELOAD=/path/libhakmem_override.so program`, or linked
 *   into a program ahead of libc;
 * - libhakmem_override.a (hakmem::override_static): linked into an executable, whose own reference to malloc
 *   pulls this object in (or whole-archive); the linker exports malloc & co. from the executable because
 *   libc.so refers to them, so libc's internal allocations come here too.
 * Both also export the hak_* API, so a program can use private heaps next to the replaced malloc.
 *
 * Semantics are glibc's (2.36 unless noted), including its error codes:
 * - malloc(0) returns a unique freeable block; sizes above PTRDIFF_MAX and calloc/reallocarray overflows
 *   fail with ENOMEM.
 * - realloc(p, 0) with p != NULL frees p and returns NULL without touching errno, as glibc does
 *   (REALLOC_ZERO_BYTES_FREES). This deliberately differs from hak_realloc's contract (a minimal block): a
 *   drop-in malloc must behave like the one programs were tested with. realloc(NULL, n) is malloc(n).
 * - posix_memalign returns EINVAL when the alignment is not a power of two or not a multiple of
 *   sizeof(void *), ENOMEM when out of memory; it never sets errno and leaves *memptr alone on error.
 * - memalign serves alignments up to 16 as malloc, rounds an alignment that is not a power of two up to the
 *   next one (at least 32), and fails alignments above SIZE_MAX/2+1 with EINVAL, as glibc does.
 * - aligned_alloc rejects an alignment that is not a power of two (or 0) with EINVAL: C17 and glibc >= 2.38
 *   (glibc 2.36 still treated it like memalign), and hakmem's own contract.
 * - valloc is page aligned; pvalloc also rounds the size up to whole pages, and pvalloc(0) is one page.
 * - malloc_usable_size(NULL) is 0; cfree is free (glibc keeps it as a compat symbol).
 *
 * Introspection reports hakmem's own figures, for the whole process (every heap, as glibc sums its arenas);
 * large blocks (above 256 KiB, each in its own mapping) play the part of glibc's mmapped chunks, so that, as
 * with glibc, the bytes in use are uordblks + hblkhd:
 * - mallinfo2(): arena = memory hakmem holds that may be resident, less the live large blocks (SuperSlabs,
 *   cached SuperSlabs and cached large mappings not purged); uordblks = bytes of live blocks served from
 *   slabs; fordblks = arena - uordblks (free blocks, free slabs, caches, headers); hblks / hblkhd = live
 * large blocks and their bytes; keepcost = cached memory malloc_trim would give back now (committed cached
 *   SuperSlabs and cached large mappings); usmblks = the peak of held bytes (glibc leaves it 0; it was the
 *   high-water mark); ordblks, smblks and fsmblks are 0 (hakmem has no bins or fastbins).
 * - mallinfo(): the same in int fields, each capped at INT_MAX (glibc's wrap around).
 * - malloc_trim(pad): hak_collect(1) (pad is ignored: hakmem keeps no top pad); returns 1 if memory went back
 *   to the OS during the call (an munmap or madvise), else 0.
 * - malloc_stats(): hakmem's process statistics (the text of hak_stats_print) to stderr, written with
 *   write(2) from a buffer on the stack: nothing is allocated, stdio is not used.
 *
 * Ownership is decided here, by address: every chunk of hakmem's memory is marked in the region map, so a
 * pointer in a marked chunk is hakmem's (and reported by hakmem if it is not a live block: interior pointers,
 * double frees, freed large blocks). A pointer in an unmarked chunk goes to glibc's __libc_free /
 * __libc_realloc / malloc_usable_size only if it looks like a glibc chunk (glibc's blocks from before the
 * override took effect, or from __libc_malloc); anything else (stack, globals, wild) is reported by hakmem
 * with its value and obeys HAKMEM_ON_ERROR, and is never dereferenced (foreign.h).
 *
 * Safe from the first call: nothing below calls dlsym, getenv, stdio or an allocating pthread function on the
 * allocation path; the first allocation initialises hakmem through hak_init (pthread_once, environ scan,
 * pthread_key_create, pthread_atfork). free() keeps errno, as glibc >= 2.33 and POSIX.1-2024 promise. */
#include <errno.h>
#include <limits.h>
#include <malloc.h>
#include <stdint.h>
#include <string.h>
#include <stdlib.h>
#include <unistd.h>

#include "bigcache/bigcache.h"
#include "common/error.h"
#include "common/region_map.h"
#include "common/track.h"
#include "hakmem/hakmem.h"
#include "heap/heap.h"
#include "os/os.h"
#include "override/foreign.h"
#include "override/override.h"
#include "superslab/superslab.h"
#include "tiny/tiny.h"

#define HAK_OVERRIDE __attribute__((visibility("default")))

/* p is not in hakmem's memory (its chunk is unmarked in the region map). True if it goes to glibc; otherwise
 * it was reported (what names the call) and must not be touched. */
static hak_cold bool foreign_is_glibcs(const void *p, const char *what) {
    if (hak_foreign_is_glibc(p))
        return true;
    hak_report_invalid(what, p);
    return false;
}

/* ---- malloc / free: the hot paths, inlined from hak_alloc / hak_free ---- */

/* One size compare on the hot path: the class table's sizes first (with tracking: the tracked hak_alloc). */
HAK_OVERRIDE void *malloc(size_t size) {
    if (hak_likely(size <= HAK_LUT_MAX_SIZE) && !HAK_TRACK)
        return hak_tiny_alloc_class(hak_tls_theap, hak_size_class_lut(size));
    if (size <= HAK_SLAB_MAX_SIZE && !HAK_TRACK)
        return hak_tiny_alloc_class(hak_tls_theap, hak_size_class_big(size));
    return hak_alloc(size);
}

/* A pointer outside the SuperSlabs: NULL, a large block (or an invalid pointer into hakmem's memory, which
 * hak_free reports), or one outside hakmem's memory, which goes back to glibc if it is glibc's. */
static hak_cold void free_outside_superslabs(void *p, unsigned kind) {
    if (p == NULL)
        return;
    int saved = errno;
    if (kind != HAK_REGION_NONE)
        hak_free(p); /* a large block, or an invalid pointer inside hakmem's memory, which hak_free reports */
    else if (foreign_is_glibcs(p, "free of a pointer that is neither hakmem's nor glibc's"))
        __libc_free(p);
    errno = saved;
}

HAK_OVERRIDE void free(void *p) {
    unsigned kind = hak_region_kind(p);
    if (hak_likely(kind == HAK_REGION_SUPERSLAB) && !HAK_TRACK) { /* with tracking: the tracked hak_free */
        hak_tiny_free(hak_ss_of(p), p);
        return;
    }
    free_outside_superslabs(p, kind);
}

HAK_OVERRIDE void cfree(void *p) { free(p); }

HAK_OVERRIDE void *calloc(size_t count, size_t size) { return hak_calloc(count, size); }

HAK_OVERRIDE void *realloc(void *p, size_t size) {
    if (p == NULL)
        return malloc(size);
    if (hak_unlikely(hak_region_kind(p) == HAK_REGION_NONE)) {
        if (foreign_is_glibcs(p, "realloc of a pointer that is neither hakmem's nor glibc's"))
            return __libc_realloc(p, size); /* glibc's block stays glibc's (and glibc frees it at size 0) */
        errno = EINVAL;
        return NULL;
    }
    if (size == 0) {
        free(p);
        return NULL;
    }
    return hak_realloc(p, size);
}

HAK_OVERRIDE void *reallocarray(void *p, size_t count, size_t size) {
    size_t total;
    if (__builtin_mul_overflow(count, size, &total)) {
        errno = ENOMEM;
        return NULL;
    }
    return realloc(p, total);
}

/* ---- aligned allocation ---- */

static void *aligned(size_t alignment, size_t size) {
    if (alignment <= HAK_MIN_ALIGN)
        return malloc(size);
    return hak_aligned_alloc(alignment, size);
}

HAK_OVERRIDE int posix_memalign(void **memptr, size_t alignment, size_t size) {
    if (alignment == 0 || (alignment & (alignment - 1)) != 0 || alignment % sizeof(void *) != 0)
        return EINVAL;
    int saved = errno;
    void *p = aligned(alignment, size);
    errno = saved;
    if (p == NULL)
        return ENOMEM;
    *memptr = p;
    return 0;
}

HAK_OVERRIDE void *aligned_alloc(size_t alignment, size_t size) {
    if (alignment == 0 || (alignment & (alignment - 1)) != 0) {
        errno = EINVAL;
        return NULL;
    }
    return aligned(alignment, size);
}

HAK_OVERRIDE void *memalign(size_t alignment, size_t size) {
    if (alignment > SIZE_MAX / 2 + 1) {
        errno = EINVAL;
        return NULL;
    }
    if (alignment <= HAK_MIN_ALIGN)
        return malloc(size);
    if ((alignment & (alignment - 1)) != 0) { /* glibc: round up to a power of two */
        size_t a = 2 * HAK_MIN_ALIGN;
        while (a < alignment)
            a <<= 1;
        alignment = a;
    }
    return aligned(alignment, size);
}

static size_t page_size(void) {
    static size_t cached;
    size_t ps = __atomic_load_n(&cached, __ATOMIC_RELAXED);
    if (hak_unlikely(ps == 0)) {
        long v = sysconf(_SC_PAGESIZE); /* reads the auxv value, no allocation */
        ps = v > 0 ? (size_t)v : 4096;
        __atomic_store_n(&cached, ps, __ATOMIC_RELAXED);
    }
    return ps;
}

HAK_OVERRIDE void *valloc(size_t size) { return aligned(page_size(), size); }

HAK_OVERRIDE void *pvalloc(size_t size) {
    size_t ps = page_size(), rounded;
    if (__builtin_add_overflow(size, ps - 1, &rounded)) {
        errno = ENOMEM;
        return NULL;
    }
    rounded &= ~(ps - 1);
    return aligned(ps, rounded ? rounded : ps);
}

/* ---- sizes ---- */

HAK_OVERRIDE size_t malloc_usable_size(void *p) {
    if (p == NULL)
        return 0;
    if (hak_unlikely(hak_region_kind(p) == HAK_REGION_NONE))
        return foreign_is_glibcs(p, "malloc_usable_size of a pointer that is neither hakmem's nor glibc's")
                   ? hak_foreign_usable_size(p)
                   : 0;
    return hak_usable_size(p);
}

/* ---- for the C++ operators (override.h) ---- */

void *hak_override_malloc(size_t size) { return malloc(size); }
void *hak_override_aligned_alloc(size_t alignment, size_t size) { return aligned_alloc(alignment, size); }
void hak_override_free(void *p) { free(p); }
/* ---- introspection: glibc's interfaces with hakmem's figures (the mapping is in the comment at the top)
 * ---- */

typedef struct info_s {
    uint64_t arena, uordblks, fordblks, hblks, hblkhd, usmblks, keepcost;
} info_t;

static info_t info(void) {
    info_t i;
    memset(&i, 0, sizeof i);
    hak_stats_t st;
    st.size = sizeof st;
    if (hak_heap_stats(NULL, &st) != 0)
        return i;
    uint64_t ss_count, ss_warm, big_entries, big_bytes, big_dirty;
    hak_ss_cache_stats(&ss_count, &ss_warm);
    hak_bigcache_stats(&big_entries, &big_bytes, &big_dirty);
    i.hblks = st.large_blocks;
    i.hblkhd = st.large_bytes;
    i.arena = st.committed_bytes > st.large_bytes ? st.committed_bytes - st.large_bytes : 0;
    i.uordblks = st.live_bytes - st.large_bytes;
    i.fordblks = i.arena > i.uordblks ? i.arena - i.uordblks : 0;
    i.usmblks = st.peak_held_bytes;
    i.keepcost = ss_warm * HAK_SS_SIZE + big_dirty;
    return i;
}

#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 33))
HAK_OVERRIDE struct mallinfo2 mallinfo2(void) {
    info_t i = info();
    struct mallinfo2 m;
    memset(&m, 0, sizeof m);
    m.arena = i.arena;
    m.hblks = i.hblks;
    m.hblkhd = i.hblkhd;
    m.usmblks = i.usmblks;
    m.uordblks = i.uordblks;
    m.fordblks = i.fordblks;
    m.keepcost = i.keepcost;
    return m;
}
#endif

static int capped(uint64_t v) { return v > INT_MAX ? INT_MAX : (int)v; }

HAK_OVERRIDE struct mallinfo mallinfo(void) {
    info_t i = info();
    struct mallinfo m;
    memset(&m, 0, sizeof m);
    m.arena = capped(i.arena);
    m.hblks = capped(i.hblks);
    m.hblkhd = capped(i.hblkhd);
    m.usmblks = capped(i.usmblks);
    m.uordblks = capped(i.uordblks);
    m.fordblks = capped(i.fordblks);
    m.keepcost = capped(i.keepcost);
    return m;
}

HAK_OVERRIDE int malloc_trim(size_t pad) {
    (void)pad;
    hak_os_counts_t before, after;
    hak_os_counts(&before);
    hak_collect(1);
    hak_os_counts(&after);
    return after.munmap != before.munmap || after.madvise != before.madvise;
}

HAK_OVERRIDE void malloc_stats(void) {
    int saved = errno;
    hak_stats_write(2, NULL, 0);
    errno = saved;
}
