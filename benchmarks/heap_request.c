/* SPDX-License-Identifier: MIT */
/* heap_request: a private heap per request, thrown away with one call, against freeing block by block.
 *
 * Each of --requests requests allocates --blocks blocks of log-uniform random size in [--min, --max] (every
 * doubling equally likely), writes their first and last byte, and then releases them all:
 *   --mode heap     hak_heap_create, hak_heap_alloc for every block, hak_heap_destroy (hakmem private heap)
 *   --mode hakfree  hak_alloc for every block, hak_free of each one (hakmem default heap)
 *   --mode glibc    malloc and free of each one (this program is linked to hakmem_static, not preloaded, so
 *                   malloc is the C library's)
 * Blocks are freed in allocation order. One operation = one block allocated (and released).
 *
 * Example: heap_request --mode heap --requests 2000 --blocks 1000
 */
#include <hakmem/hakmem.h>

#include "bench.h"

int main(int argc, char **argv) {
    uint64_t requests = 2000, blocks = 1000, min = 16, max = 2048, seed = 42;
    const char *mode = "heap";
    const bench_opt_t opts[] = {
        {"--mode", "heap (private heap + destroy), hakfree (hak_alloc/hak_free) or glibc (malloc/free)", &mode,
         NULL},
        {"--requests", "requests", NULL, &requests},
        {"--blocks", "blocks per request", NULL, &blocks},
        {"--min", "smallest block size", NULL, &min},
        {"--max", "largest block size", NULL, &max},
        {"--seed", "RNG seed", NULL, &seed},
    };
    bench_parse(argc, argv, "per-request heaps: destroy at once vs free one by one", opts,
                sizeof opts / sizeof opts[0]);
    enum { HEAP, HAKFREE, GLIBC } m;
    if (!strcmp(mode, "heap")) m = HEAP;
    else if (!strcmp(mode, "hakfree")) m = HAKFREE;
    else if (!strcmp(mode, "glibc")) m = GLIBC;
    else bench_die("--mode must be heap, hakfree or glibc");
    if (!blocks || !min || max < min) bench_die("bad parameters");
    void **ptr = calloc(blocks, sizeof *ptr);
    if (!ptr) bench_die("out of memory");
    bench_rng_t rng = bench_rng(seed, 0);
    uint64_t checksum = 0;
    hak_heap_options_t hopts = {0, "request"};

    double t0 = bench_now();
    for (uint64_t r = 0; r < requests; r++) {
        hak_heap_t *heap = m == HEAP ? hak_heap_create(&hopts) : NULL;
        if (m == HEAP && !heap) bench_die("hak_heap_create failed");
        for (uint64_t i = 0; i < blocks; i++) {
            size_t n = bench_range_log(&rng, min, max);
            unsigned char *p = m == HEAP ? hak_heap_alloc(heap, n) : m == HAKFREE ? hak_alloc(n) : malloc(n);
            if (!p) bench_die("allocation of %zu bytes failed", n);
            p[0] = (unsigned char)i;
            p[n - 1] = (unsigned char)r;
            ptr[i] = p;
        }
        checksum += ((unsigned char *)ptr[blocks / 2])[0];
        if (m == HEAP) {
            hak_heap_destroy(heap);
        } else {
            for (uint64_t i = 0; i < blocks; i++) {
                if (m == HAKFREE) hak_free(ptr[i]);
                else free(ptr[i]);
            }
        }
    }
    double secs = bench_now() - t0;

    free(ptr);
    char extra[96];
    snprintf(extra, sizeof extra, "mode=%s blocks=%llu", mode, (unsigned long long)blocks);
    bench_result("heap_request", requests * blocks, secs, checksum, extra);
    return 0;
}
