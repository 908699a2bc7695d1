/* SPDX-License-Identifier: MIT */
/* fragmentation: mixed-size stress with many live objects, to measure peak RSS against live bytes.
 *
 * Each of --threads threads (default 1) runs --rounds rounds on its share of --peak bytes. A round allocates
 * blocks until the thread's live bytes reach its share of the peak, writing every byte of each block, then
 * frees a random --free-pct percent of all its live blocks (scattered holes). The size distribution changes
 * from round to round (log-uniform 16..512 B, then 512 B..16 KiB, then 16 B..64 KiB, repeating), so holes
 * left by one size range must be reused by another. At the end everything is freed.
 * One operation = one allocation.
 *
 * Extra result fields: live_peak_kib (requested bytes live at the peak), rss_end_kib (resident set after
 * everything was freed; the harness's own arrays are mmap'ed directly and unmapped before that reading).
 *
 * Example: fragmentation --peak 256Mi --rounds 6
 */
#include <pthread.h>
#include <sys/mman.h>

#include "bench.h"

static const uint64_t dist[3][2] = {{16, 512}, {512, 16384}, {16, 65536}};
static uint64_t g_share, g_rounds, g_free_pct, g_seed;

typedef struct {
    uint64_t id, allocs, checksum, live_peak;
} worker_t;

static void *harness_map(size_t bytes) {
    void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED) bench_die("mmap of %zu harness bytes failed", bytes);
    return p;
}

static void *worker(void *arg) {
    worker_t *w = arg;
    bench_rng_t rng = bench_rng(g_seed, w->id);
    size_t cap = g_share / 16 + 1; /* most blocks that can be live at once */
    void **ptr = harness_map(cap * sizeof *ptr);
    uint32_t *len = harness_map(cap * sizeof *len);
    uint64_t n = 0, live = 0, sum = 0;
    for (uint64_t r = 0; r < g_rounds; r++) {
        const uint64_t *d = dist[r % 3];
        while (live < g_share && n < cap) {
            size_t sz = bench_range_log(&rng, d[0], d[1]);
            unsigned char *p = bench_malloc(sz);
            memset(p, (int)(n & 0xff), sz);
            ptr[n] = p;
            len[n] = (uint32_t)sz;
            n++;
            live += sz;
            w->allocs++;
        }
        if (live > w->live_peak) w->live_peak = live;
        /* Free a random free_pct% of the live blocks (swap-remove keeps the arrays dense). */
        uint64_t target = n * g_free_pct / 100;
        for (uint64_t f = 0; f < target; f++) {
            uint64_t k = bench_range(&rng, 0, n - 1);
            sum += ((unsigned char *)ptr[k])[len[k] - 1];
            live -= len[k];
            free(ptr[k]);
            ptr[k] = ptr[n - 1];
            len[k] = len[n - 1];
            n--;
        }
    }
    for (uint64_t k = 0; k < n; k++) free(ptr[k]);
    munmap(ptr, cap * sizeof *ptr);
    munmap(len, cap * sizeof *len);
    w->checksum = sum;
    return NULL;
}

int main(int argc, char **argv) {
    uint64_t peak = 256ull << 20, rounds = 6, free_pct = 75, threads = 1, seed = 42;
    const bench_opt_t opts[] = {
        {"--peak", "live bytes at the peak (over all threads)", NULL, &peak},
        {"--rounds", "fill/free rounds", NULL, &rounds},
        {"--free-pct", "percent of live blocks freed at random after each fill", NULL, &free_pct},
        {"--threads", "threads, each with peak/threads bytes", NULL, &threads},
        {"--seed", "RNG seed", NULL, &seed},
    };
    bench_parse(argc, argv, "mixed sizes, many live objects, scattered frees: peak RSS vs live bytes", opts,
                sizeof opts / sizeof opts[0]);
    if (!threads || !rounds || free_pct > 100 || peak < 65536) bench_die("bad parameters");
    g_share = peak / threads;
    g_rounds = rounds;
    g_free_pct = free_pct;
    g_seed = seed;
    worker_t *w = calloc(threads, sizeof *w);
    pthread_t *tid = bench_malloc(threads * sizeof *tid);
    if (!w) bench_die("out of memory");

    double t0 = bench_now();
    for (uint64_t t = 0; t < threads; t++) {
        w[t].id = t;
        if (threads == 1) worker(&w[0]);
        else if (pthread_create(&tid[t], NULL, worker, &w[t])) bench_die("pthread_create failed");
    }
    if (threads > 1)
        for (uint64_t t = 0; t < threads; t++) pthread_join(tid[t], NULL);
    double secs = bench_now() - t0;

    uint64_t ops = 0, checksum = 0, live_peak = 0;
    for (uint64_t t = 0; t < threads; t++) {
        ops += w[t].allocs;
        checksum += w[t].checksum;
        live_peak += w[t].live_peak;
    }
    free(w);
    free(tid);
    char extra[128];
    snprintf(extra, sizeof extra, "threads=%llu live_peak_kib=%llu rss_end_kib=%llu", (unsigned long long)threads,
             (unsigned long long)(live_peak >> 10), (unsigned long long)bench_rss_kib());
    bench_result("fragmentation", ops, secs, checksum, extra);
    return 0;
}
