/* SPDX-License-Identifier: MIT */
/* fuzz_api.c: a libFuzzer harness over hakmem's public API (include/hakmem/hakmem.h).
 *
 * The input is a sequence of operations: one opcode byte each, then its argument bytes (missing bytes read as
 * 0). The operations allocate, reallocate, free and inspect blocks of every tier (tiny 16 B .. 8 KiB, pool
 * 8 KiB .. 256 KiB, large above that, capped at a few MiB) on the default heap and on up to HEAP_SLOTS
 * private heaps (with and without a limit), create and destroy heaps, and read statistics. The harness only
 * ever uses the API correctly; it keeps a table of the live blocks and checks after every call what the API
 * promises:
 *   - every block holds the pattern of its tag over its requested size (sampled: first and last 64 bytes and
 *     8 bytes every stride, whole blocks up to 1 KiB) and a marker in the last 8 usable bytes; both are
 *     checked before every free, realloc, usable_size and rewrite, and the whole table after a heap destroy;
 *   - realloc keeps the prefix, calloc gives zeroes, hak_usable_size >= requested (and stable while the
 *     block lives), alignments are honoured, hak_heap_of names the heap the block came from, a new block
 *     overlaps no live one;
 *   - failures are NULL with ENOMEM (EINVAL for a bad alignment only), allowed only on a heap with a limit
 *     or for sizes no machine can map, and harm nothing;
 *   - statistics succeed, fill only what the caller's size allows, and agree with the table (live blocks per
 *     heap, heap count, the limit and the name).
 * A failed check prints the operation and aborts; hakmem's own reports (`hakmem: error: ...`) abort too
 * (HAKMEM_ON_ERROR defaults to abort). Every input ends by freeing its blocks and destroying its heaps, so
 * inputs are independent.
 *
 * HAK_FUZZ_COUNT=1 in the environment prints, at exit, the inputs run, the operations decoded and the hak_*
 * calls made (each input's cleanup included). tests/fuzz/make_corpus.py writes the seed corpus and documents
 * the input format; tests/fuzz/README.md tells how to run it. */
#define HT_STANDALONE 1
#include "hakmem_test.h"

#include <hakmem/hakmem.h>

#include <stdarg.h>
#include <stdbool.h>

enum {
    MAX_BLOCKS = 4096, /* live blocks in the table: a span of the smallest class */
    MAX_LARGE = 48,    /* of which above the slab sizes (or with a large alignment) */
    HEAP_SLOTS = 4,    /* private heaps at once; slot 0 of the heap table is the default heap */
    BURST_MAX = 64,    /* blocks per burst allocation or free */
    WHOLE_MAX = 1024,  /* blocks up to this size get the pattern over every byte */
    ZERO_FULL = 4096,  /* calloc: every byte checked up to here, sampled beyond */
};
#define LARGE_CAP ((size_t)4 << 20) /* largest generated size (4 MiB), plus a few edges just above */
#define BUDGET ((size_t)256 << 20)  /* requested bytes live at once */
#define HUGE_MIN ((size_t)1 << 47)  /* sizes from here on can never be mapped: they must fail */
#define NONE ((size_t)-1)
#define SLACK_SALT 0x51ac4b10c4ull

typedef struct {
    unsigned char *p;
    size_t size;   /* requested */
    size_t usable; /* hak_usable_size when it was allocated */
    uint64_t tag;
    int heap;   /* slot in heaps[] */
    bool large; /* counted against MAX_LARGE */
} block_t;

typedef struct {
    hak_heap_t *h; /* slot 0: the default heap; others: NULL when free */
    size_t limit;
    char name[96];     /* what the heap was given ("" when opts or name was NULL) */
    bool default_name; /* created with opts == NULL or name == NULL */
} heap_slot_t;

static block_t blocks[MAX_BLOCKS]; /* in allocation order (a realloc keeps its place) */
static size_t nblocks, nlarge, live_req;
static heap_slot_t heaps[1 + HEAP_SLOTS];
static uint64_t next_tag;
static FILE *devnull;
static int counting;
static uint64_t count_inputs, count_ops, count_calls;

/* Every hak_* call goes through API() so that it is counted. */
#define API(call) (count_calls++, (call))

/* ---- failures ------------------------------------------------------------------------------------------ */
__attribute__((noreturn, format(printf, 2, 3))) static void fail(const char *op, const char *fmt, ...) {
    fprintf(stderr, "fuzz_api: %s: ", op);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    fflush(stderr);
    abort();
}

/* ---- input reader -------------------------------------------------------------------------------------- */
typedef struct {
    const uint8_t *d;
    size_t n, i;
} rd_t;

static uint8_t u8(rd_t *r) { return r->i < r->n ? r->d[r->i++] : 0; }
static uint32_t u16(rd_t *r) {
    uint32_t a = u8(r);
    return a | (uint32_t)u8(r) << 8;
}
static uint32_t u24(rd_t *r) {
    uint32_t a = u16(r);
    return a | (uint32_t)u8(r) << 16;
}

/* A size: a mode byte and 3 value bytes. Covers 0, the tiny classes, the pool, large blocks up to LARGE_CAP,
 * the tier edges +-2, and powers of two up to 4 MiB. */
static size_t gen_size(rd_t *r) {
    /* clang-format off */
    static const size_t edges[] = {16, 32, 128, 256, 1024, 4096, 8192, 16384, 65536, 131072, 262144, HT_MIB,
                                   2 * HT_MIB - 64, 2 * HT_MIB, 3 * HT_MIB, LARGE_CAP - 64, LARGE_CAP};
    /* clang-format on */
    uint8_t m = u8(r);
    uint32_t v = u24(r);
    switch (m % 8) {
    case 0:
        return v % 129;
    case 1:
    case 2:
        return v % (HT_TINY_MAX + 1);
    case 3:
        return HT_TINY_MAX + 1 + v % (HT_SLAB_MAX - HT_TINY_MAX);
    case 4:
        return HT_SLAB_MAX + 1 + v % (LARGE_CAP - HT_SLAB_MAX);
    case 5: {
        size_t e = edges[v % (sizeof edges / sizeof edges[0])];
        size_t d = (v >> 8) % 5;
        return e + d >= 2 ? e + d - 2 : 0;
    }
    case 6:
        return (size_t)1 << (v % 23);
    default:
        return 16 * (1 + v % 512); /* multiples of 16 up to 8 KiB */
    }
}

/* ---- the pattern ----------------------------------------------------------------------------------------
 * The byte at offset i of a block tagged t is ht_pat(t, i) (tests/hakmem_test.h), so any sub-range can be
 * filled or checked on its own. A block of n bytes is sampled at [0, 64), 8 bytes at every multiple of its
 * stride (the smallest power of two >= 256 with at most 32 multiples in the block) and [n - 64, n); blocks
 * up to WHOLE_MAX bytes are patterned whole. */
enum { PAT_FILL, PAT_CHECK, PAT_ZERO };

/* The pattern loops and the overlap scan are the harness's hot spots, and their comparisons say nothing about
 * hakmem: no coverage instrumentation (and its comparison tracing) there. */
#if defined(__clang__) && __clang_major__ >= 13
#define NO_COVERAGE __attribute__((no_sanitize("coverage")))
#else
#define NO_COVERAGE
#endif

NO_COVERAGE static size_t range_op(int mode, unsigned char *p, size_t from, size_t to, uint64_t tag) {
    if (from >= to)
        return NONE;
    if (mode == PAT_FILL) {
        ht_fill_range(p, from, to, tag);
        return NONE;
    }
    if (mode == PAT_CHECK)
        return ht_check_range(p, from, to, tag);
    for (size_t i = from; i < to; i++)
        if (p[i] != 0)
            return i;
    return NONE;
}

static size_t min_sz(size_t a, size_t b) { return a < b ? a : b; }

/* Applies mode to the sampled ranges of a block of n bytes, clipped to [0, lim); the first bad offset or
 * NONE. */
NO_COVERAGE static size_t pattern(int mode, unsigned char *p, size_t n, size_t lim, uint64_t tag) {
    lim = min_sz(lim, n);
    if (n <= WHOLE_MAX)
        return range_op(mode, p, 0, lim, tag);
    size_t bad = range_op(mode, p, 0, min_sz(64, lim), tag);
    if (bad != NONE)
        return bad;
    size_t stride = 256;
    while (stride < n / 32)
        stride <<= 1;
    for (size_t off = stride; off + 8 <= n - 64 && off < lim; off += stride)
        if ((bad = range_op(mode, p, off, min_sz(off + 8, lim), tag)) != NONE)
            return bad;
    return range_op(mode, p, n - 64, lim, tag);
}

/* The marker in the last 8 usable bytes, when the block has that much slack. */
static size_t slack(int mode, const block_t *b) {
    if (b->usable < b->size || b->usable - b->size < 8)
        return NONE;
    return range_op(mode, b->p, b->usable - 8, b->usable, b->tag ^ SLACK_SALT);
}

static void check_block(const block_t *b, const char *op) {
    size_t bad = pattern(PAT_CHECK, b->p, b->size, b->size, b->tag);
    if (bad != NONE)
        fail(op, "block %p (%zu bytes, heap slot %d, tag %llx) damaged at offset %zu", (void *)b->p, b->size,
             b->heap, (unsigned long long)b->tag, bad);
    if ((bad = slack(PAT_CHECK, b)) != NONE)
        fail(op, "block %p (%zu bytes, usable %zu, heap slot %d): usable slack damaged at offset %zu",
             (void *)b->p, b->size, b->usable, b->heap, bad);
}

static void check_all(const char *op) {
    for (size_t i = 0; i < nblocks; i++)
        check_block(&blocks[i], op);
}

/* ---- heaps --------------------------------------------------------------------------------------------- */
static hak_heap_t *heap_handle(int slot) { return slot == 0 ? hak_heap_default() : heaps[slot].h; }

/* The heap argument for a hak_heap_* call on slot: the default heap may be given as NULL. */
static hak_heap_t *heap_arg(int slot, uint8_t sel) {
    return slot == 0 && (sel & 0x80) ? NULL : heap_handle(slot);
}

/* A heap slot from a byte: 0 (the default heap) or a live private heap; an empty slot falls back to 0. */
static int pick_heap(uint8_t b) {
    int slot = b % (1 + HEAP_SLOTS);
    return heaps[slot].h != NULL ? slot : 0;
}

static bool unlimited(int slot) { return slot == 0 || heaps[slot].limit == 0; }

/* ---- the block table ----------------------------------------------------------------------------------- */
static bool is_large(size_t n, size_t align) { return n > HT_SLAB_MAX || align > HT_TINY_MAX; }

/* Room in the table and the budgets for one more block of n bytes (alignment align). */
static bool room(size_t n, size_t align) {
    if (nblocks >= MAX_BLOCKS || n > BUDGET - live_req)
        return false;
    return !is_large(n, align) || nlarge < MAX_LARGE;
}

/* Checks that [p, p + usable) overlaps no live block other than blocks[skip]. */
NO_COVERAGE static void check_no_overlap(const unsigned char *p, size_t usable, size_t skip, const char *op) {
    for (size_t i = 0; i < nblocks; i++) {
        if (i == skip)
            continue;
        const block_t *b = &blocks[i];
        if (p < b->p + b->usable && b->p < p + usable)
            fail(op, "new block %p (usable %zu) overlaps live block %p (usable %zu, heap slot %d)", (void *)p,
                 usable, (void *)b->p, b->usable, b->heap);
    }
}

/* A NULL result: must be ENOMEM (err), and only where a limit or the size allows it. */
static void check_failure(int slot, size_t n, int err, const char *op) {
    if (err != ENOMEM)
        fail(op, "%zu bytes on heap slot %d: NULL with errno %d, expected ENOMEM", n, slot, err);
    if (unlimited(slot) && n < HUGE_MIN)
        fail(op, "%zu bytes on unlimited heap slot %d: NULL (ENOMEM)", n, slot);
}

/* Takes a new block from an allocation call: checks it and adds it to the table (pattern written). */
static void add_block(unsigned char *p, size_t n, size_t align, int slot, bool zeroed, int err,
                      const char *op) {
    if (p == NULL) {
        check_failure(slot, n, err, op);
        return;
    }
    size_t want = align > 16 ? align : 16;
    if ((uintptr_t)p % want != 0)
        fail(op, "%zu bytes, alignment %zu: %p is misaligned", n, align, (void *)p);
    size_t usable = API(hak_usable_size(p));
    if (usable < n)
        fail(op, "%zu bytes: usable size %zu", n, usable);
    hak_heap_t *owner = API(hak_heap_of(p));
    if (owner != heap_handle(slot))
        fail(op, "%zu bytes from heap slot %d (%p): hak_heap_of gives %p", n, slot, (void *)heap_handle(slot),
             (void *)owner);
    if (zeroed) {
        size_t bad = range_op(PAT_ZERO, p, 0, min_sz(n, ZERO_FULL), 0);
        if (bad == NONE)
            bad = pattern(PAT_ZERO, p, n, n, 0);
        if (bad != NONE)
            fail(op, "%zu bytes at %p: not zero at offset %zu", n, (void *)p, bad);
    }
    check_no_overlap(p, usable, NONE, op);
    block_t *b = &blocks[nblocks++];
    *b = (block_t){p, n, usable, ++next_tag, slot, is_large(n, align)};
    pattern(PAT_FILL, p, n, n, b->tag);
    slack(PAT_FILL, b);
    live_req += n;
    nlarge += b->large;
}

static void drop_block(size_t i) {
    live_req -= blocks[i].size;
    nlarge -= blocks[i].large;
    memmove(&blocks[i], &blocks[i + 1], (nblocks - i - 1) * sizeof blocks[0]);
    nblocks--;
}

static void free_block(size_t i, const char *op) {
    check_block(&blocks[i], op);
    API(hak_free(blocks[i].p));
    drop_block(i);
}

/* ---- operations ---------------------------------------------------------------------------------------- */
static void op_alloc(rd_t *r, bool on_heap) {
    int slot = 0;
    uint8_t sel = 0;
    if (on_heap)
        slot = pick_heap(sel = u8(r));
    size_t n = gen_size(r);
    if (!room(n, 0))
        return;
    errno = 0;
    unsigned char *p = on_heap ? API(hak_heap_alloc(heap_arg(slot, sel), n)) : API(hak_alloc(n));
    add_block(p, n, 0, slot, false, errno, on_heap ? "hak_heap_alloc" : "hak_alloc");
}

static void op_calloc(rd_t *r, bool on_heap) {
    static const size_t counts[] = {1, 1, 1, 2, 3, 4, 7, 8, 16, 64, 100, 1000, 0};
    const char *op = on_heap ? "hak_heap_calloc" : "hak_calloc";
    int slot = 0;
    uint8_t sel = 0;
    if (on_heap)
        slot = pick_heap(sel = u8(r));
    uint8_t c = u8(r);
    size_t n = gen_size(r);
    size_t count, size;
    if (c % 16 == 15) { /* count * size overflows, or passes PTRDIFF_MAX */
        static const size_t bad[][2] = {{SIZE_MAX / 2 + 1, 2},
                                        {SIZE_MAX, SIZE_MAX},
                                        {(size_t)1 << 32, (size_t)1 << 31},
                                        {1, (size_t)PTRDIFF_MAX + 1},
                                        {(size_t)PTRDIFF_MAX / 16 + 1, 16}};
        size_t k = (c >> 4) % (sizeof bad / sizeof bad[0]);
        errno = 0;
        void *p = on_heap ? API(hak_heap_calloc(heap_arg(slot, sel), bad[k][0], bad[k][1]))
                          : API(hak_calloc(bad[k][0], bad[k][1]));
        int err = errno;
        if (p != NULL || err != ENOMEM)
            fail(op, "(%zu, %zu) overflows: returned %p, errno %d (expected NULL, ENOMEM)", bad[k][0],
                 bad[k][1], p, err);
        return;
    }
    count = counts[c % (sizeof counts / sizeof counts[0])];
    if (c & 0x80) { /* the other way round: n elements of count bytes */
        size = count;
        count = count ? n / count : n;
    } else {
        size = count ? n / count : n;
    }
    n = count * size;
    if (!room(n, 0))
        return;
    errno = 0;
    unsigned char *p =
        on_heap ? API(hak_heap_calloc(heap_arg(slot, sel), count, size)) : API(hak_calloc(count, size));
    add_block(p, n, 0, slot, true, errno, op);
}

/* An alignment from a byte: 16 B .. 4 MiB mostly, 1 .. 8, or one that is not a power of two (*bad). */
static size_t gen_align(uint8_t a, bool *bad) {
    static const size_t bads[] = {0, 3, 24, 48, 1000, 4097, (size_t)3 << 20, SIZE_MAX};
    unsigned k = a % 32;
    *bad = false;
    if (k < 19)
        return (size_t)16 << k;
    if (k < 23)
        return (size_t)1 << (k - 19);
    if (k < 28)
        return (size_t)16 << (a >> 5); /* 16 B .. 2 KiB again */
    *bad = true;
    return bads[(a >> 5) % (sizeof bads / sizeof bads[0])];
}

static void op_aligned(rd_t *r, bool on_heap) {
    const char *op = on_heap ? "hak_heap_aligned_alloc" : "hak_aligned_alloc";
    int slot = 0;
    uint8_t sel = 0;
    if (on_heap)
        slot = pick_heap(sel = u8(r));
    bool bad;
    size_t align = gen_align(u8(r), &bad);
    size_t n = gen_size(r);
    if (!bad && !room(n, align))
        return;
    errno = 0;
    unsigned char *p = on_heap ? API(hak_heap_aligned_alloc(heap_arg(slot, sel), align, n))
                               : API(hak_aligned_alloc(align, n));
    int err = errno;
    if (bad) {
        if (p != NULL || err != EINVAL)
            fail(op,
                 "alignment %zu (not a power of two), %zu bytes: returned %p, errno %d (expected NULL, "
                 "EINVAL)",
                 align, n, (void *)p, err);
        return;
    }
    add_block(p, n, align, slot, false, err, op);
}

/* A new size for a block of n bytes: any size, a little more or less, half, double, or 0. */
static size_t gen_resize(rd_t *r, size_t n) {
    uint8_t k = u8(r);
    size_t any = gen_size(r), d = any % 256;
    switch (k % 8) {
    case 0:
    case 1:
    case 2:
        return any;
    case 3:
        return n + d;
    case 4:
        return n - min_sz(n, d);
    case 5:
        return n / 2;
    case 6:
        return n < LARGE_CAP ? 2 * n + 1 : n;
    default:
        return 0;
    }
}

static void op_realloc(rd_t *r, bool on_heap) {
    const char *op = on_heap ? "hak_heap_realloc" : "hak_realloc";
    uint8_t sel = u8(r);
    if (nblocks == 0)
        return;
    size_t i = sel % nblocks;
    block_t *b = &blocks[i];
    size_t m = gen_resize(r, b->size);
    /* budgets: growth counts, and a block that becomes large must find a large slot */
    if (m > b->size && m - b->size > BUDGET - live_req)
        return;
    if (is_large(m, 0) && !b->large && nlarge >= MAX_LARGE)
        return;
    check_block(b, op);
    errno = 0;
    /* realloc keeps the block's heap: hak_heap_realloc gets the block's own heap */
    unsigned char *q =
        on_heap ? API(hak_heap_realloc(heap_arg(b->heap, sel), b->p, m)) : API(hak_realloc(b->p, m));
    int err = errno;
    if (q == NULL) {
        check_failure(b->heap, m, err, op);
        check_block(b, op); /* harmed nothing */
        return;
    }
    if ((uintptr_t)q % 16 != 0)
        fail(op, "%zu -> %zu bytes: %p is misaligned", b->size, m, (void *)q);
    size_t usable = API(hak_usable_size(q));
    if (usable < m)
        fail(op, "%zu -> %zu bytes: usable size %zu", b->size, m, usable);
    hak_heap_t *owner = API(hak_heap_of(q));
    if (owner != heap_handle(b->heap))
        fail(op, "%zu -> %zu bytes: heap slot %d (%p) became %p", b->size, m, b->heap,
             (void *)heap_handle(b->heap), (void *)owner);
    size_t keep = min_sz(b->size, m);
    size_t bad = pattern(PAT_CHECK, q, b->size, keep, b->tag);
    if (bad != NONE)
        fail(op, "%zu -> %zu bytes (%s): kept content damaged at offset %zu", b->size, m,
             q == b->p ? "in place" : "moved", bad);
    check_no_overlap(q, usable, i, op);
    bool large = is_large(m, 0) || (b->large && q == b->p); /* in place, a large block stays one */
    live_req += m - b->size;
    nlarge += large - b->large;
    b->p = q;
    b->size = m;
    b->usable = usable;
    b->large = large;
    pattern(PAT_FILL, q, m, m, b->tag);
    slack(PAT_FILL, b);
}

static void op_realloc_null(rd_t *r) {
    uint8_t sel = u8(r);
    int slot = pick_heap(sel);
    size_t n = gen_size(r);
    if (!room(n, 0))
        return;
    errno = 0;
    bool plain = slot == 0 && (sel & 0x40);
    unsigned char *p =
        plain ? API(hak_realloc(NULL, n)) : API(hak_heap_realloc(heap_arg(slot, sel), NULL, n));
    add_block(p, n, 0, slot, false, errno, plain ? "hak_realloc(NULL)" : "hak_heap_realloc(NULL)");
}

static void op_free(rd_t *r) {
    uint8_t sel = u8(r);
    if (nblocks == 0) {
        API(hak_free(NULL));
        return;
    }
    free_block(sel % nblocks, "hak_free");
}

static void op_usable(rd_t *r) {
    uint8_t sel = u8(r);
    if (nblocks == 0) {
        if (API(hak_usable_size(NULL)) != 0)
            fail("hak_usable_size", "NULL: not 0");
        return;
    }
    block_t *b = &blocks[sel % nblocks];
    check_block(b, "hak_usable_size");
    size_t u = API(hak_usable_size(b->p));
    if (u != b->usable)
        fail("hak_usable_size", "block %p of %zu bytes: %zu, was %zu", (void *)b->p, b->size, u, b->usable);
}

static void op_rewrite(rd_t *r) {
    uint8_t sel = u8(r);
    if (nblocks == 0)
        return;
    block_t *b = &blocks[sel % nblocks];
    check_block(b, "rewrite");
    b->tag = ++next_tag;
    pattern(PAT_FILL, b->p, b->size, b->size, b->tag);
    slack(PAT_FILL, b);
}

static void op_heap_of(rd_t *r) {
    uint8_t sel = u8(r);
    static int global_word;
    int local_word = 0;
    const void *foreign[] = {NULL, &global_word, &local_word, blocks};
    if (nblocks == 0 || sel % 8 == 7) { /* NULL and memory hakmem does not own: NULL */
        const void *p = foreign[(sel >> 3) % 4];
        hak_heap_t *h = API(hak_heap_of(p));
        if (h != NULL)
            fail("hak_heap_of", "foreign pointer %p: %p, expected NULL", p, (void *)h);
        return;
    }
    const block_t *b = &blocks[sel % nblocks];
    hak_heap_t *h = API(hak_heap_of(b->p));
    if (h != heap_handle(b->heap))
        fail("hak_heap_of", "block %p (%zu bytes) of heap slot %d (%p): %p", (void *)b->p, b->size, b->heap,
             (void *)heap_handle(b->heap), (void *)h);
}

static void op_heap_create(rd_t *r) {
    static const size_t limits[] = {0,       64 << 10, 128 << 10, 256 << 10, 512 << 10, 1 << 20,
                                    2 << 20, 3 << 20,  4 << 20,   8 << 20,   16 << 20,  64 << 20};
    static const char long_name[] =
        "a-heap-name-longer-than-the-sixty-three-characters-that-the-stats-keep-x";
    uint8_t s = u8(r), v = u8(r);
    int slot = 1 + s % HEAP_SLOTS;
    if (heaps[slot].h != NULL)
        return;
    heap_slot_t *hs = &heaps[slot];
    hak_heap_options_t opts = {0, NULL};
    bool no_opts = v % 4 == 0;
    if (!no_opts) {
        opts.limit_bytes = limits[((v >> 2) & 15) % (sizeof limits / sizeof limits[0])];
        if (v & 0x80)
            opts.limit_bytes += (size_t)u16(r) * 4096; /* anywhere between */
        switch (s >> 6) {
        case 0:
            opts.name = NULL;
            break;
        case 1:
            opts.name = long_name;
            break;
        default:
            snprintf(hs->name, sizeof hs->name, "fuzz-%d-%u", slot, (unsigned)s);
            opts.name = hs->name;
        }
    }
    errno = 0;
    hak_heap_t *h = API(hak_heap_create(no_opts ? NULL : &opts));
    if (h == NULL)
        fail("hak_heap_create", "slot %d, limit %zu: NULL (errno %d)", slot, opts.limit_bytes, errno);
    for (int k = 0; k <= HEAP_SLOTS; k++)
        if (heap_handle(k) == h)
            fail("hak_heap_create", "returned %p, the handle of live heap slot %d", (void *)h, k);
    hs->h = h;
    hs->limit = opts.limit_bytes;
    hs->default_name = opts.name == NULL;
    if (opts.name != NULL && opts.name != hs->name)
        snprintf(hs->name, sizeof hs->name, "%s", opts.name);
}

/* Frees the blocks of a heap by destroying it; the other heaps' blocks must be untouched. */
static void destroy_heap(int slot, const char *op) {
    for (size_t i = 0; i < nblocks; i++)
        if (blocks[i].heap == slot)
            check_block(&blocks[i], op);
    API(hak_heap_destroy(heaps[slot].h));
    heaps[slot].h = NULL;
    for (size_t i = nblocks; i-- > 0;)
        if (blocks[i].heap == slot)
            drop_block(i);
    check_all(op);
}

static void op_heap_destroy(rd_t *r) {
    int slot = 1 + u8(r) % HEAP_SLOTS;
    if (heaps[slot].h != NULL)
        destroy_heap(slot, "hak_heap_destroy");
}

/* Statistics of heaps[slot] (slot -1: the process), with the caller's size field sz (the rest of the
 * structure, and the bytes after it, must be left alone); checks them against the table. */
static void stats_check(int slot, size_t sz) {
    const char *op = "hak_heap_stats";
    union {
        hak_stats_t st;
        unsigned char bytes[sizeof(hak_stats_t) + 64];
    } u;
    memset(&u, 0xa5, sizeof u);
    u.st.size = sz;
    int rc = API(hak_heap_stats(slot < 0 ? NULL : heap_handle(slot), &u.st));
    if (rc != 0)
        fail(op, "heap slot %d: returned %d", slot, rc);
    if (u.st.size != sz)
        fail(op, "heap slot %d: size field changed from %zu to %zu", slot, sz, u.st.size);
    for (size_t k = sz; k < sizeof u.bytes; k++)
        if (u.bytes[k] != 0xa5)
            fail(op, "heap slot %d, size %zu: wrote byte %zu", slot, sz, k);
    if (sz < sizeof u.st)
        return;
    const hak_stats_t *st = &u.st;
    uint64_t blocks_of = 0, usable_of = 0;
    for (size_t i = 0; i < nblocks; i++) {
        if (slot < 0 || blocks[i].heap == slot) {
            blocks_of++;
            usable_of += blocks[i].usable;
        }
    }
    if (memchr(st->name, '\0', sizeof st->name) == NULL)
        fail(op, "heap slot %d: name not terminated", slot);
    if (st->live_blocks != blocks_of)
        fail(op, "heap slot %d: %llu live blocks, the harness holds %llu", slot,
             (unsigned long long)st->live_blocks, (unsigned long long)blocks_of);
    if (st->live_bytes < usable_of)
        fail(op, "heap slot %d: %llu live bytes, below the %llu usable bytes of its blocks", slot,
             (unsigned long long)st->live_bytes, (unsigned long long)usable_of);
    if (st->peak_live_bytes < st->live_bytes)
        fail(op, "heap slot %d: peak %llu below live %llu", slot, (unsigned long long)st->peak_live_bytes,
             (unsigned long long)st->live_bytes);
    if (st->large_blocks > st->live_blocks || st->large_bytes > st->live_bytes)
        fail(op, "heap slot %d: large blocks %llu (%llu bytes) beyond live %llu (%llu bytes)", slot,
             (unsigned long long)st->large_blocks, (unsigned long long)st->large_bytes,
             (unsigned long long)st->live_blocks, (unsigned long long)st->live_bytes);
    if (st->class_count > HAK_STATS_CLASSES_MAX)
        fail(op, "heap slot %d: class_count %u", slot, st->class_count);
    uint64_t class_live = 0, spans = 0;
    for (uint32_t c = 0; c < st->class_count; c++) {
        if (st->classes[c].block_size == 0 ||
            (c > 0 && st->classes[c].block_size <= st->classes[c - 1].block_size))
            fail(op, "heap slot %d: class %u has block size %llu", slot, c,
                 (unsigned long long)st->classes[c].block_size);
        class_live += st->classes[c].live_blocks;
        spans += st->classes[c].slabs;
    }
    if (class_live + st->large_blocks != st->live_blocks)
        fail(op, "heap slot %d: classes hold %llu live blocks and large %llu, total %llu", slot,
             (unsigned long long)class_live, (unsigned long long)st->large_blocks,
             (unsigned long long)st->live_blocks);
    if (slot < 0) {
        uint64_t live_heaps = 1;
        for (int k = 1; k <= HEAP_SLOTS; k++)
            live_heaps += heaps[k].h != NULL;
        if (st->heap_count != live_heaps)
            fail(op, "process: %llu heaps, the harness holds %llu", (unsigned long long)st->heap_count,
                 (unsigned long long)live_heaps);
        return;
    }
    if (slot == 0)
        return;
    const heap_slot_t *hs = &heaps[slot];
    if (st->limit_bytes != hs->limit)
        fail(op, "heap slot %d: limit %llu, created with %zu", slot, (unsigned long long)st->limit_bytes,
             hs->limit);
    if (hs->default_name ? st->name[0] == '\0' : strncmp(st->name, hs->name, sizeof st->name - 1) != 0)
        fail(op, "heap slot %d: name '%s', created with '%s'", slot, st->name,
             hs->default_name ? "(none)" : hs->name);
    /* every span holds at least one 64 KiB slab, every large block its header: all charged to the limit */
    uint64_t charged_min = spans * (64 << 10) + st->large_bytes + st->large_blocks * 64;
    if (hs->limit != 0 && charged_min > hs->limit)
        fail(op, "heap slot %d: %llu spans and %llu large bytes: at least %llu bytes, limit %zu", slot,
             (unsigned long long)spans, (unsigned long long)st->large_bytes, (unsigned long long)charged_min,
             hs->limit);
}

static void op_stats(rd_t *r) {
    uint8_t w = u8(r), v = u8(r);
    int slot = (int)(w % (2 + HEAP_SLOTS)) - 1; /* -1: the process */
    if (slot > 0 && heaps[slot].h == NULL)
        slot = 0;
    size_t sz = sizeof(hak_stats_t);
    if (v % 4 == 3) /* a caller that knows an older, shorter structure */
        sz = sizeof(size_t) + (size_t)u16(r) % (sizeof(hak_stats_t) - sizeof(size_t) + 1);
    stats_check(slot, sz);
}

static void op_stats_print(rd_t *r) { API(hak_stats_print(devnull, u8(r) & 1)); }

static void op_collect(rd_t *r) { API(hak_collect(u8(r) & 1)); }

static void op_burst_alloc(rd_t *r) {
    uint8_t sel = u8(r);
    int slot = pick_heap(sel);
    size_t k = 1 + u8(r) % BURST_MAX;
    size_t n = gen_size(r);
    for (size_t j = 0; j < k && room(n, 0); j++) {
        errno = 0;
        unsigned char *p =
            slot == 0 && (sel & 0x40) ? API(hak_alloc(n)) : API(hak_heap_alloc(heap_arg(slot, sel), n));
        add_block(p, n, 0, slot, false, errno, "burst hak_heap_alloc");
        if (p == NULL)
            break;
    }
}

/* Frees k blocks: the newest, the oldest, or every other one from a position. */
static void op_burst_free(rd_t *r) {
    uint8_t m = u8(r);
    size_t k = 1 + u8(r) % BURST_MAX;
    size_t at = u8(r);
    for (size_t j = 0; j < k && nblocks > 0; j++) {
        switch (m % 3) {
        case 0:
            free_block(nblocks - 1, "burst hak_free");
            break;
        case 1:
            free_block(0, "burst hak_free");
            break;
        default:
            at = (at + 1) % nblocks; /* the block after the freed one moved to its place: skip one */
            free_block(at, "burst hak_free");
        }
    }
}

/* Requests no machine can satisfy must fail with ENOMEM and harm nothing. */
static void op_errors(rd_t *r) {
    static const size_t huge[] = {SIZE_MAX,
                                  SIZE_MAX - 4095,
                                  SIZE_MAX - (2u << 20),
                                  (size_t)PTRDIFF_MAX + 1,
                                  (size_t)PTRDIFF_MAX,
                                  (size_t)PTRDIFF_MAX - 4096,
                                  (size_t)1 << 62,
                                  (size_t)1 << 48,
                                  HUGE_MIN};
    uint8_t w = u8(r), v = u8(r), sel = u8(r);
    size_t n = huge[v % (sizeof huge / sizeof huge[0])];
    int slot = pick_heap(sel);
    const char *op = "huge request";
    void *p = NULL;
    errno = 0;
    switch (w % 5) {
    case 0:
        op = "hak_alloc(huge)";
        p = API(hak_alloc(n));
        break;
    case 1:
        op = "hak_heap_alloc(huge)";
        p = API(hak_heap_alloc(heap_arg(slot, sel), n));
        break;
    case 2: {
        bool bad;
        size_t align = gen_align(sel, &bad);
        if (bad)
            align = 64;
        op = "hak_heap_aligned_alloc(huge)";
        p = API(hak_heap_aligned_alloc(heap_arg(slot, sel), align, n));
        break;
    }
    case 3:
        op = "hak_heap_realloc(NULL, huge)";
        p = API(hak_heap_realloc(heap_arg(slot, sel), NULL, n));
        break;
    default: {
        op = "hak_realloc(p, huge)";
        if (nblocks == 0)
            return;
        block_t *b = &blocks[sel % nblocks];
        check_block(b, op);
        p = API(hak_realloc(b->p, n));
        int err = errno;
        if (p != NULL || err != ENOMEM)
            fail(op, "%zu bytes: returned %p, errno %d (expected NULL, ENOMEM)", n, p, err);
        check_block(b, op);
        return;
    }
    }
    int err = errno;
    if (p != NULL || err != ENOMEM)
        fail(op, "%zu bytes: returned %p, errno %d (expected NULL, ENOMEM)", n, p, err);
}

enum {
    OP_ALLOC,
    OP_CALLOC,
    OP_REALLOC,
    OP_REALLOC_NULL,
    OP_ALIGNED,
    OP_FREE,
    OP_USABLE,
    OP_HEAP_CREATE,
    OP_HEAP_ALLOC,
    OP_HEAP_CALLOC,
    OP_HEAP_REALLOC,
    OP_HEAP_ALIGNED,
    OP_HEAP_DESTROY,
    OP_STATS,
    OP_STATS_PRINT,
    OP_COLLECT,
    OP_HEAP_OF,
    OP_REWRITE,
    OP_BURST_ALLOC,
    OP_BURST_FREE,
    OP_ERRORS,
    OP_CHECK_ALL,
    OP_COUNT
};

static const char *const op_names[OP_COUNT] = {
    "alloc",        "calloc",      "realloc",     "realloc_null", "aligned",      "free",
    "usable",       "heap_create", "heap_alloc",  "heap_calloc",  "heap_realloc", "heap_aligned",
    "heap_destroy", "stats",       "stats_print", "collect",      "heap_of",      "rewrite",
    "burst_alloc",  "burst_free",  "errors",      "check_all"};
static uint64_t op_counts[OP_COUNT];

static void run_op(uint8_t code, rd_t *r) {
    op_counts[code % OP_COUNT]++;
    switch (code % OP_COUNT) {
    case OP_ALLOC:
        op_alloc(r, false);
        break;
    case OP_CALLOC:
        op_calloc(r, false);
        break;
    case OP_REALLOC:
        op_realloc(r, false);
        break;
    case OP_REALLOC_NULL:
        op_realloc_null(r);
        break;
    case OP_ALIGNED:
        op_aligned(r, false);
        break;
    case OP_FREE:
        op_free(r);
        break;
    case OP_USABLE:
        op_usable(r);
        break;
    case OP_HEAP_CREATE:
        op_heap_create(r);
        break;
    case OP_HEAP_ALLOC:
        op_alloc(r, true);
        break;
    case OP_HEAP_CALLOC:
        op_calloc(r, true);
        break;
    case OP_HEAP_REALLOC:
        op_realloc(r, true);
        break;
    case OP_HEAP_ALIGNED:
        op_aligned(r, true);
        break;
    case OP_HEAP_DESTROY:
        op_heap_destroy(r);
        break;
    case OP_STATS:
        op_stats(r);
        break;
    case OP_STATS_PRINT:
        op_stats_print(r);
        break;
    case OP_COLLECT:
        op_collect(r);
        break;
    case OP_HEAP_OF:
        op_heap_of(r);
        break;
    case OP_REWRITE:
        op_rewrite(r);
        break;
    case OP_BURST_ALLOC:
        op_burst_alloc(r);
        break;
    case OP_BURST_FREE:
        op_burst_free(r);
        break;
    case OP_ERRORS:
        op_errors(r);
        break;
    default:
        check_all("check");
        break;
    }
}

/* ---- libFuzzer entry points ---------------------------------------------------------------------------- */
static void print_counts(void) {
    fprintf(stderr, "fuzz_api: %llu inputs, %llu operations, %llu hak_* calls\n",
            (unsigned long long)count_inputs, (unsigned long long)count_ops, (unsigned long long)count_calls);
    for (int k = 0; k < OP_COUNT; k++)
        fprintf(stderr, "%s%s %llu",
                k % 8 ? ", "
                : k   ? "\n  "
                      : "  ",
                op_names[k], (unsigned long long)op_counts[k]);
    fputc('\n', stderr);
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    devnull = fopen("/dev/null", "w");
    if (devnull == NULL) {
        perror("fuzz_api: /dev/null");
        abort();
    }
    const char *c = getenv("HAK_FUZZ_COUNT");
    counting = c != NULL && c[0] != '\0' && c[0] != '0';
    if (counting)
        atexit(print_counts);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    rd_t r = {data, size, 0};
    count_inputs++;
    /* the first byte chooses how the input ends: free every block, then destroy the heaps; or destroy the
     * heaps first (which frees their blocks), then free the rest */
    bool destroy_first = u8(&r) & 1;
    while (r.i < r.n) {
        count_ops++;
        run_op(u8(&r), &r);
    }
    if (destroy_first)
        for (int k = 1; k <= HEAP_SLOTS; k++)
            if (heaps[k].h != NULL)
                destroy_heap(k, "cleanup hak_heap_destroy");
    while (nblocks > 0)
        free_block(nblocks - 1, "cleanup hak_free");
    for (int k = 1; k <= HEAP_SLOTS; k++)
        if (heaps[k].h != NULL)
            destroy_heap(k, "cleanup hak_heap_destroy");
    stats_check(-1, sizeof(hak_stats_t)); /* nothing live, one heap */
    if (nlarge != 0 || live_req != 0)
        fail("cleanup", "harness budgets not back to zero (%zu large, %zu bytes)", nlarge, live_req);
    return 0;
}
