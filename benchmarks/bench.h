/* SPDX-License-Identifier: MIT */
/* bench.h: the small shared part of the benchmark programs: options, a seeded RNG, timing, touching memory,
 * and the result line.
 *
 * Every workload program uses plain malloc/free (so it runs under any allocator through LD_PRELOAD), takes
 * `--name value` options, uses a fixed default seed, and prints exactly one line on stdout:
 *
 *   RESULT bench=<name> ops=<n> seconds=<measured> mops=<n/s/1e6> checksum=<c> [key=value ...]
 *
 * `seconds` covers the measured part only (not option parsing or the final cleanup). Errors go to stderr and
 * exit with status 1; a bad option prints the usage and exits with status 2.
 *
 * Numbers accept suffixes: k/M/G (x 1000) and Ki/Mi/Gi (x 1024): `--ops 2M`, `--max 64Mi`. */
#ifndef HAKMEM_BENCH_H
#define HAKMEM_BENCH_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#if defined(__GNUC__)
#define BENCH_UNUSED __attribute__((unused))
#define BENCH_NOINLINE __attribute__((noinline))
#else
#define BENCH_UNUSED
#define BENCH_NOINLINE
#endif

/* ---- options ---------------------------------------------------------------------------------------------- */

typedef struct {
    const char *name;  /* "--ops" */
    const char *help;  /* shown by the usage message */
    const char **str;  /* string option, or */
    uint64_t *num;     /* numeric option (suffixes allowed) */
} bench_opt_t;

static BENCH_UNUSED const char *bench_prog = "bench";

static BENCH_UNUSED void bench_usage(const char *what, const bench_opt_t *opts, size_t n) {
    fprintf(stderr, "usage: %s [options]\n  %s\noptions (default in brackets):\n", bench_prog, what);
    for (size_t i = 0; i < n; i++) {
        if (opts[i].num)
            fprintf(stderr, "  %-14s %s [%llu]\n", opts[i].name, opts[i].help, (unsigned long long)*opts[i].num);
        else
            fprintf(stderr, "  %-14s %s [%s]\n", opts[i].name, opts[i].help, *opts[i].str);
    }
    exit(2);
}

static BENCH_UNUSED int bench_parse_num(const char *s, uint64_t *out) {
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 0);
    if (errno || end == s) return -1;
    uint64_t mul = 1;
    if (*end == 'k' || *end == 'K' || *end == 'M' || *end == 'G') {
        int bin = end[1] == 'i';
        uint64_t base = bin ? 1024 : 1000;
        mul = (*end == 'k' || *end == 'K') ? base : *end == 'M' ? base * base : base * base * base;
        end += bin ? 2 : 1;
    }
    if (*end) return -1;
    *out = (uint64_t)v * mul;
    return 0;
}

/* Parses argv against opts; any unknown option, missing value or bad number prints the usage. */
static BENCH_UNUSED void bench_parse(int argc, char **argv, const char *what, const bench_opt_t *opts, size_t n) {
    bench_prog = argv[0];
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) bench_usage(what, opts, n);
        size_t k = 0;
        while (k < n && strcmp(argv[i], opts[k].name)) k++;
        if (k == n || i + 1 >= argc) {
            fprintf(stderr, "%s: bad or incomplete option '%s'\n", bench_prog, argv[i]);
            bench_usage(what, opts, n);
        }
        const char *v = argv[++i];
        if (opts[k].num) {
            if (bench_parse_num(v, opts[k].num)) {
                fprintf(stderr, "%s: bad number '%s' for %s\n", bench_prog, v, opts[k].name);
                bench_usage(what, opts, n);
            }
        } else {
            *opts[k].str = v;
        }
    }
}

static BENCH_UNUSED void bench_die(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "%s: ", bench_prog);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(1);
}

/* malloc that exits on failure (a benchmark must not measure a NULL path). */
static inline void *bench_malloc(size_t n) {
    void *p = malloc(n);
    if (!p) bench_die("malloc(%zu) failed", n);
    return p;
}

/* ---- RNG: xorshift64*, seeded through splitmix64 so that seeds 0, 1, 2 give unrelated streams ------------- */

typedef struct {
    uint64_t s;
} bench_rng_t;

static inline bench_rng_t bench_rng(uint64_t seed, uint64_t stream) {
    uint64_t z = seed + 0x9E3779B97F4A7C15ull * (stream + 1);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    bench_rng_t r = {z ? z : 0x2545F4914F6CDD1Dull};
    return r;
}

static inline uint64_t bench_next(bench_rng_t *r) {
    uint64_t x = r->s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    r->s = x;
    return x * 0x2545F4914F6CDD1Dull;
}

/* Uniform in [lo, hi] (inclusive). */
static inline uint64_t bench_range(bench_rng_t *r, uint64_t lo, uint64_t hi) {
    if (hi <= lo) return lo;
    return lo + (uint64_t)(((unsigned __int128)bench_next(r) * (hi - lo + 1)) >> 64);
}

/* Log-uniform in [lo, hi]: every doubling equally likely (small blocks common, large ones present). */
static inline uint64_t bench_range_log(bench_rng_t *r, uint64_t lo, uint64_t hi) {
    if (hi <= lo) return lo;
    if (lo == 0) lo = 1;
    double u = (double)(bench_next(r) >> 11) * 0x1.0p-53; /* [0, 1) */
    uint64_t v = (uint64_t)exp(log((double)lo) + u * (log((double)hi + 1.0) - log((double)lo)));
    return v < lo ? lo : v > hi ? hi : v;
}

/* ---- time ------------------------------------------------------------------------------------------------- */

static inline double bench_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* ---- memory ----------------------------------------------------------------------------------------------- */

/* Writes one byte in every 4 KiB page of the block and its last byte (so that every page is resident). */
static inline void bench_touch_pages(void *p, size_t n, unsigned char v) {
    unsigned char *b = (unsigned char *)p;
    for (size_t i = 0; i < n; i += 4096) b[i] = v;
    if (n) b[n - 1] = v;
}

/* Current resident set in KiB, read from /proc/self/statm without allocating (0 if unavailable). */
static BENCH_UNUSED uint64_t bench_rss_kib(void) {
    char buf[128];
    int fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
    if (fd < 0) return 0;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0) return 0;
    buf[n] = 0;
    unsigned long long size = 0, res = 0;
    if (sscanf(buf, "%llu %llu", &size, &res) != 2) return 0;
    return (uint64_t)res * (uint64_t)(sysconf(_SC_PAGESIZE) / 1024);
}

/* ---- result ----------------------------------------------------------------------------------------------- */

/* Prints the RESULT line; `extra` is appended as is (e.g. "threads=4 rss_end_kib=123"), may be NULL. */
static BENCH_UNUSED void bench_result(const char *bench, uint64_t ops, double seconds, uint64_t checksum,
                                      const char *extra) {
    printf("RESULT bench=%s ops=%llu seconds=%.6f mops=%.6g checksum=%llu%s%s\n", bench,
           (unsigned long long)ops, seconds, seconds > 0 ? (double)ops / seconds / 1e6 : 0.0,
           (unsigned long long)checksum, extra && *extra ? " " : "", extra ? extra : "");
    fflush(stdout);
}

#endif /* HAKMEM_BENCH_H */
