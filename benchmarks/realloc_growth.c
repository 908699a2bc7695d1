/* SPDX-License-Identifier: MIT */
/* realloc_growth: grow buffers by small steps up to a large size with realloc.
 *
 * --buffers buffers grow side by side (so that at most one of them can sit at the end of the heap), each by
 * --step bytes per realloc from --step up to --max, writing the new bytes and checking that the old contents
 * moved along; then they are freed. That repeats --rounds times (later rounds can reuse the memory of the
 * earlier ones). One operation = one realloc call.
 *
 * Example: realloc_growth --max 64Mi --step 256 --buffers 2
 */
#include "bench.h"

int main(int argc, char **argv) {
    uint64_t max = 64ull << 20, step = 256, buffers = 2, rounds = 2;
    const bench_opt_t opts[] = {
        {"--max", "final size of each buffer", NULL, &max},
        {"--step", "bytes added per realloc", NULL, &step},
        {"--buffers", "buffers grown side by side", NULL, &buffers},
        {"--rounds", "times the whole growth is repeated", NULL, &rounds},
    };
    bench_parse(argc, argv, "grow buffers with realloc by small steps", opts, sizeof opts / sizeof opts[0]);
    if (!step || !buffers || !rounds || max < step) bench_die("bad parameters");
    unsigned char **buf = calloc(buffers, sizeof *buf);
    if (!buf) bench_die("out of memory");
    uint64_t ops = 0, checksum = 0;

    double t0 = bench_now();
    for (uint64_t r = 0; r < rounds; r++) {
        for (size_t size = step, old = 0; size <= max; old = size, size += step) {
            for (uint64_t b = 0; b < buffers; b++) {
                unsigned char *p = realloc(buf[b], size);
                if (!p) bench_die("realloc to %zu bytes failed", size);
                if (old > 1 && (p[0] != (unsigned char)b || p[old - 1] != (unsigned char)(old / step)))
                    bench_die("realloc to %zu bytes lost the contents", size);
                memset(p + old, (int)(size / step), size - old);
                p[0] = (unsigned char)b;
                buf[b] = p;
                ops++;
            }
        }
        for (uint64_t b = 0; b < buffers; b++) {
            checksum += buf[b][max / 2];
            free(buf[b]);
            buf[b] = NULL;
        }
    }
    double secs = bench_now() - t0;

    free(buf);
    char extra[96];
    snprintf(extra, sizeof extra, "max=%llu step=%llu buffers=%llu", (unsigned long long)max,
             (unsigned long long)step, (unsigned long long)buffers);
    bench_result("realloc_growth", ops, secs, checksum, extra);
    return 0;
}
