/* random_mixed: the original HAKMEM headline workload.
 *
 * A ring of W slots. Each step picks a slot with a xorshift generator (fixed seed); if the slot holds a block
 * it is freed, otherwise a block is allocated (a random size in [16, 1040] B, or a fixed size) and its first
 * and last bytes are written. One step is one operation (an allocation or a free).
 *
 * usage: random_mixed [--alloc hakmem|system] [--ops N] [--slots W] [--size S (0 = mixed)] [--seed X]
 *                     [--warmup N]
 * Prints one line: alloc=<a> size=<s|mixed> slots=<W> ops=<N> seconds=<t> mops=<M ops/s> checksum=<c>
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <hakmem/hakmem.h>

typedef struct {
    void *(*alloc)(size_t);
    void (*free)(void *);
    const char *name;
} allocator_t;

static void *sys_alloc(size_t n) { return malloc(n); }
static void sys_free(void *p) { free(p); }

static const allocator_t allocators[] = {
    {hak_alloc, hak_free, "hakmem"},
    {sys_alloc, sys_free, "system"},
};

static inline uint64_t xorshift64(uint64_t *s) {
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    *s = x;
    return x;
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void usage(const char *argv0) {
    fprintf(stderr,
            "usage: %s [--alloc hakmem|system] [--ops N] [--slots W] [--size S (0 = mixed 16..1040)] "
            "[--seed X] [--warmup N]\n",
            argv0);
    exit(2);
}

static unsigned long long num(const char *s, const char *argv0) {
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 0);
    if (errno || end == s) usage(argv0);
    if (*end == 'k' || *end == 'K') v *= 1000, end++;
    else if (*end == 'm' || *end == 'M') v *= 1000000, end++;
    if (*end) usage(argv0);
    return v;
}

/* The measured loop, instantiated once per allocator with direct calls (no indirection in either). */
#define DEFINE_RUN(NAME, ALLOC, FREE, LABEL)                                                                   \
    static unsigned long long NAME(void **slot, uint64_t w, uint64_t ops, size_t fixed, uint64_t *rng) {      \
        unsigned long long checksum = 0;                                                                      \
        for (uint64_t i = 0; i < ops; i++) {                                                                  \
            uint64_t r = xorshift64(rng);                                                                     \
            uint64_t k = r % w;                                                                               \
            void *p = slot[k];                                                                                \
            if (p) {                                                                                          \
                checksum += ((unsigned char *)p)[0];                                                          \
                FREE(p);                                                                                      \
                slot[k] = NULL;                                                                               \
            } else {                                                                                          \
                size_t n = fixed ? fixed : 16 + (size_t)((r >> 32) % 1025); /* 16 .. 1040 */                  \
                unsigned char *b = ALLOC(n);                                                                  \
                if (!b) {                                                                                     \
                    fprintf(stderr, "random_mixed: %s allocation of %zu bytes failed\n", LABEL, n);           \
                    exit(1);                                                                                  \
                }                                                                                             \
                b[0] = (unsigned char)i;                                                                      \
                b[n - 1] = (unsigned char)(i >> 8);                                                           \
                slot[k] = b;                                                                                  \
            }                                                                                                 \
        }                                                                                                     \
        return checksum;                                                                                      \
    }

DEFINE_RUN(run_hakmem, hak_alloc, hak_free, "hakmem")
DEFINE_RUN(run_system, malloc, free, "system")

static unsigned long long run(const allocator_t *a, void **slot, uint64_t w, uint64_t ops, size_t fixed,
                              uint64_t *rng) {
    return a == &allocators[0] ? run_hakmem(slot, w, ops, fixed, rng) : run_system(slot, w, ops, fixed, rng);
}

int main(int argc, char **argv) {
    const allocator_t *a = &allocators[0];
    uint64_t ops = 20000000, w = 8192, seed = 0x2545F4914F6CDD1Dull, warmup = 0;
    size_t fixed = 0;
    for (int i = 1; i < argc; i++) {
        const char *o = argv[i];
        if (i + 1 >= argc) usage(argv[0]);
        const char *v = argv[++i];
        if (!strcmp(o, "--alloc")) {
            if (!strcmp(v, "hakmem")) a = &allocators[0];
            else if (!strcmp(v, "system") || !strcmp(v, "glibc") || !strcmp(v, "malloc")) a = &allocators[1];
            else usage(argv[0]);
        } else if (!strcmp(o, "--ops")) ops = num(v, argv[0]);
        else if (!strcmp(o, "--slots")) w = num(v, argv[0]);
        else if (!strcmp(o, "--size")) fixed = (size_t)num(v, argv[0]);
        else if (!strcmp(o, "--seed")) seed = num(v, argv[0]);
        else if (!strcmp(o, "--warmup")) warmup = num(v, argv[0]);
        else usage(argv[0]);
    }
    if (w == 0 || seed == 0) usage(argv[0]);
    void **slot = calloc(w, sizeof *slot); /* harness memory: libc, outside the measurement */
    if (!slot) return 1;
    uint64_t rng = seed;
    unsigned long long checksum = 0;
    if (warmup) checksum += run(a, slot, w, warmup, fixed, &rng);
    double t0 = now();
    checksum += run(a, slot, w, ops, fixed, &rng);
    double t1 = now();
    for (uint64_t k = 0; k < w; k++)
        if (slot[k]) a->free(slot[k]);
    free(slot);
    double secs = t1 - t0;
    char sz[32];
    if (fixed) snprintf(sz, sizeof sz, "%zu", fixed);
    else snprintf(sz, sizeof sz, "mixed");
    printf("alloc=%s size=%s slots=%llu ops=%llu seconds=%.6f mops=%.3f checksum=%llu\n", a->name, sz,
           (unsigned long long)w, (unsigned long long)ops, secs, secs > 0 ? (double)ops / secs / 1e6 : 0.0,
           checksum);
    return 0;
}
