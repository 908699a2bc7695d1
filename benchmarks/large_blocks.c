/* SPDX-License-Identifier: MIT */
/* large_blocks: allocate, touch and free large blocks (64 KiB to 64 MiB by default).
 *
 * A few slots (--slots) hold live blocks. Each operation picks a slot at random, frees its block if it has
 * one, allocates a new block of log-uniform random size in [--min, --max] (every doubling equally likely) and
 * writes one byte in every page of it. An allocator that reuses freed large blocks keeps their pages
 * resident; one that returns them to the OS and maps fresh memory pays a page fault per page (about 15 us
 * each on the team's VMs). One operation = one allocation.
 *
 * Example: large_blocks --ops 200 --min 64Ki --max 64Mi
 */
#include "bench.h"

int main(int argc, char **argv) {
    uint64_t ops = 200, slots = 4, min = 64ull << 10, max = 64ull << 20, seed = 42;
    const bench_opt_t opts[] = {
        {"--ops", "allocations", NULL, &ops},
        {"--slots", "live blocks kept", NULL, &slots},
        {"--min", "smallest block size", NULL, &min},
        {"--max", "largest block size", NULL, &max},
        {"--seed", "RNG seed", NULL, &seed},
    };
    bench_parse(argc, argv, "alloc / touch every page / free of large blocks", opts, sizeof opts / sizeof opts[0]);
    if (!slots || !min || max < min) bench_die("bad parameters");
    unsigned char **slot = calloc(slots, sizeof *slot);
    size_t *len = calloc(slots, sizeof *len);
    if (!slot || !len) bench_die("out of memory");
    bench_rng_t rng = bench_rng(seed, 0);
    uint64_t checksum = 0, bytes = 0;

    double t0 = bench_now();
    for (uint64_t i = 0; i < ops; i++) {
        uint64_t k = bench_range(&rng, 0, slots - 1);
        if (slot[k]) {
            checksum += slot[k][len[k] - 1];
            free(slot[k]);
        }
        size_t n = bench_range_log(&rng, min, max);
        slot[k] = bench_malloc(n);
        len[k] = n;
        bench_touch_pages(slot[k], n, (unsigned char)i);
        bytes += n;
    }
    double secs = bench_now() - t0;

    for (uint64_t k = 0; k < slots; k++) free(slot[k]);
    free(slot);
    free(len);
    char extra[96];
    snprintf(extra, sizeof extra, "mib_touched=%llu", (unsigned long long)(bytes >> 20));
    bench_result("large_blocks", ops, secs, checksum, extra);
    return 0;
}
