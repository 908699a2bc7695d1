/* SPDX-License-Identifier: MIT */
/* false_sharing: cache-thrash (active) and cache-scratch (passive) in the style of Hoard's benchmarks.
 *
 * --mode active: each of T threads repeatedly allocates a small object (--size bytes), writes every byte of it
 *   --reps times, and frees it. An allocator that hands objects on one cache line to different threads makes
 *   the writes thrash the line between cores.
 * --mode passive: the main thread allocates T small objects back to back and hands one to each thread; each
 *   thread frees it first, then runs the active loop. An allocator that gives the freed object (sharing a
 *   line with the other threads' objects) back to the thread that freed it keeps the false sharing going.
 * --iterations objects in total are split evenly over the threads. One operation = one object written --reps
 * times (ops/s are therefore small numbers).
 *
 * Example: false_sharing --mode passive --threads 2
 */
#include <pthread.h>

#include "bench.h"

static uint64_t g_iters, g_reps, g_size;

static void *worker(void *arg) {
    unsigned char *given = arg;
    if (given) free(given); /* passive: the first free puts a shared-line object back into circulation */
    uint64_t sum = 0;
    for (uint64_t i = 0; i < g_iters; i++) {
        volatile unsigned char *obj = bench_malloc(g_size);
        for (uint64_t r = 0; r < g_reps; r++)
            for (uint64_t k = 0; k < g_size; k++) {
                obj[k] = (unsigned char)(k + r);
                sum += obj[k];
            }
        free((void *)obj);
    }
    return (void *)(uintptr_t)sum;
}

int main(int argc, char **argv) {
    uint64_t threads = 2, iterations = 4000, reps = 20000, size = 8;
    const char *mode = "active";
    const bench_opt_t opts[] = {
        {"--mode", "active (cache-thrash) or passive (cache-scratch)", &mode, NULL},
        {"--threads", "threads", NULL, &threads},
        {"--iterations", "objects allocated in total (split over the threads)", NULL, &iterations},
        {"--reps", "write passes over each object", NULL, &reps},
        {"--size", "object size in bytes", NULL, &size},
    };
    bench_parse(argc, argv, "false sharing between threads' small objects", opts, sizeof opts / sizeof opts[0]);
    int passive = !strcmp(mode, "passive");
    if (!passive && strcmp(mode, "active")) bench_die("--mode must be active or passive");
    if (!threads || !size || !reps) bench_die("bad parameters");
    g_iters = iterations / threads;
    g_reps = reps;
    g_size = size;

    pthread_t *tid = bench_malloc(threads * sizeof *tid);
    void **given = calloc(threads, sizeof *given);
    if (!given) bench_die("out of memory");
    if (passive)
        for (uint64_t t = 0; t < threads; t++) given[t] = bench_malloc(size);

    double t0 = bench_now();
    for (uint64_t t = 0; t < threads; t++)
        if (pthread_create(&tid[t], NULL, worker, given[t])) bench_die("pthread_create failed");
    uint64_t checksum = 0;
    for (uint64_t t = 0; t < threads; t++) {
        void *r;
        pthread_join(tid[t], &r);
        checksum += (uint64_t)(uintptr_t)r;
    }
    double secs = bench_now() - t0;

    free(given);
    free(tid);
    char extra[96];
    snprintf(extra, sizeof extra, "mode=%s threads=%llu size=%llu", mode, (unsigned long long)threads,
             (unsigned long long)size);
    bench_result("false_sharing", g_iters * threads, secs, checksum, extra);
    return 0;
}
