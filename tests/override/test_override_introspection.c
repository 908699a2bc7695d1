/* SPDX-License-Identifier: MIT */
/* glibc's introspection interfaces as the override defines them, with hakmem's figures: mallinfo2 and
 * mallinfo against known workloads (10 MB live in blocks served from slabs: uordblks; in large blocks: hblks
 * and hblkhd; less after the frees), malloc_trim (1 when it gave memory back), malloc_stats (hakmem's
 * statistics on stderr). The mapping is documented at the top of src/override/override.c.
 *
 * Built like test_override_api.c: run under LD_PRELOAD=libhakmem_override.so, and linked with
 * libhakmem_override.a (-DOVERRIDE_STATIC). Exits 0 when every check passes. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <hakmem/hakmem.h>

static int failures;

#define CHECK(cond, ...)                                                                                     \
    do {                                                                                                     \
        if (!(cond)) {                                                                                       \
            fprintf(stderr, "%s:%d: check failed: %s: ", __FILE__, __LINE__, #cond);                         \
            fprintf(stderr, __VA_ARGS__);                                                                    \
            fputc('\n', stderr);                                                                             \
            failures++;                                                                                      \
        }                                                                                                    \
    } while (0)

static void *(*volatile v_malloc)(size_t) = malloc;
static hak_heap_t *(*p_heap_of)(const void *);

static void resolve_api(void) {
#ifdef OVERRIDE_STATIC
    p_heap_of = hak_heap_of;
#else
    p_heap_of = (hak_heap_t * (*)(const void *)) dlsym(RTLD_DEFAULT, "hak_heap_of");
    if (p_heap_of == NULL) {
        fprintf(stderr, "hakmem's API is not in the process: run with LD_PRELOAD=libhakmem_override.so\n");
        exit(1);
    }
#endif
}

#define TEN_MB ((size_t)10 << 20)

/* 10 MB in blocks of `block` bytes: returns the blocks (NULL-terminated), all hakmem's. */
static void **allocate(size_t block) {
    size_t n = (TEN_MB + block - 1) / block;
    void **v = calloc(n + 1, sizeof *v);
    CHECK(v != NULL, "calloc");
    for (size_t i = 0; i < n; i++) {
        v[i] = v_malloc(block);
        CHECK(v[i] != NULL && p_heap_of(v[i]) != NULL, "block %zu", i);
        memset(v[i], 1, block < 4096 ? block : 4096);
    }
    return v;
}

static void release(void **v) {
    for (size_t i = 0; v[i] != NULL; i++)
        free(v[i]);
    free(v);
}

static void test_mallinfo2_slab_blocks(void) {
    struct mallinfo2 before = mallinfo2();
    void **v = allocate(1000);
    struct mallinfo2 live = mallinfo2();
    CHECK(live.uordblks >= before.uordblks + TEN_MB, "uordblks %zu, before %zu", live.uordblks,
          before.uordblks);
    CHECK(live.arena >= live.uordblks, "arena %zu < uordblks %zu", live.arena, live.uordblks);
    CHECK(live.uordblks + live.fordblks == live.arena, "uordblks + fordblks != arena");
    CHECK(live.usmblks >= TEN_MB, "usmblks (peak held) %zu", live.usmblks);
    CHECK(live.ordblks == 0 && live.smblks == 0 && live.fsmblks == 0, "bins reported");
    release(v);
    struct mallinfo2 after = mallinfo2();
    CHECK(after.uordblks + TEN_MB <= live.uordblks, "uordblks %zu after the frees, %zu live", after.uordblks,
          live.uordblks);
    CHECK(after.usmblks >= live.usmblks, "the peak went down");
}

static void test_mallinfo2_large_blocks(void) {
    struct mallinfo2 before = mallinfo2();
    void **v = allocate(1 << 20);
    struct mallinfo2 live = mallinfo2();
    CHECK(live.hblks >= before.hblks + 10, "hblks %zu, before %zu", live.hblks, before.hblks);
    CHECK(live.hblkhd >= before.hblkhd + TEN_MB, "hblkhd %zu, before %zu", live.hblkhd, before.hblkhd);
    release(v);
    struct mallinfo2 after = mallinfo2();
    CHECK(after.hblks + 10 <= live.hblks, "hblks %zu after the frees", after.hblks);
    CHECK(after.hblkhd + TEN_MB <= live.hblkhd, "hblkhd %zu after the frees", after.hblkhd);
    CHECK(after.keepcost > 0, "freed large mappings are cached: keepcost %zu", after.keepcost);
}

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
static void test_mallinfo(void) {
    void **v = allocate(1000);
    struct mallinfo m = mallinfo();
    struct mallinfo2 m2 = mallinfo2();
    CHECK(m.uordblks > 0 && (size_t)m.uordblks >= TEN_MB, "mallinfo uordblks %d", m.uordblks);
    CHECK(m.arena >= m.uordblks, "mallinfo arena %d", m.arena);
    CHECK(m2.uordblks >= TEN_MB && (m2.uordblks > INT_MAX || (size_t)m.uordblks <= m2.uordblks + (1 << 20)),
          "mallinfo and mallinfo2 disagree: %d, %zu", m.uordblks, m2.uordblks);
    release(v);
}
#pragma GCC diagnostic pop

static void test_malloc_trim(void) {
    void **v = allocate(1 << 20);
    release(v);
    v = allocate(1000);
    release(v);
    struct mallinfo2 cached = mallinfo2();
    CHECK(malloc_trim(0) == 1, "malloc_trim after freeing 20 MB gave nothing back");
    struct mallinfo2 trimmed = mallinfo2();
    CHECK(trimmed.keepcost == 0, "keepcost %zu after malloc_trim", trimmed.keepcost);
    CHECK(trimmed.arena < cached.arena, "arena %zu after malloc_trim, %zu before", trimmed.arena,
          cached.arena);
    CHECK(malloc_trim(0) == 0, "a second malloc_trim found memory to give back");
    CHECK(malloc_trim(1 << 20) == 0, "malloc_trim with a pad");
}

/* malloc_stats writes hakmem's statistics to fd 2: catch them in a file. */
static void test_malloc_stats(void) {
    char path[] = "/tmp/hakmem-malloc-stats-XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0, "mkstemp");
    if (fd < 0)
        return;
    unlink(path);
    fflush(stderr);
    int saved = dup(2);
    dup2(fd, 2);
    void *p = v_malloc(100);
    errno = 1234;
    malloc_stats();
    int e = errno;
    free(p);
    dup2(saved, 2);
    close(saved);
    char buf[8192];
    ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
    close(fd);
    buf[n > 0 ? n : 0] = '\0';
    CHECK(strstr(buf, "hakmem stats (process)") != NULL, "malloc_stats printed:\n%s", buf);
    CHECK(strstr(buf, "  live ") != NULL && strstr(buf, "  held ") != NULL, "malloc_stats printed:\n%s", buf);
    CHECK(e == 1234, "malloc_stats changed errno to %d", e);
}

int main(void) {
    resolve_api();
    test_mallinfo2_slab_blocks();
    test_mallinfo2_large_blocks();
    test_mallinfo();
    test_malloc_trim();
    test_malloc_stats();
    if (failures != 0) {
        fprintf(stderr, "%d check(s) failed\n", failures);
        return 1;
    }
    printf("override introspection: all checks passed\n");
    return 0;
}
