/* SPDX-License-Identifier: MIT */
/* glibc_loop: a single-size malloc/free loop of the kind of glibc's benchtests bench-malloc-simple.
 *
 * Each of --threads threads owns an array of --live slots. An iteration mallocs a block of --size bytes into
 * every slot (writing its first byte), then frees them all, in allocation order. --iters iterations per
 * thread; one operation = one malloc + one free. With --live 1 it is the pure pair; larger --live keeps a
 * working set that outgrows the thread cache.
 *
 * Example: glibc_loop --size 64 --live 100 --iters 20k
 */
#include <pthread.h>

#include "bench.h"

typedef struct {
    uint64_t live, iters, size, checksum;
} worker_t;

static void *worker(void *arg) {
    worker_t *w = arg;
    void **slots = bench_malloc(w->live * sizeof *slots);
    uint64_t sum = 0;
    for (uint64_t it = 0; it < w->iters; it++) {
        for (uint64_t k = 0; k < w->live; k++) {
            unsigned char *p = bench_malloc(w->size);
            p[0] = (unsigned char)k;
            slots[k] = p;
        }
        for (uint64_t k = 0; k < w->live; k++) {
            sum += *(unsigned char *)slots[k];
            free(slots[k]);
        }
    }
    free(slots);
    w->checksum = sum;
    return NULL;
}

int main(int argc, char **argv) {
    uint64_t threads = 1, live = 100, iters = 20000, size = 64;
    const bench_opt_t opts[] = {
        {"--threads", "threads, each with its own slots", NULL, &threads},
        {"--live", "blocks live at once per thread", NULL, &live},
        {"--iters", "iterations (fill all slots, free all) per thread", NULL, &iters},
        {"--size", "block size", NULL, &size},
    };
    bench_parse(argc, argv, "glibc-bench-style fixed-size malloc/free loop", opts,
                sizeof opts / sizeof opts[0]);
    if (!threads || !live || !iters || !size)
        bench_die("bad parameters");

    worker_t *ws = calloc(threads, sizeof *ws);
    pthread_t *tids = calloc(threads, sizeof *tids);
    if (!ws || !tids)
        bench_die("out of memory");
    double t0 = bench_now();
    for (uint64_t t = 0; t < threads; t++) {
        ws[t] = (worker_t){live, iters, size, 0};
        if (threads == 1) {
            worker(&ws[t]);
        } else if (pthread_create(&tids[t], NULL, worker, &ws[t])) {
            bench_die("pthread_create failed");
        }
    }
    if (threads > 1)
        for (uint64_t t = 0; t < threads; t++)
            pthread_join(tids[t], NULL);
    double secs = bench_now() - t0;
    uint64_t checksum = 0;
    for (uint64_t t = 0; t < threads; t++)
        checksum += ws[t].checksum;
    free(ws);
    free(tids);
    char extra[96];
    snprintf(extra, sizeof extra, "threads=%llu size=%llu live=%llu", (unsigned long long)threads,
             (unsigned long long)size, (unsigned long long)live);
    bench_result("glibc_loop", threads * iters * live, secs, checksum, extra);
    return 0;
}
