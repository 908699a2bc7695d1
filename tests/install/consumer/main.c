/* SPDX-License-Identifier: MIT */
/* Consumer of an installed hakmem: exercises the public API a little and exits non-zero on any failure. */
#include <hakmem/hakmem.h>

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#ifndef CONSUMER_VARIANT
#define CONSUMER_VARIANT "unknown"
#endif

static int failures;

#define CHECK(cond)                                                                                          \
    do {                                                                                                     \
        if (!(cond)) {                                                                                       \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);                         \
            failures++;                                                                                      \
        }                                                                                                    \
    } while (0)

static int aligned(const void *p, size_t a) { return ((uintptr_t)p & (a - 1)) == 0; }

int main(void) {
    /* the installed library is the installed header's */
    CHECK(hak_version_number() == HAKMEM_VERSION_NUMBER);
    CHECK(hak_version() != NULL && strlen(hak_version()) >= 5);
    /* default heap */
    char *p = hak_alloc(100);
    CHECK(p != NULL);
    if (p) {
        CHECK(aligned(p, 16));
        CHECK(hak_usable_size(p) >= 100);
        memset(p, 0xab, 100);
        CHECK(hak_heap_of(p) == hak_heap_default());
    }
    unsigned char *z = hak_calloc(32, 8);
    CHECK(z != NULL);
    if (z)
        for (int i = 0; i < 256; i++)
            CHECK(z[i] == 0);
    char *q = hak_realloc(p, 5000);
    CHECK(q != NULL);
    if (q) {
        CHECK(hak_usable_size(q) >= 5000);
        CHECK((unsigned char)q[0] == 0xab && (unsigned char)q[99] == 0xab);
        p = q;
    }
    void *a = hak_aligned_alloc(256, 300);
    CHECK(a != NULL && aligned(a, 256));
    CHECK(hak_usable_size(NULL) == 0);
    errno = 0;
    CHECK(hak_alloc(SIZE_MAX) == NULL && errno == ENOMEM);
    int local;
    CHECK(hak_heap_of(&local) == NULL);
    hak_free(p);
    hak_free(z);
    hak_free(a);
    hak_free(NULL);

    /* private heap */
    hak_heap_options_t opts = {.limit_bytes = 0, .name = "consumer"};
    hak_heap_t *h = hak_heap_create(&opts);
    CHECK(h != NULL);
    if (h) {
        void *blocks[64];
        for (int i = 0; i < 64; i++) {
            blocks[i] = hak_heap_alloc(h, (size_t)(i + 1) * 24);
            CHECK(blocks[i] != NULL);
            if (blocks[i]) {
                memset(blocks[i], i, (size_t)(i + 1) * 24);
                CHECK(hak_heap_of(blocks[i]) == h);
            }
        }
        for (int i = 0; i < 64; i += 2)
            hak_free(blocks[i]);
        hak_stats_t st;
        memset(&st, 0, sizeof st);
        st.size = sizeof st;
        CHECK(hak_heap_stats(h, &st) == 0);
        CHECK(strcmp(st.name, "consumer") == 0);
        CHECK(st.live_blocks >= 32);
        hak_heap_destroy(h); /* frees the remaining 32 blocks */
    }

    if (failures) {
        fprintf(stderr, "hakmem consumer (%s): %d check(s) FAILED\n", CONSUMER_VARIANT, failures);
        return 1;
    }
    printf("hakmem consumer (%s): OK\n", CONSUMER_VARIANT);
    return 0;
}
