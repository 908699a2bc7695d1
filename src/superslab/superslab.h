/* SPDX-License-Identifier: MIT */
/* SuperSlabs: 2 MiB-aligned regions carved into 32 slabs of 64 KiB. The header at the start of the region
 * holds one descriptor per slab; a span of several slabs (for mid sizes) is described by its first
 * descriptor, and the others point back to it. A SuperSlab belongs to one thread heap at a time; when that
 * thread exits it is abandoned to its heap and adopted later by another thread of the same heap. */
#ifndef HAKMEM_SUPERSLAB_SUPERSLAB_H
#define HAKMEM_SUPERSLAB_SUPERSLAB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/atomic.h"
#include "common/compiler.h"
#include "common/list.h"
#include "common/region_map.h"

#define HAK_SS_SHIFT HAK_CHUNK_SHIFT
#define HAK_SS_SIZE ((size_t)1 << HAK_SS_SHIFT)
#define HAK_SLAB_SHIFT 16
#define HAK_SLAB_SIZE ((size_t)1 << HAK_SLAB_SHIFT)
#define HAK_SLABS_PER_SS ((unsigned)(HAK_SS_SIZE / HAK_SLAB_SIZE))
#define HAK_SS_ALL_FREE 0xffffffffu
#define HAK_DIV_SHIFT 42 /* block index = (offset * div_magic) >> HAK_DIV_SHIFT, exact for blocks < 2 MiB */

/* A free block: its layout (an encoded link) is the slab tier's (tiny/block.h). */
typedef struct hak_block_s hak_block_t;

enum hak_span_flags {
    HAK_SPAN_FULL = 1,        /* no free block when last looked at: not in its class list */
    HAK_SPAN_HAS_ALIGNED = 2, /* gave out interior (aligned) pointers: frees must round down */
};

/* Owners of SuperSlabs and spans, defined by the slab tier above (tiny/theap.h); this layer only stores
 * pointers to them. */
struct hak_theap_s;
struct hak_tiny_arena_s;

typedef struct hak_span_s {
    hak_block_t *free;       /* allocation pops here (owner only) */
    hak_block_t *local_free; /* owner's frees push here */
    uint32_t used;           /* blocks handed out and not collected back (owner writes, relaxed) */
    uint8_t flags;           /* hak_span_flags (owner writes, relaxed) */
    uint8_t cls;             /* size class */
    uint8_t block_shift;     /* k in block_size = 2^k * m, m odd (for hak_span_is_block_start) */
    uint8_t span_slabs;      /* slabs in the span; 0 = free slab */
    uint32_t block_size;
    uint32_t capacity;       /* blocks carved into lists so far (lazy extension) */
    uint32_t reserved;       /* blocks that fit in the span */
    uint32_t remote_pending; /* blocks pushed on thread_free and not yet collected (atomic; for stats) */
    uint64_t div_magic;
    uint64_t block_inv;       /* m^-1 mod 2^64, the inverse of block_size's odd part */
    uint8_t *start;           /* first block */
    hak_list_node_t link;     /* in the thread heap's list of spans with free blocks of this class */
    hak_block_t *thread_free; /* frees from other threads, one CAS each (atomic access) */
} __attribute__((aligned(128))) hak_span_t; /* a power of two: descriptor lookups are shifts, and
                                               neighbouring slabs do not share cache lines */

typedef struct hak_superslab_s {
    /* The first cache line holds what every free reads. */
    uintptr_t owner_tid; /* thread id of the owner, 0 when abandoned or cached (atomic access) */
    struct hak_theap_s *owner;
    /* Per slab: the index of its span's first slab, whose descriptor holds the span (the slab's own index
     * for a free slab). Kept here, not in the descriptors, so a free into a multi-slab span reads one
     * descriptor, not two; the index itself, not an offset back, so the lookup is a load and an address. */
    uint8_t span_first[HAK_SLABS_PER_SS];
    struct hak_tiny_arena_s *arena; /* the owning heap's slab tier, NULL while cached (atomic access) */
    hak_list_node_t link; /* in its thread heap's list, its arena's abandoned list, or the global cache */
    uint32_t free_mask;   /* bit i set = slab i is free (owner writes, relaxed) */
    uint32_t remote_mask; /* bit i set = span starting at slab i got remote frees since last scan */
    uint32_t purged_mask; /* free slabs whose pages went back to the OS (owner only) */
    uint32_t idle_mask;   /* slabs free at the last purge pass and not carved since (owner only) */
    uint64_t cached_since_ms;
    uint8_t purged; /* cached and given back to the OS */
    hak_span_t spans[HAK_SLABS_PER_SS];
} hak_superslab_t;

/* Slab 0's blocks start after the header, rounded to a page: every span then starts on a boundary of at
 * least 8 KiB, so blocks of a class that is a multiple of an alignment up to HAK_NATURAL_ALIGN_MAX are
 * aligned without padding (see hak_aligned_alloc). */
#define HAK_SS_HEADER_SIZE ((sizeof(hak_superslab_t) + 4095) & ~(size_t)4095)
#define HAK_NATURAL_ALIGN_MAX ((size_t)8192)
_Static_assert(HAK_SS_HEADER_SIZE % HAK_NATURAL_ALIGN_MAX == 0, "slab 0 must start naturally aligned");

extern HAK_HIDDEN hak_span_t hak_span_empty; /* never has free blocks: the fast path's "go slow" sentinel */

static inline hak_superslab_t *hak_ss_of(const void *p) { return (hak_superslab_t *)hak_chunk_base(p); }

/* Descriptor of the span that holds p (p must be inside a SuperSlab). */
static inline hak_span_t *hak_span_of(hak_superslab_t *ss, const void *p) {
    uintptr_t i = ((uintptr_t)p - (uintptr_t)ss) >> HAK_SLAB_SHIFT;
    return &ss->spans[hak_load_relaxed(&ss->span_first[i])];
}

static inline unsigned hak_span_index(hak_superslab_t *ss, hak_span_t *s) {
    return (unsigned)(s - ss->spans);
}

/* Offset of p from the span's first block (wrapped around, so huge, for a p below it). */
static inline uintptr_t hak_span_offset(const hak_span_t *s, const void *p) {
    return (uintptr_t)p - (uintptr_t)hak_load_relaxed(&s->start);
}

/* Index of the block holding offset `off` (a multiply by the precomputed reciprocal, no division); exact for
 * offsets below 2 MiB, garbage beyond, which callers rule out. */
static inline uint64_t hak_span_block_index(const hak_span_t *s, uintptr_t off) {
    return ((uint64_t)off * hak_load_relaxed(&s->div_magic)) >> HAK_DIV_SHIFT;
}

/* Offset `off` is the start of a block the span has carved: an exact multiple of the block size, below the
 * capacity. Rejects interior pointers, pointers past the carved blocks and pointers below the span. */
static inline bool hak_span_is_block_start(const hak_span_t *s, uintptr_t off) {
    /* One multiply (the divisibility test by the odd part's inverse): ror(off * m^-1, k) is off / block_size
     * for a multiple of block_size, and above UINT64_MAX / block_size (so above any capacity) for anything
     * else, wrapped offsets included. */
    uint64_t q = (uint64_t)off * hak_load_relaxed(&s->block_inv);
    unsigned k = hak_load_relaxed(&s->block_shift);
    q = (q >> k) | (q << ((64 - k) & 63));
    return q < hak_load_relaxed(&s->capacity);
}

/* The inverse modulo 2^64 of an odd m (Newton's iteration, each step doubles the correct low bits). */
static inline uint64_t hak_odd_inverse(uint64_t m) {
    uint64_t x = m; /* correct to 3 bits: m * m == 1 mod 8 for any odd m */
    for (int i = 0; i < 5; i++)
        x *= 2 - m * x;
    return x;
}

/* The constants by which the span divides offsets by its block size. */
static inline void hak_span_set_divisors(hak_span_t *s, size_t block_size) {
    unsigned k = (unsigned)__builtin_ctzll(block_size);
    hak_store_relaxed(&s->div_magic, ((uint64_t)1 << HAK_DIV_SHIFT) / block_size + 1);
    hak_store_relaxed(&s->block_shift, (uint8_t)k);
    hak_store_relaxed(&s->block_inv, hak_odd_inverse(block_size >> k));
}

/* Bytes covered by a span of n slabs starting at slab index i. */
static inline uint8_t *hak_span_start(hak_superslab_t *ss, unsigned i) {
    return (uint8_t *)ss + (i == 0 ? HAK_SS_HEADER_SIZE : (size_t)i * HAK_SLAB_SIZE);
}
static inline size_t hak_span_bytes(unsigned i, unsigned n) {
    return (size_t)n * HAK_SLAB_SIZE - (i == 0 ? HAK_SS_HEADER_SIZE : 0);
}

/* Iterates the spans in use: the next one at or after slab *i, advancing *i past it first, so the caller may
 * release the span it gets.  unsigned i = 0; for (hak_span_t *s; (s = hak_ss_next_span(ss, &i)) != NULL;) */
static inline hak_span_t *hak_ss_next_span(hak_superslab_t *ss, unsigned *i) {
    while (*i < HAK_SLABS_PER_SS) {
        hak_span_t *s = &ss->spans[*i];
        unsigned n = hak_load_relaxed(&s->span_slabs);
        *i += n != 0 ? n : 1;
        if (n != 0)
            return s;
    }
    return NULL;
}

/* Finds n contiguous free slabs that can hold a block of block_size, at the start of the shortest run of free
 * slabs that is long enough (best fit keeps long runs for long spans), in resident slabs if possible; the
 * first index or -1. *cost ranks the choice: 0 is an exact fit in resident slabs, less is better. Owner
 * only. */
int hak_ss_find_span(const hak_superslab_t *ss, unsigned n, size_t block_size, unsigned *cost);
/* Turns slabs [i, i+n) into one span serving blocks of `block_size` (class cls). Owner only. */
hak_span_t *hak_ss_span_init(hak_superslab_t *ss, unsigned i, unsigned n, unsigned cls, size_t block_size);
/* Returns a span's slabs to the SuperSlab's free mask. Owner only. */
void hak_ss_span_release(hak_superslab_t *ss, hak_span_t *s);
static inline bool hak_ss_is_empty(const hak_superslab_t *ss) {
    return hak_load_relaxed(&ss->free_mask) == HAK_SS_ALL_FREE;
}

/* Gives back to the OS the pages of the slabs that stayed free since the previous call (owner only; each
 * slab once until it is carved again). Slabs freed since then are likely to be carved again soon. */
void hak_ss_purge_free_slabs(hak_superslab_t *ss);

/* Global supply of SuperSlabs: reuses cached empty ones, else maps a new one. NULL with errno on failure.
 * *resident: its pages are still committed (a recently cached one), not fresh or purged; *mapped: it was
 * mapped just now (not taken from the cache). */
hak_superslab_t *hak_ss_acquire(bool *resident, bool *mapped);
/* Gives an empty SuperSlab (no live blocks) back to the global cache. */
void hak_ss_release(hak_superslab_t *ss);
/* Purges cached SuperSlabs: all of them if force, else those idle longer than the purge delay. */
void hak_ss_cache_collect(bool force);
/* Cache contents for statistics, and how many cached SuperSlabs were purged so far. */
void hak_ss_cache_stats(uint64_t *count, uint64_t *committed_count);
uint64_t hak_ss_cache_purged(void);
void hak_ss_fork_prepare(void);
void hak_ss_fork_parent(void);
void hak_ss_fork_child(void);

#endif
