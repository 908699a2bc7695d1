/* SPDX-License-Identifier: MIT */
/* SuperSlabs: there is no cap on their number (84 MiB of small blocks take more than 32 of them), all blocks
 * are distinct, and a second identical round reuses the chunks of the first without reserving more; a freed
 * slab block is handed out again to the same thread within about two slabs' worth of allocations (the thread
 * cache and the spans behind it); freeing a batch and allocating it again faults in few pages and gives back
 * most of the same addresses; the region map tells hakmem's memory from anyone else's (our own 2 MiB-aligned
 * mapping, a glibc block, free chunks right next to hakmem's regions: hak_heap_of is NULL, hak_usable_size
 * rejects them).
 *
 * The tests share one process in this order: the chaining test leaves the SuperSlabs' pages resident (as in
 * a program that has run a while), which the page-fault bound of test_bulk_reuse counts on (in a fresh
 * process a second batch of 256 B blocks can land on slabs never touched before), and the many regions it
 * leaves give test_region_map_adjacent more free neighbouring chunks to probe. */
#include "hakmem_test.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <hakmem/hakmem.h>

#ifndef MAP_FIXED_NOREPLACE
#define MAP_FIXED_NOREPLACE 0x100000
#endif

typedef struct {
    uintptr_t addr;
    size_t size;
} blk_t;

static int cmp_blk(const void *a, const void *b) {
    uintptr_t x = ((const blk_t *)a)->addr, y = ((const blk_t *)b)->addr;
    return x < y ? -1 : x > y;
}

static const size_t chain_sizes[] = {16, 48, 128, 320, 1024, 4096, 8192};
enum { CHAIN_NCLS = sizeof chain_sizes / sizeof chain_sizes[0] };
#define CHAIN_BYTES_PER_CLASS ((size_t)12 << 20) /* 7 classes x 12 MiB = 84 MiB > 32 SuperSlabs of 2 MiB */

/* Allocates 12 MiB of each class (interleaved), fills every block with its pattern. */
static size_t chain_alloc(blk_t **out) {
    size_t total = 0;
    for (int c = 0; c < CHAIN_NCLS; c++)
        total += CHAIN_BYTES_PER_CLASS / chain_sizes[c];
    blk_t *b = malloc(total * sizeof *b);
    assert_non_null(b);
    size_t left[CHAIN_NCLS], n = 0;
    for (int c = 0; c < CHAIN_NCLS; c++)
        left[c] = CHAIN_BYTES_PER_CLASS / chain_sizes[c];
    while (n < total) {
        for (int c = 0; c < CHAIN_NCLS; c++) {
            /* interleave: more of the small classes per turn so all classes finish together */
            size_t burst = 8192 / chain_sizes[c];
            for (size_t k = 0; k < burst && left[c] > 0; k++, left[c]--) {
                size_t sz = chain_sizes[c];
                void *p = hak_alloc(sz);
                if (!p)
                    fail_msg("hak_alloc(%zu) = NULL after %zu blocks (%zu MiB)", sz, n, (n * 2048) >> 20);
                ht_fill(p, sz, n);
                b[n].addr = (uintptr_t)p;
                b[n].size = sz;
                n++;
            }
        }
    }
    *out = b;
    return n;
}

static void chain_verify(blk_t *b, size_t n) {
    for (size_t i = 0; i < n; i++) {
        size_t bad = ht_check((void *)b[i].addr, b[i].size, i);
        if (bad != (size_t)-1)
            fail_msg("block %zu (%p, %zu B) overwritten at byte %zu", i, (void *)b[i].addr, b[i].size, bad);
    }
}

/* Sorted copy of the distinct 2 MiB chunks the blocks live in. */
static size_t chain_chunks(const blk_t *b, size_t n, uintptr_t **out) {
    uintptr_t *c = malloc(n * sizeof *c);
    assert_non_null(c);
    for (size_t i = 0; i < n; i++)
        c[i] = b[i].addr & ~(HT_CHUNK - 1);
    qsort(c, n, sizeof *c, ht_cmp_uptr);
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (k == 0 || c[k - 1] != c[i])
            c[k++] = c[i];
    *out = c;
    return k;
}

static void test_superslab_chaining_and_reuse(void **state) {
    (void)state;
    hak_stats_t st0, st1, st2;
    hak_free(
        hak_alloc(16)); /* initialise, so that the baseline includes hakmem's own start-up reservations */
    int have_stats = ht_try_stats(NULL, &st0);

    blk_t *b1;
    size_t n1 = chain_alloc(&b1);
    chain_verify(b1, n1);
    if (have_stats)
        ht_try_stats(NULL, &st1);

    /* all blocks distinct and non-overlapping */
    blk_t *sorted = malloc(n1 * sizeof *sorted);
    assert_non_null(sorted);
    memcpy(sorted, b1, n1 * sizeof *sorted);
    qsort(sorted, n1, sizeof *sorted, cmp_blk);
    for (size_t i = 1; i < n1; i++)
        if (sorted[i - 1].addr + sorted[i - 1].size > sorted[i].addr)
            fail_msg("blocks overlap: %p (%zu B) and %p", (void *)sorted[i - 1].addr, sorted[i - 1].size,
                     (void *)sorted[i].addr);
    free(sorted);

    uintptr_t *c1;
    size_t nc1 = chain_chunks(b1, n1, &c1);
    print_message("round 1: %zu blocks in %zu chunks of 2 MiB\n", n1, nc1);
    if (nc1 <= 32)
        fail_msg("84 MiB of small blocks in only %zu 2 MiB chunks", nc1);

    for (size_t i = 0; i < n1; i++)
        hak_free((void *)b1[i].addr);

    blk_t *b2;
    size_t n2 = chain_alloc(&b2);
    chain_verify(b2, n2);
    if (have_stats)
        ht_try_stats(NULL, &st2);
    uintptr_t *c2;
    size_t nc2 = chain_chunks(b2, n2, &c2);
    size_t common = 0;
    for (size_t i = 0; i < nc2; i++)
        if (bsearch(&c2[i], c1, nc1, sizeof *c1, ht_cmp_uptr))
            common++;
    print_message("round 2: %zu chunks, %zu of them used in round 1\n", nc2, common);
    if (common * 2 < nc2)
        fail_msg("second round reused only %zu of %zu chunks", common, nc2);
    if (have_stats) {
        print_message("reserved: start %llu, round 1 %llu, round 2 %llu\n",
                      (unsigned long long)st0.reserved_bytes, (unsigned long long)st1.reserved_bytes,
                      (unsigned long long)st2.reserved_bytes);
        uint64_t grew1 = st1.reserved_bytes - st0.reserved_bytes;
        if (st2.reserved_bytes > st1.reserved_bytes + grew1 / 4)
            fail_msg("reserved bytes grew from %llu to %llu in the second, identical round",
                     (unsigned long long)st1.reserved_bytes, (unsigned long long)st2.reserved_bytes);
        assert_true(st1.reserved_bytes >= (uint64_t)CHAIN_NCLS * CHAIN_BYTES_PER_CLASS);
    }
    for (size_t i = 0; i < n2; i++)
        hak_free((void *)b2[i].addr);
    free(b1);
    free(b2);
    free(c1);
    free(c2);
}

/* A freed block comes back to the same thread soon (within about two slabs' worth of allocations). */
static void test_slab_reuse_same_address(void **state) {
    (void)state;
    static const size_t sizes[] = {16, 64, 200, 1000, 4096, 8192, 20000, 100000};
    for (size_t si = 0; si < sizeof sizes / sizeof sizes[0]; si++) {
        size_t n = sizes[si];
        void *warm[8];
        for (int i = 0; i < 8; i++)
            warm[i] = hak_alloc(n);
        void *p = hak_alloc(n);
        assert_non_null(p);
        memset(p, 0xEE, n);
        hak_free(p);
        size_t bound = 2 * ((256 * 1024) / n) + 64;
        void **got = malloc(bound * sizeof *got);
        assert_non_null(got);
        size_t k, found = 0;
        for (k = 0; k < bound; k++) {
            got[k] = hak_alloc(n);
            assert_non_null(got[k]);
            if (got[k] == p) {
                found = 1;
                k++;
                break;
            }
        }
        for (size_t i = 0; i < k; i++)
            hak_free(got[i]);
        for (int i = 0; i < 8; i++)
            hak_free(warm[i]);
        free(got);
        if (!found)
            fail_msg("freed %zu B block %p not handed out again within %zu allocations", n, p, bound);
    }
}

static long minor_faults(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_minflt;
}

/* Freeing a batch and allocating the same batch again reuses memory: the second batch faults in few pages
 * (carving a fresh slab writes every page), and most blocks are the very same addresses. The second batch
 * may take other resident slabs than the first (best-fit span placement), so slab identity is only printed.
 */
static void test_bulk_reuse(void **state) {
    (void)state;
    enum { N = 20000 };
    static uintptr_t a[N], b[N], sa[N];
    const uintptr_t slab = 64 * 1024;
    static const size_t sizes[] = {64, 256, 2048};
    for (size_t si = 0; si < sizeof sizes / sizeof sizes[0]; si++) {
        size_t n = sizes[si];
        for (int i = 0; i < N; i++) {
            a[i] = (uintptr_t)hak_alloc(n);
            assert_true(a[i] != 0);
        }
        for (int i = 0; i < N; i++)
            hak_free((void *)a[i]);
        long faults = minor_faults();
        for (int i = 0; i < N; i++) {
            b[i] = (uintptr_t)hak_alloc(n);
            assert_true(b[i] != 0);
        }
        faults = minor_faults() - faults;
        qsort(a, N, sizeof a[0], ht_cmp_uptr);
        for (int i = 0; i < N; i++)
            sa[i] = a[i] & ~(slab - 1);
        int same = 0, same_slab = 0;
        for (int i = 0; i < N; i++) {
            if (bsearch(&b[i], a, N, sizeof a[0], ht_cmp_uptr))
                same++;
            uintptr_t s = b[i] & ~(slab - 1);
            if (bsearch(&s, sa, N, sizeof sa[0], ht_cmp_uptr))
                same_slab++;
        }
        for (int i = 0; i < N; i++)
            hak_free((void *)b[i]);
        long pages = (long)(N * n / 4096);
        print_message(
            "size %zu: %d of %d blocks at the same address, %d in the same 64 KiB slabs, %ld page faults "
            "for %ld pages\n",
            n, same, N, same_slab, faults, pages);
        if (!HT_SANITIZED && faults > pages / 4 + 64) /* shadow memory faults under sanitizers */
            fail_msg("size %zu: %ld page faults for %ld pages of blocks (fresh memory instead of reuse)", n,
                     faults, pages);
        if (same < N / 2)
            fail_msg("size %zu: only %d of %d block addresses reused after freeing them", n, same, N);
    }
}

/* hak_heap_of must say NULL. hak_usable_size must reject the pointer: return 0, or report it and abort
 * (the default HAKMEM_ON_ERROR); it must not return a size or crash. Probed in a forked child. */
static void probe_foreign(uintptr_t a, const char *what) {
    hak_heap_t *h = hak_heap_of((const void *)a);
    if (h != NULL)
        fail_msg("%s %p: hak_heap_of = %p, expected NULL", what, (void *)a, (void *)h);
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int devnull = open("/dev/null", O_WRONLY);
        if (devnull >= 0)
            dup2(devnull, 2); /* the report is expected; keep the log readable */
        size_t u = hak_usable_size((const void *)a);
        _exit(u == 0 ? 0 : 3);
    }
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    int ok = (WIFEXITED(status) && WEXITSTATUS(status) == 0) ||
             (WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT);
    if (!ok)
        fail_msg("%s %p: hak_usable_size neither returned 0 nor reported and aborted (%s %d)", what,
                 (void *)a, WIFSIGNALED(status) ? "signal" : "exit status",
                 WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
}

/* Our own 2 MiB-aligned mapping is not hakmem's. */
static void test_region_map_own_mapping(void **state) {
    (void)state;
    void *tmp = hak_alloc(64); /* make sure hakmem is initialised */
    assert_non_null(tmp);
    size_t len = 3 * HT_CHUNK;
    unsigned char *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    assert_true(m != MAP_FAILED);
    uintptr_t x = ((uintptr_t)m + HT_CHUNK - 1) & ~(HT_CHUNK - 1);
    /* put something that looks like a header there */
    memset((void *)x, 0xff, 4096);
    probe_foreign(x, "own mapping base");
    probe_foreign(x + 16, "own mapping +16");
    probe_foreign(x + HT_CHUNK / 2, "own mapping middle");
    probe_foreign(x + HT_CHUNK - 16, "own mapping end");
    munmap(m, len);
    void *g = malloc(100);
    probe_foreign((uintptr_t)g, "glibc malloc block");
    free(g);
    hak_free(tmp);
}

/* Map our own memory right next to hakmem's regions (where the address space is free) and probe it. */
static void test_region_map_adjacent(void **state) {
    (void)state;
    enum { N = 64 };
    void *blocks[N];
    static const size_t sizes[] = {32, 5000, 100000, 3 << 20};
    for (int i = 0; i < N; i++) {
        blocks[i] = hak_alloc(sizes[i % 4]);
        assert_non_null(blocks[i]);
    }
    int probes = 0;
    for (int i = 0; i < N; i++) {
        uintptr_t p = (uintptr_t)blocks[i];
        assert_non_null(hak_heap_of(blocks[i]));
        uintptr_t lo = p & ~(HT_CHUNK - 1);
        uintptr_t hi = (p + hak_usable_size(blocks[i]) + HT_CHUNK - 1) & ~(HT_CHUNK - 1);
        uintptr_t cand[2] = {lo - HT_CHUNK, hi};
        for (int k = 0; k < 2; k++) {
            void *m = mmap((void *)cand[k], HT_CHUNK, PROT_READ | PROT_WRITE,
                           MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
            if (m == MAP_FAILED)
                continue;
            if ((uintptr_t)m != cand[k]) { /* old kernel treated it as a hint */
                munmap(m, HT_CHUNK);
                continue;
            }
            memset(m, 0xff, 4096);
            memset((char *)m + HT_CHUNK - 4096, 0xff, 4096);
            probe_foreign(cand[k],
                          k ? "chunk just above a hakmem region" : "chunk just below a hakmem region");
            probe_foreign(cand[k] + 16, "16 B into an adjacent chunk");
            probe_foreign(cand[k] + HT_CHUNK - 16, "last 16 B of an adjacent chunk");
            probes++;
            munmap(m, HT_CHUNK);
        }
    }
    for (int i = 0; i < N; i++) {
        assert_ptr_equal(hak_heap_of(blocks[i]), hak_heap_default());
        hak_free(blocks[i]);
    }
    print_message("probed %d free chunks adjacent to hakmem regions\n", probes);
    if (probes == 0)
        skip();
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_superslab_chaining_and_reuse),
        cmocka_unit_test(test_slab_reuse_same_address),
        cmocka_unit_test(test_bulk_reuse),
        cmocka_unit_test(test_region_map_own_mapping),
        cmocka_unit_test(test_region_map_adjacent),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
