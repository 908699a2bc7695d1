/* SPDX-License-Identifier: MIT */
/* random_mixed: the original HAKMEM headline workload, on plain malloc/free.
 *
 * A ring of W slots. Each step picks a slot at random; if the slot holds a block it is freed, otherwise a
 * block is allocated (a random size in [--min, --max], default 16..1040 B, or the fixed --size) and written:
 * its first and last bytes (--touch 0), or one byte in every page (--touch 1). One step is one operation.
 *
 * Run it under another allocator with LD_PRELOAD. Example: random_mixed --ops 20M --size 64
 */
#include "bench.h"

int main(int argc, char **argv) {
    uint64_t ops = 20000000, slots = 8192, size = 0, min = 16, max = 1040, touch = 0, seed = 42, warmup = 0;
    const bench_opt_t opts[] = {
        {"--ops", "operations (allocations + frees)", NULL, &ops},
        {"--slots", "ring slots W (live blocks are about W/2)", NULL, &slots},
        {"--size", "fixed block size; 0 = random in [--min, --max]", NULL, &size},
        {"--min", "smallest random size", NULL, &min},
        {"--max", "largest random size", NULL, &max},
        {"--touch", "0 = write first and last byte, 1 = write every page", NULL, &touch},
        {"--warmup", "unmeasured operations first", NULL, &warmup},
        {"--seed", "RNG seed", NULL, &seed},
    };
    bench_parse(argc, argv, "random slot ring: free if full, else allocate and write", opts,
                sizeof opts / sizeof opts[0]);
    if (slots == 0 || (size == 0 && (min == 0 || max < min))) bench_die("need --slots > 0 and 0 < --min <= --max");

    void **slot = calloc(slots, sizeof *slot);
    if (!slot) bench_die("out of memory");
    bench_rng_t rng = bench_rng(seed, 0);
    uint64_t checksum = 0;
    double t0 = 0;
    for (uint64_t i = 0, total = warmup + ops; i < total; i++) {
        if (i == warmup) t0 = bench_now();
        uint64_t r = bench_next(&rng);
        uint64_t k = (uint64_t)(((unsigned __int128)r * slots) >> 64);
        unsigned char *p = slot[k];
        if (p) {
            checksum += p[0];
            free(p);
            slot[k] = NULL;
        } else {
            size_t n = size ? size : min + (size_t)((r & 0xffffffffu) % (max - min + 1));
            p = bench_malloc(n);
            if (touch) bench_touch_pages(p, n, (unsigned char)i);
            else p[0] = (unsigned char)i, p[n - 1] = (unsigned char)(i >> 8);
            slot[k] = p;
        }
    }
    double secs = bench_now() - t0;
    for (uint64_t k = 0; k < slots; k++) free(slot[k]);
    free(slot);

    char extra[160];
    if (size) snprintf(extra, sizeof extra, "size=%llu slots=%llu", (unsigned long long)size, (unsigned long long)slots);
    else snprintf(extra, sizeof extra, "size=%llu-%llu slots=%llu", (unsigned long long)min, (unsigned long long)max,
                  (unsigned long long)slots);
    bench_result("random_mixed", ops, secs, checksum, extra);
    return 0;
}
