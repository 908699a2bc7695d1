/* SPDX-License-Identifier: MIT */
/* prodcons: producer-consumer, every block freed by another thread than the one that allocated it.
 *
 * P producer threads allocate blocks of random size in [--min, --max], write their first and last byte, and
 * pass them in batches of --batch (the batch array is malloc'ed too) through one bounded queue (--queue
 * batches; a mutex and two condition variables) to C consumer threads, which read and free every block and
 * the batch. One operation = one block allocated and freed; --ops is the total.
 *
 * Example: prodcons --producers 1 --consumers 1 --ops 4M
 */
#include <pthread.h>

#include "bench.h"

typedef struct {
    uint64_t n;
    void *blocks[];
} batch_t;

static struct {
    pthread_mutex_t lock;
    pthread_cond_t not_empty, not_full;
    batch_t **ring;
    uint64_t cap, head, count;
} q = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, PTHREAD_COND_INITIALIZER, NULL, 0, 0, 0};

static uint64_t g_per_producer, g_batch, g_min, g_max, g_seed;

static void q_push(batch_t *b) {
    pthread_mutex_lock(&q.lock);
    while (q.count == q.cap) pthread_cond_wait(&q.not_full, &q.lock);
    q.ring[(q.head + q.count++) % q.cap] = b;
    pthread_cond_signal(&q.not_empty);
    pthread_mutex_unlock(&q.lock);
}

static batch_t *q_pop(void) {
    pthread_mutex_lock(&q.lock);
    while (q.count == 0) pthread_cond_wait(&q.not_empty, &q.lock);
    batch_t *b = q.ring[q.head];
    q.head = (q.head + 1) % q.cap;
    q.count--;
    pthread_cond_signal(&q.not_full);
    pthread_mutex_unlock(&q.lock);
    return b;
}

static void *producer(void *arg) {
    bench_rng_t rng = bench_rng(g_seed, (uint64_t)(uintptr_t)arg);
    for (uint64_t done = 0; done < g_per_producer;) {
        uint64_t n = g_per_producer - done < g_batch ? g_per_producer - done : g_batch;
        batch_t *b = bench_malloc(sizeof *b + n * sizeof(void *));
        b->n = n;
        for (uint64_t i = 0; i < n; i++) {
            size_t sz = bench_range(&rng, g_min, g_max);
            unsigned char *p = bench_malloc(sz);
            p[0] = (unsigned char)i;
            p[sz - 1] = (unsigned char)sz;
            b->blocks[i] = p;
        }
        q_push(b);
        done += n;
    }
    return NULL;
}

static void *consumer(void *arg) {
    uint64_t sum = 0;
    for (;;) {
        batch_t *b = q_pop();
        if (!b) break; /* end marker */
        for (uint64_t i = 0; i < b->n; i++) {
            sum += ((unsigned char *)b->blocks[i])[0];
            free(b->blocks[i]);
        }
        free(b);
    }
    *(uint64_t *)arg = sum;
    return NULL;
}

int main(int argc, char **argv) {
    uint64_t producers = 1, consumers = 1, ops = 4000000, batch = 64, queue = 64, min = 16, max = 1040, seed = 42;
    const bench_opt_t opts[] = {
        {"--producers", "allocating threads", NULL, &producers},
        {"--consumers", "freeing threads", NULL, &consumers},
        {"--ops", "blocks allocated and freed in total", NULL, &ops},
        {"--batch", "blocks per queue message", NULL, &batch},
        {"--queue", "queue capacity in messages", NULL, &queue},
        {"--min", "smallest block size", NULL, &min},
        {"--max", "largest block size", NULL, &max},
        {"--seed", "RNG seed", NULL, &seed},
    };
    bench_parse(argc, argv, "producer threads allocate, consumer threads free", opts, sizeof opts / sizeof opts[0]);
    if (!producers || !consumers || !batch || !queue || !min || max < min) bench_die("bad parameters");
    g_per_producer = ops / producers;
    g_batch = batch;
    g_min = min;
    g_max = max;
    g_seed = seed;
    q.cap = queue;
    q.ring = bench_malloc(queue * sizeof *q.ring);
    pthread_t *tid = bench_malloc((producers + consumers) * sizeof *tid);
    uint64_t *sums = calloc(consumers, sizeof *sums);
    if (!sums) bench_die("out of memory");

    double t0 = bench_now();
    for (uint64_t c = 0; c < consumers; c++)
        if (pthread_create(&tid[producers + c], NULL, consumer, &sums[c])) bench_die("pthread_create failed");
    for (uint64_t p = 0; p < producers; p++)
        if (pthread_create(&tid[p], NULL, producer, (void *)(uintptr_t)p)) bench_die("pthread_create failed");
    for (uint64_t p = 0; p < producers; p++) pthread_join(tid[p], NULL);
    for (uint64_t c = 0; c < consumers; c++) q_push(NULL);
    for (uint64_t c = 0; c < consumers; c++) pthread_join(tid[producers + c], NULL);
    double secs = bench_now() - t0;

    uint64_t checksum = 0;
    for (uint64_t c = 0; c < consumers; c++) checksum += sums[c];
    free(sums);
    free(tid);
    free(q.ring);
    char extra[96];
    snprintf(extra, sizeof extra, "producers=%llu consumers=%llu", (unsigned long long)producers,
             (unsigned long long)consumers);
    bench_result("prodcons", g_per_producer * producers, secs, checksum, extra);
    return 0;
}
