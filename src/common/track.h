/* SPDX-License-Identifier: MIT */
/* Tracking for memory checkers: tells Valgrind memcheck (cmake -DHAKMEM_VALGRIND=ON) or AddressSanitizer
 * (-DHAKMEM_ASAN=ON, in a build with -fsanitize=address) which bytes of hakmem's memory a program may touch,
 * so that overflows, uses after free or after hak_heap_destroy, and (memcheck only) leaks of hakmem's blocks
 * are reported as those of malloc's are. Without either option every hook below is an empty macro (a hook
 * with a value yields its pointer argument), so the code of the default build is unchanged.
 *
 * The model, the same for both tools:
 * - A block handed out is accessible for exactly its requested size (hak_track_alloc); the rest of its slot,
 *   every free block, every free part of a SuperSlab and a large mapping past the request are no-access
 *   (hak_track_noaccess). A free makes the block no-access (hak_track_free); so does hak_heap_destroy, for
 *   every block of the heap at once (hak_track_free_range over each SuperSlab, hak_track_free per large
 *   block).
 * - hakmem's own reads and writes of no-access memory (a free block's first 16 bytes, tiny/block.h; the tag
 *   below an aligned pointer; a BigCache entry; clearing a reused mapping) are bracketed: hak_track_open
 * makes the bytes accessible (and defined), hak_track_close no-access again. Where the bytes may be a live
 *   block's (usable size, a free of an interior pointer), hak_track_save and hak_track_restore put back what
 *   was there, as open and close alone would take the bytes away from the block.
 * - The checker is the record of a block's requested size: hak_track_size finds the block's first no-access
 *   byte (realloc keeps that many bytes), so no size is stored per block. hak_usable_size grows the block to
 *   what it returns: the caller may use all of it.
 * - memcheck: blocks are malloc-like blocks (VALGRIND_MALLOCLIKE_BLOCK / FREELIKE_BLOCK), so reports name
 *   the block with its allocation (and free) stack and leaked blocks are reported. Not memory pools: memcheck
 *   3.19's leak check skips the chunks of every pool while no malloc-like block exists at all (a program
 * whose glibc blocks are all freed, or that runs on the override: none), so a leaked block went unreported. A
 * heap destroy frees every block memcheck knows in a range with a metapool made for the occasion.
 * - ASan is told about bytes only (poisoned or not); its reports say use-after-poison, and its leak checker
 *   does not see hakmem's blocks. ASan does not follow munmap or mremap: memory that goes back to the OS is
 *   unpoisoned first (hak_track_forget), and a large block that moved is unpoisoned where it is now.
 *
 * A common/ header: it includes only src/os/ and src/common/ (and the checker's own header). */
#ifndef HAKMEM_COMMON_TRACK_H
#define HAKMEM_COMMON_TRACK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifndef HAKMEM_VALGRIND
#define HAKMEM_VALGRIND 0
#endif
#ifndef HAKMEM_ASAN
#define HAKMEM_ASAN 0
#endif

/* ASan tracking needs the ASan runtime: without -fsanitize=address, HAKMEM_ASAN does nothing. */
#if defined(__SANITIZE_ADDRESS__)
#define HAK_ASAN_RUNTIME 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define HAK_ASAN_RUNTIME 1
#endif
#endif
#if HAKMEM_ASAN && defined(HAK_ASAN_RUNTIME)
#define HAK_TRACK_ASAN 1
#else
#define HAK_TRACK_ASAN 0
#endif
#define HAK_TRACK_VALGRIND (HAKMEM_VALGRIND != 0)
#if HAK_TRACK_ASAN && HAK_TRACK_VALGRIND
#error "HAKMEM_VALGRIND and HAKMEM_ASAN exclude each other (memcheck cannot run an ASan build)"
#endif
/* Some tracking is compiled in (the override then routes malloc and free through the tracked API). */
#define HAK_TRACK (HAK_TRACK_VALGRIND || HAK_TRACK_ASAN)

/* The most bytes hak_track_save keeps. */
#define HAK_TRACK_SAVE_MAX 16
/* The bytes of a free block hakmem reads and writes (its link and check word, tiny/block.h). */
#define HAK_TRACK_FREE_BLOCK_BYTES 16
#define hak_track_free_block_open(b) hak_track_open((b), HAK_TRACK_FREE_BLOCK_BYTES)
#define hak_track_free_block_close(b) hak_track_close((b), HAK_TRACK_FREE_BLOCK_BYTES)

#if HAK_TRACK_VALGRIND
#include <valgrind/memcheck.h>

#include "os/os.h"

typedef struct hak_track_saved_s {
    size_t accessible;                       /* the bytes kept are accessible, the rest were not */
    unsigned char vbits[HAK_TRACK_SAVE_MAX]; /* memcheck's definedness bits of the accessible bytes */
} hak_track_saved_t;

static inline void *hak_track_alloc(void *p, size_t size, bool zeroed) {
    if (p != NULL)
        VALGRIND_MALLOCLIKE_BLOCK(p, size, 0, zeroed); /* accessible; undefined unless zeroed */
    return p;
}

/* p is being freed (usable is ASan's). memcheck reports a p that is not a block, or is freed already. */
static inline void hak_track_free(void *p, size_t usable) {
    (void)usable;
    if (p != NULL)
        VALGRIND_FREELIKE_BLOCK(p, 0); /* no-access */
}

/* The requested size of the live block at p (usable bytes from p): the offset of its first no-access byte.
 * Outside memcheck, usable. */
static inline size_t hak_track_size(const void *p, size_t usable) {
    if (!RUNNING_ON_VALGRIND)
        return usable;
    size_t lo = 0, hi = usable; /* [p, p+lo) is accessible; p+hi is not, or hi == usable */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        unsigned char v;
        if (VALGRIND_GET_VBITS((const char *)p + mid, &v, 1) == 3) /* 3: not addressable (no error) */
            hi = mid;
        else
            lo = mid + 1;
    }
    return lo;
}

/* The block p of `old` requested bytes now has `size` bytes, in place: kept bytes keep their state, new ones
 * are undefined, cut ones no-access. */
static inline void *hak_track_resize(void *p, size_t old, size_t size) {
    if (old != 0 && size != 0) {
        VALGRIND_RESIZEINPLACE_BLOCK(p, old, size, 0);
    } else if (old != size) { /* memcheck resizes no block from or to zero bytes: a new one */
        VALGRIND_FREELIKE_BLOCK(p, 0);
        VALGRIND_MALLOCLIKE_BLOCK(p, size, 0, 0);
    }
    return p;
}

/* A large block moving to other pages (mremap, realloc): begin while p is still mapped (memcheck must forget
 * the block before its address range can be mapped again, by another thread too), then end at its new address
 * q, or abort if it stayed at p. The definedness of its bytes is kept across the move. */
typedef struct hak_track_move_s {
    void *p;
    size_t old;
    unsigned char *vbits; /* memcheck's bits of the old bytes (NULL: none kept, they become defined) */
} hak_track_move_t;

#define HAK_TRACK_MOVE_VBITS_MAX ((size_t)256 << 20) /* larger blocks' moved bytes become defined */
static inline void hak_track_move_begin(hak_track_move_t *m, void *p, size_t old) {
    m->p = p;
    m->old = old;
    m->vbits = old != 0 && old <= HAK_TRACK_MOVE_VBITS_MAX ? hak_os_map(old) : NULL;
    if (m->vbits != NULL)
        (void)VALGRIND_GET_VBITS(p, m->vbits, old);
    VALGRIND_FREELIKE_BLOCK(p, 0);
}

static inline void hak_track_move_finish(hak_track_move_t *m, void *q, size_t size) {
    size_t keep = m->old < size ? m->old : size;
    VALGRIND_MALLOCLIKE_BLOCK(q, size, 0, 0);
    if (m->vbits != NULL) {
        (void)VALGRIND_SET_VBITS(q, m->vbits, keep);
        hak_os_unmap(m->vbits, m->old);
    } else {
        VALGRIND_MAKE_MEM_DEFINED(q, keep);
    }
}
static inline void *hak_track_move_end(hak_track_move_t *m, void *q, size_t size) {
    hak_track_move_finish(m, q, size);
    return q;
}
static inline void hak_track_move_abort(hak_track_move_t *m) { hak_track_move_finish(m, m->p, m->old); }

/* Every block in [p, p+n) is freed at once (heap destroy): memcheck frees the blocks it knows there, since
 * hakmem does not visit them. Each piece is a metapool block with auto-free, made for the occasion (anchored
 * at the piece), whose free frees every block inside it; pieces stay below memcheck's --freelist-big-blocks
 * (1,000,000 bytes by default) so that a later access is reported against the user's block it hits, which
 * was freed earlier, not against the piece. */
#define HAK_TRACK_FREE_PIECE ((size_t)960 << 10)
static inline void hak_track_free_range(void *p, size_t n) {
    for (size_t off = 0; off < n; off += HAK_TRACK_FREE_PIECE) {
        char *piece = (char *)p + off;
        size_t len = n - off < HAK_TRACK_FREE_PIECE ? n - off : HAK_TRACK_FREE_PIECE;
        VALGRIND_CREATE_MEMPOOL_EXT(piece, 0, 0, VALGRIND_MEMPOOL_METAPOOL | VALGRIND_MEMPOOL_AUTO_FREE);
        VALGRIND_MEMPOOL_ALLOC(piece, piece, len);
        VALGRIND_MEMPOOL_FREE(piece, piece); /* frees every block inside; the piece is no-access */
        VALGRIND_DESTROY_MEMPOOL(piece);
    }
}

static inline void hak_track_noaccess(const void *p, size_t n) { VALGRIND_MAKE_MEM_NOACCESS(p, n); }
static inline void hak_track_open(const void *p, size_t n) { VALGRIND_MAKE_MEM_DEFINED(p, n); }
static inline void hak_track_close(const void *p, size_t n) { VALGRIND_MAKE_MEM_NOACCESS(p, n); }
static inline void hak_track_forget(const void *p, size_t n) {
    (void)p; /* memcheck follows munmap and mremap itself */
    (void)n;
}

/* Saves the state of n <= HAK_TRACK_SAVE_MAX bytes whose accessible bytes, if any, come first (a block's
 * requested bytes, then its slack): restore puts it back after open and close. */
static inline void hak_track_save(const void *p, size_t n, hak_track_saved_t *s) {
    s->accessible = hak_track_size(p, n);
    if (s->accessible != 0)
        (void)VALGRIND_GET_VBITS(p, s->vbits, s->accessible);
}
static inline void hak_track_restore(const void *p, size_t n, const hak_track_saved_t *s) {
    if (!RUNNING_ON_VALGRIND)
        return;
    VALGRIND_MAKE_MEM_NOACCESS((const char *)p + s->accessible, n - s->accessible);
    if (s->accessible != 0) {
        VALGRIND_MAKE_MEM_UNDEFINED(p, s->accessible);
        (void)VALGRIND_SET_VBITS(p, s->vbits, s->accessible);
    }
}

#elif HAK_TRACK_ASAN
#include <sanitizer/asan_interface.h>

typedef struct hak_track_saved_s {
    size_t accessible; /* the first bytes were not poisoned, the rest were */
} hak_track_saved_t;

static inline void *hak_track_alloc(void *p, size_t size, bool zeroed) {
    (void)zeroed;
    if (p != NULL && size != 0)
        ASAN_UNPOISON_MEMORY_REGION(p, size);
    return p;
}

static inline void hak_track_free(void *p, size_t usable) {
    if (p != NULL && usable != 0)
        ASAN_POISON_MEMORY_REGION(p, usable);
}

static inline void *hak_track_resize(void *p, size_t old, size_t size) {
    if (size > old)
        ASAN_UNPOISON_MEMORY_REGION((char *)p + old, size - old);
    else if (size < old)
        ASAN_POISON_MEMORY_REGION((char *)p + size, old - size);
    return p;
}

/* ASan does not move the poisoning with mremap'd pages: the block is unpoisoned at its new address. */
typedef struct hak_track_move_s {
    char unused_;
} hak_track_move_t;
static inline void hak_track_move_begin(hak_track_move_t *m, void *p, size_t old) {
    (void)m;
    (void)p;
    (void)old;
}
static inline void *hak_track_move_end(hak_track_move_t *m, void *q, size_t size) {
    (void)m;
    if (size != 0)
        ASAN_UNPOISON_MEMORY_REGION(q, size);
    return q;
}
static inline void hak_track_move_abort(hak_track_move_t *m) { (void)m; }

/* A binary search, as memcheck's: __asan_region_is_poisoned would read the shadow of the whole block. */
static inline size_t hak_track_size(const void *p, size_t usable) {
    size_t lo = 0, hi = usable; /* [p, p+lo) is not poisoned; p+hi is, or hi == usable */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (__asan_address_is_poisoned((const char *)p + mid))
            hi = mid;
        else
            lo = mid + 1;
    }
    return lo;
}

static inline void hak_track_noaccess(const void *p, size_t n) {
    if (n != 0)
        ASAN_POISON_MEMORY_REGION(p, n);
}
static inline void hak_track_open(const void *p, size_t n) {
    if (n != 0)
        ASAN_UNPOISON_MEMORY_REGION(p, n);
}
static inline void hak_track_close(const void *p, size_t n) { hak_track_noaccess(p, n); }
static inline void hak_track_free_range(void *p, size_t n) { hak_track_noaccess(p, n); }
static inline void hak_track_forget(const void *p, size_t n) { hak_track_open(p, n); }

static inline void hak_track_save(const void *p, size_t n, hak_track_saved_t *s) {
    s->accessible = hak_track_size(p, n);
}
static inline void hak_track_restore(const void *p, size_t n, const hak_track_saved_t *s) {
    hak_track_open(p, s->accessible);
    hak_track_noaccess((const char *)p + s->accessible, n - s->accessible);
}

#else /* no tracking: nothing at all */

typedef struct hak_track_saved_s {
    char unused_;
} hak_track_saved_t;
typedef struct hak_track_move_s {
    char unused_;
} hak_track_move_t;

#define hak_track_alloc(p, size, zeroed) (p)
#define hak_track_free(p, usable) ((void)0)
#define hak_track_resize(p, old, size) ((void)(old), (p))
#define hak_track_move_begin(m, p, old) ((void)(m))
#define hak_track_move_end(m, q, size) (q)
#define hak_track_move_abort(m) ((void)(m))
#define hak_track_size(p, usable) (usable)
#define hak_track_free_range(p, n) ((void)0)
#define hak_track_noaccess(p, n) ((void)0)
#define hak_track_open(p, n) ((void)0)
#define hak_track_close(p, n) ((void)0)
#define hak_track_forget(p, n) ((void)0)
#define hak_track_save(p, n, s) ((void)(s))
#define hak_track_restore(p, n, s) ((void)(s))

#endif

#endif
