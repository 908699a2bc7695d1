/* SPDX-License-Identifier: MIT */
/* stress: a multi-threaded allocator stress test.
 *
 * Every round creates T threads and joins them (thread churn). Each thread does N random operations on a
 * local array of blocks: allocate (malloc, calloc, aligned), free, realloc, and swap blocks with the other
 * threads through a shared array of atomic transfer slots. Every block carries its size and a tag derived
 * from (address, size, seed) in its first 16 bytes and a pattern derived from the tag after that; it is
 * verified before every free and realloc, by whichever thread frees it. Blocks left in the transfer slots
 * outlive the thread that allocated them and are freed by later threads; the main thread drains the rest at
 * the end.
 *
 * Exits 1 with a message on any corrupted block, NULL return or misaligned block; 2 on bad usage.
 *
 * Built against hakmem's API by default; with -DSTRESS_USE_MALLOC against malloc/free (e.g. to run it under
 * LD_PRELOAD=libhakmem_override.so or against another allocator).
 *
 * -L (tiers profile): the size mix also covers the mid sizes (8 KiB - 256 KiB, 17%) and large blocks
 * (256 KiB - max-size, 3%, half of them below 1 MiB; max-size defaults to 4 MiB), so large blocks are
 * realloc'd (mremap) and travel through the transfer slots to be freed by other threads. Large blocks are
 * then patterned in their first and last 4 KiB and 64 bytes of every 64 KiB. The run fails if no large block
 * was freed through a transfer slot.
 *
 * usage: stress [-t threads] [-r rounds] [-n ops-per-thread-per-round] [-s max-size] [-l local-slots]
 *               [-x transfer-slots] [-S seed] [-L] [-q]
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define HT_STANDALONE    /* no cmocka, no internals: stress_malloc is built against plain malloc */
#include "hakmem_test.h" /* ht_mix, ht_rng_t, ht_next */

#ifdef STRESS_USE_MALLOC
#include <malloc.h>
#define S_NAME "malloc"
#define S_MALLOC(n) malloc(n)
#define S_CALLOC(c, n) calloc((c), (n))
#define S_REALLOC(p, n) realloc((p), (n))
#define S_FREE(p) free(p)
#define S_USABLE(p) malloc_usable_size(p)
static void *s_aligned(size_t align, size_t n) {
    void *p = NULL;
    return posix_memalign(&p, align, n) == 0 ? p : NULL;
}
#define S_ALIGNED(a, n) s_aligned((a), (n))
#else
#include <hakmem/hakmem.h>
#define S_NAME "hakmem"
#define S_MALLOC(n) hak_alloc(n)
#define S_CALLOC(c, n) hak_calloc((c), (n))
#define S_REALLOC(p, n) hak_realloc((p), (n))
#define S_FREE(p) hak_free(p)
#define S_USABLE(p) hak_usable_size(p)
#define S_ALIGNED(a, n) hak_aligned_alloc((a), (n))
#endif

#define HDR 16           /* size (8 bytes) + tag (8 bytes) */
#define FULL_LIMIT 16384 /* blocks up to this size are patterned in full */
#define EDGE 4096        /* larger ones: first and last 4 KiB ... */
#define STRIDE 4096      /* ... and 64 bytes of every 4 KiB in between */
#define STRIPE 64
#define TIERS_SLAB_MAX ((size_t)256 * 1024) /* -L: above this, blocks are large (hakmem's own mappings) */
#define TIERS_STRIDE 65536                  /* -L: stripe distance in large blocks */

typedef struct {
    int threads, rounds;
    long ops;
    size_t max_size;
    size_t local_slots, transfer_slots;
    uint64_t seed;
    int quiet;
    int tiers; /* -L: mid and large sizes in the mix */
} config_t;

static config_t g;
static unsigned char *_Atomic *g_slots;
static atomic_ullong g_ops, g_bytes, g_xfer_in, g_foreign_frees;
static atomic_ullong g_mid_allocs, g_large_allocs, g_large_foreign_frees; /* -L statistics */

/* ---- helpers ------------------------------------------------------------------------------------------- */

static inline uint64_t make_tag(uintptr_t addr, size_t size) {
    return ht_mix((uint64_t)addr ^ ht_mix((uint64_t)size ^ g.seed)) | 1;
}

static inline uint64_t pat(uint64_t tag, size_t off) { return tag ^ ((uint64_t)off * 0x9E3779B97F4A7C15ull); }

static void die(const char *what, const void *p, size_t size, const char *detail, size_t off) {
    fprintf(stderr, "stress[%s]: FAILED: %s: block %p size %zu: %s (offset %zu)\n", S_NAME, what, p, size,
            detail, off);
    fflush(stdout);
    _exit(1);
}

static _Thread_local size_t g_bad_off;

static int seg_fill(unsigned char *b, size_t from, size_t to, uint64_t tag) {
    size_t o = from;
    for (; o + 8 <= to; o += 8) {
        uint64_t v = pat(tag, o);
        memcpy(b + o, &v, 8);
    }
    if (o < to) {
        uint64_t v = pat(tag, o);
        memcpy(b + o, &v, to - o);
    }
    return 0;
}

static int seg_check(unsigned char *b, size_t from, size_t to, uint64_t tag) {
    size_t o = from;
    for (; o + 8 <= to; o += 8) {
        uint64_t v = pat(tag, o), w;
        memcpy(&w, b + o, 8);
        if (v != w)
            goto bad;
    }
    if (o < to) {
        uint64_t v = pat(tag, o), w = 0;
        memcpy(&w, b + o, to - o);
        if (memcmp(&v, &w, to - o) != 0)
            goto bad;
    }
    return 0;
bad:
    g_bad_off = o;
    return 1;
}

static int seg_zero(unsigned char *b, size_t from, size_t to, uint64_t tag) {
    (void)tag;
    for (size_t o = from; o < to; o++)
        if (b[o]) {
            g_bad_off = o;
            return 1;
        }
    return 0;
}

typedef int (*seg_fn)(unsigned char *, size_t, size_t, uint64_t);

/* Applies fn to the patterned parts of a block of `size` bytes, clipped to [first, limit). Segment starts
 * are multiples of 8 so that fill and check agree for every limit. */
static int for_segments(unsigned char *b, size_t size, size_t first, size_t limit, uint64_t tag, seg_fn fn) {
    if (limit > size)
        limit = size;
#define SEG(f, t)                                                                                            \
    do {                                                                                                     \
        size_t f_ = (f) < first ? first : (f), t_ = (t) > limit ? limit : (t);                               \
        if (f_ < t_ && fn(b, f_, t_, tag))                                                                   \
            return 1;                                                                                        \
    } while (0)
    if (size <= FULL_LIMIT) {
        SEG(0, size);
        return 0;
    }
    SEG(0, EDGE);
    size_t stride = g.tiers && size > TIERS_SLAB_MAX ? TIERS_STRIDE : STRIDE;
    for (size_t o = stride; o + STRIPE <= size - EDGE; o += stride)
        SEG(o, o + STRIPE);
    SEG((size - EDGE) & ~(size_t)7, size);
    return 0;
#undef SEG
}

static void write_block(unsigned char *b, size_t size) {
    uint64_t sz = size, tag = make_tag((uintptr_t)b, size);
    memcpy(b, &sz, 8);
    memcpy(b + 8, &tag, 8);
    for_segments(b, size, HDR, size, tag, seg_fill);
}

/* Verifies a block written by write_block; limit < size checks only the first `limit` bytes (after a
 * realloc that moved the block to `b`, with the tag of its old address `orig`). Returns the block's size. */
static size_t verify_block(unsigned char *b, const void *orig, size_t limit, const char *ctx) {
    uint64_t sz, tag;
    memcpy(&sz, b, 8);
    memcpy(&tag, b + 8, 8);
    if (sz < HDR || sz > g.max_size)
        die(ctx, b, (size_t)sz, "size field corrupted", 0);
    if (tag != make_tag((uintptr_t)orig, (size_t)sz))
        die(ctx, b, (size_t)sz, "tag corrupted", 8);
    if (for_segments(b, (size_t)sz, HDR, limit, tag, seg_check))
        die(ctx, b, (size_t)sz, "pattern corrupted", g_bad_off);
    return (size_t)sz;
}

static size_t free_block(unsigned char *b, const char *ctx) {
    size_t sz = verify_block(b, b, SIZE_MAX, ctx);
    if (S_USABLE(b) < sz)
        die(ctx, b, sz, "usable size below the requested size", S_USABLE(b));
    S_FREE(b);
    return sz;
}

/* -L: 60% 16-512 B, 20% to 8 KiB, 17% mid (8 KiB - 256 KiB), 3% large (256 KiB - max-size, half of them
 * below 1 MiB). */
static size_t pick_size_tiers(uint64_t x) {
    unsigned p = (unsigned)(x % 1000);
    uint64_t y = x >> 10;
    size_t s;
    if (p < 600)
        s = 16 + (size_t)(y % 497);
    else if (p < 800)
        s = 513 + (size_t)(y % (8192 - 512));
    else if (p < 970)
        s = 8193 + (size_t)(y % (TIERS_SLAB_MAX - 8192));
    else if (p < 985 && g.max_size > ((size_t)1 << 20))
        s = TIERS_SLAB_MAX + 1 + (size_t)(y % (((size_t)1 << 20) - TIERS_SLAB_MAX));
    else
        s = TIERS_SLAB_MAX + 1 +
            (size_t)(y % (g.max_size > TIERS_SLAB_MAX ? g.max_size - TIERS_SLAB_MAX : 1));
    if (s > g.max_size)
        s = HDR + (size_t)((y >> 20) % (g.max_size - HDR + 1));
    return s;
}

static size_t pick_size(ht_rng_t *r) {
    uint64_t x = ht_next(r);
    if (g.tiers)
        return pick_size_tiers(x);
    unsigned p = (unsigned)(x % 1000);
    uint64_t y = x >> 10;
    size_t s;
    if (p < 800)
        s = 16 + (size_t)(y % 497); /* 16 .. 512 */
    else if (p < 950)
        s = 513 + (size_t)(y % (8192 - 512)); /* .. 8 KiB */
    else if (p < 997)
        s = 8193 + (size_t)(y % (65536 - 8192)); /* .. 64 KiB */
    else {
        size_t top = g.max_size > ((size_t)1 << 20) ? g.max_size : ((size_t)1 << 20);
        s = 65537 + (size_t)(y % (top - 65536)); /* .. 1 MiB (or -s) */
    }
    if (s > g.max_size)
        s = HDR + (size_t)((y >> 20) % (g.max_size - HDR + 1));
    return s;
}

static unsigned char *new_block(ht_rng_t *r, size_t size) {
    unsigned kind = (unsigned)(ht_next(r) % 16);
    unsigned char *b;
    if (kind == 0) {
        b = S_CALLOC(1, size);
        if (!b)
            die("calloc returned NULL", NULL, size, "out of memory?", 0);
        if (for_segments(b, size, 0, size, 0, seg_zero))
            die("calloc", b, size, "block not zeroed", g_bad_off);
    } else if (kind == 1) {
        size_t align = (size_t)16 << (ht_next(r) % 9); /* 16 .. 4096 */
        b = S_ALIGNED(align, size);
        if (!b)
            die("aligned alloc returned NULL", NULL, size, "out of memory?", align);
        if ((uintptr_t)b % align)
            die("aligned alloc", b, size, "misaligned", align);
    } else {
        b = S_MALLOC(size);
        if (!b)
            die("malloc returned NULL", NULL, size, "out of memory?", 0);
    }
    if ((uintptr_t)b % 16)
        die("alloc", b, size, "not 16-byte aligned", 0);
    write_block(b, size);
    atomic_fetch_add_explicit(&g_bytes, size, memory_order_relaxed);
    if (g.tiers && size > 8192)
        atomic_fetch_add_explicit(size > TIERS_SLAB_MAX ? &g_large_allocs : &g_mid_allocs, 1,
                                  memory_order_relaxed);
    return b;
}

static unsigned char *realloc_block(ht_rng_t *r, unsigned char *b) {
    size_t old = verify_block(b, b, SIZE_MAX, "before realloc");
    size_t ns = pick_size(r);
    if (ht_next(r) % 4 == 0) { /* small change around the old size */
        long d = (long)(ns % 64) - 32;
        ns = (long)old + d < HDR ? HDR : (size_t)((long)old + d);
    }
    if (ns > g.max_size)
        ns = g.max_size;
    uint64_t old_tag; /* verified above to be the tag of (b, old) */
    memcpy(&old_tag, b + 8, 8);
    unsigned char *q = S_REALLOC(b, ns);
    if (!q)
        die("realloc returned NULL", b, ns, "out of memory?", old);
    if ((uintptr_t)q % 16)
        die("realloc", q, ns, "not 16-byte aligned", 0);
    /* the moved content still carries the old address's tag */
    size_t keep = old < ns ? old : ns;
    uint64_t sz;
    memcpy(&sz, q, 8);
    if (sz != old)
        die("after realloc", q, ns, "size field not preserved", 0);
    {
        uint64_t tag;
        memcpy(&tag, q + 8, 8);
        if (tag != old_tag)
            die("after realloc", q, ns, "tag not preserved", 8);
        if (for_segments(q, old, HDR, keep, tag, seg_check))
            die("after realloc", q, ns, "content not preserved", g_bad_off);
    }
    write_block(q, ns);
    return q;
}

/* ---- worker -------------------------------------------------------------------------------------------- */
typedef struct {
    int index, round;
} worker_arg_t;

static void *worker(void *argp) {
    worker_arg_t *a = argp;
    ht_rng_t r = {ht_mix(g.seed ^ ((uint64_t)a->round << 32) ^ (uint64_t)a->index * 0x9E3779B97F4A7C15ull) |
                  1};
    size_t L = g.local_slots, X = g.transfer_slots;
    unsigned char **local = calloc(L, sizeof *local); /* the harness's own memory comes from libc */
    if (!local)
        die("harness", NULL, 0, "calloc of local array failed", 0);
    unsigned long long in = 0, foreign = 0;
    for (long op = 0; op < g.ops; op++) {
        uint64_t x = ht_next(&r);
        unsigned what = (unsigned)(x % 100);
        size_t i = (size_t)((x >> 8) % L);
        size_t j = (size_t)((x >> 32) % X);
        if (what < 45) { /* allocate */
            if (local[i])
                free_block(local[i], "free (replaced)");
            local[i] = new_block(&r, pick_size(&r));
        } else if (what < 70) { /* free */
            if (local[i]) {
                free_block(local[i], "free");
                local[i] = NULL;
            }
        } else if (what < 80) { /* hand a block to another thread; keep what was in the slot */
            if (local[i]) {
                unsigned char *old = atomic_exchange_explicit(&g_slots[j], local[i], memory_order_acq_rel);
                local[i] = old;
                if (old) {
                    verify_block(old, old, SIZE_MAX, "taken from transfer slot");
                    in++;
                }
            }
        } else if (what < 90) { /* take a block from another thread and free it */
            unsigned char *old = atomic_exchange_explicit(&g_slots[j], NULL, memory_order_acq_rel);
            if (old) {
                if (free_block(old, "free of a transferred block") > TIERS_SLAB_MAX)
                    atomic_fetch_add_explicit(&g_large_foreign_frees, 1, memory_order_relaxed);
                foreign++;
            }
        } else if (what < 97) { /* realloc (possibly a block allocated by another thread) */
            if (local[i])
                local[i] = realloc_block(&r, local[i]);
        } else { /* short-lived block */
            unsigned char *b = new_block(&r, pick_size(&r));
            free_block(b, "free (short-lived)");
        }
    }
    /* Exit: free half, leave the other half in the transfer slots to outlive this thread. */
    for (size_t i = 0; i < L; i++) {
        if (!local[i])
            continue;
        if (ht_next(&r) & 1) {
            free_block(local[i], "free at thread exit");
        } else {
            size_t j = (size_t)(ht_next(&r) % X);
            unsigned char *old = atomic_exchange_explicit(&g_slots[j], local[i], memory_order_acq_rel);
            if (old)
                free_block(old, "free of a transferred block at thread exit");
        }
    }
    free(local);
    atomic_fetch_add_explicit(&g_ops, (unsigned long long)g.ops, memory_order_relaxed);
    atomic_fetch_add_explicit(&g_xfer_in, in, memory_order_relaxed);
    atomic_fetch_add_explicit(&g_foreign_frees, foreign, memory_order_relaxed);
    return NULL;
}

static void usage(const char *argv0) {
    fprintf(
        stderr,
        "usage: %s [-t threads] [-r rounds] [-n ops-per-thread-per-round] [-s max-size] [-l local-slots]\n"
        "          [-x transfer-slots] [-S seed] [-L] [-q]\n"
        "  -L  tiers profile: mid (8 KiB-256 KiB) and large (256 KiB-max-size, default 4 MiB) sizes\n",
        argv0);
    exit(2);
}

static unsigned long long parse_num(const char *s, const char *argv0) {
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 0);
    if (errno || end == s)
        usage(argv0);
    if (*end == 'k' || *end == 'K')
        v <<= 10, end++;
    else if (*end == 'm' || *end == 'M')
        v <<= 20, end++;
    if (*end)
        usage(argv0);
    return v;
}

int main(int argc, char **argv) {
    g = (config_t){.threads = 4,
                   .rounds = 10,
                   .ops = 100000,
                   .max_size = (size_t)1 << 20,
                   .local_slots = 1000,
                   .transfer_slots = 4096,
                   .seed = 12345,
                   .quiet = 0};
    int c, size_given = 0;
    while ((c = getopt(argc, argv, "t:r:n:s:l:x:S:Lqh")) != -1) {
        switch (c) {
        case 't':
            g.threads = (int)parse_num(optarg, argv[0]);
            break;
        case 'r':
            g.rounds = (int)parse_num(optarg, argv[0]);
            break;
        case 'n':
            g.ops = (long)parse_num(optarg, argv[0]);
            break;
        case 's':
            g.max_size = (size_t)parse_num(optarg, argv[0]), size_given = 1;
            break;
        case 'l':
            g.local_slots = (size_t)parse_num(optarg, argv[0]);
            break;
        case 'x':
            g.transfer_slots = (size_t)parse_num(optarg, argv[0]);
            break;
        case 'S':
            g.seed = parse_num(optarg, argv[0]);
            break;
        case 'q':
            g.quiet = 1;
            break;
        case 'L':
            g.tiers = 1;
            break;
        default:
            usage(argv[0]);
        }
    }
    if (g.threads < 1 || g.threads > 1024 || g.rounds < 1 || g.ops < 0 || g.max_size < HDR ||
        g.local_slots < 1 || g.transfer_slots < 1 || optind != argc)
        usage(argv[0]);
    if (g.tiers && !size_given)
        g.max_size = (size_t)4 << 20;

    g_slots = calloc(g.transfer_slots, sizeof *g_slots);
    pthread_t *th = calloc((size_t)g.threads, sizeof *th);
    worker_arg_t *args = calloc((size_t)g.threads, sizeof *args);
    if (!g_slots || !th || !args)
        die("harness", NULL, 0, "calloc failed", 0);

    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int round = 0; round < g.rounds; round++) {
        for (int i = 0; i < g.threads; i++) {
            args[i] = (worker_arg_t){i, round};
            int rc = pthread_create(&th[i], NULL, worker, &args[i]);
            if (rc) {
                fprintf(stderr, "stress: pthread_create: %s\n", strerror(rc));
                return 1;
            }
        }
        for (int i = 0; i < g.threads; i++)
            pthread_join(th[i], NULL);
    }
    /* Drain: everything left in the transfer slots outlived the threads that allocated it. */
    unsigned long long drained = 0;
    for (size_t j = 0; j < g.transfer_slots; j++) {
        unsigned char *b = atomic_exchange(&g_slots[j], NULL);
        if (b) {
            free_block(b, "free at drain");
            drained++;
        }
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) * 1e-9;
    unsigned long long ops = atomic_load(&g_ops);
    if (!g.quiet) {
        printf("stress[%s]: OK: %d threads x %d rounds x %ld ops = %llu ops in %.2f s (%.2f M ops/s), "
               "%.1f MiB allocated, %llu blocks taken over, %llu freed by another thread, %llu drained\n",
               S_NAME, g.threads, g.rounds, g.ops, ops, secs, secs > 0 ? (double)ops / secs / 1e6 : 0.0,
               (double)atomic_load(&g_bytes) / (1 << 20), (unsigned long long)atomic_load(&g_xfer_in),
               (unsigned long long)atomic_load(&g_foreign_frees), drained);
#ifndef STRESS_USE_MALLOC
        hak_stats_t st;
        memset(&st, 0, sizeof st);
        st.size = sizeof st;
        if (hak_heap_stats(NULL, &st) == 0)
            printf("stress[hakmem]: after drain: live_blocks %llu, reserved %.1f MiB, committed %.1f MiB\n",
                   (unsigned long long)st.live_blocks, (double)st.reserved_bytes / (1 << 20),
                   (double)st.committed_bytes / (1 << 20));
#endif
    }
    if (g.tiers) {
        unsigned long long mid = atomic_load(&g_mid_allocs), large = atomic_load(&g_large_allocs),
                           xlarge = atomic_load(&g_large_foreign_frees);
        if (!g.quiet)
            printf("stress[%s]: tiers: %llu mid and %llu large blocks allocated, %llu large blocks freed "
                   "through transfer slots\n",
                   S_NAME, mid, large, xlarge);
        /* a run long enough to expect them must have moved large blocks between threads */
        if (ops >= 50000 && g.threads > 1 && (mid == 0 || large == 0 || xlarge == 0)) {
            fprintf(stderr,
                    "stress[%s]: FAILED: -L run without mid/large blocks or cross-thread large frees "
                    "(%llu mid, %llu large, %llu large transferred)\n",
                    S_NAME, mid, large, xlarge);
            return 1;
        }
    }
    free(g_slots);
    free(th);
    free(args);
    return 0;
}
