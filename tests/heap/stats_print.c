/* SPDX-License-Identifier: MIT */
/* Helper program for check_stats_output.py: allocates a known set, then prints hak_stats_print output.
 *   stats_print json   -> JSON on stdout
 *   stats_print json-heap -> the private heap's JSON (hak_heap_stats_print) on stdout
 *   stats_print text   -> text on stdout
 *   stats_print exit   -> prints nothing itself (HAKMEM_SHOW_STATS=1 makes the library print at exit)
 *   stats_print peak   -> 72 MB live, freed, then nothing printed itself (for the peak at exit)
 * The expected values go to stderr as one JSON line starting with "expect ". */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hakmem/hakmem.h>

/* 72 MB of blocks (as 4000-byte blocks and 1 MiB blocks), all freed again: the statistics printed at exit
 * must show a peak of at least 72 MB. */
static int peak_then_free(void) {
    enum { SMALL = 9000, LARGE = 36 };
    static void *small[SMALL], *large[LARGE];
    for (int i = 0; i < SMALL; i++)
        if ((small[i] = hak_alloc(4000)) == NULL)
            return 2;
    for (int i = 0; i < LARGE; i++)
        if ((large[i] = hak_alloc(1000000)) == NULL)
            return 2;
    for (int i = 0; i < SMALL; i++)
        hak_free(small[i]);
    for (int i = 0; i < LARGE; i++)
        hak_free(large[i]);
    fprintf(stderr, "expect {\"peak_held_min\":%d}\n", SMALL * 4000 + LARGE * 1000000);
    return 0;
}

int main(int argc, char **argv) {
    const char *mode = argc > 1 ? argv[1] : "json";
    if (strcmp(mode, "peak") == 0)
        return peak_then_free();
    static void *small[100], *mid[10], *large[3];
    unsigned long long live_bytes = 0, large_bytes = 0;
    /* a name that needs escaping in JSON */
    hak_heap_t *h = hak_heap_create(&(hak_heap_options_t){64 << 20, "json \"heap\" \\ \t1"});
    if (h == NULL)
        return 2;
    for (int i = 0; i < 100; i++) { /* 100 blocks of 100 B: the 112-byte class, default heap */
        small[i] = hak_alloc(100);
        if (!small[i])
            return 2;
        live_bytes += hak_usable_size(small[i]);
    }
    for (int i = 0; i < 10; i++) { /* 10 blocks of 5000 B in a private heap */
        mid[i] = hak_heap_alloc(h, 5000);
        if (!mid[i])
            return 2;
        live_bytes += hak_usable_size(mid[i]);
    }
    for (int i = 0; i < 3; i++) { /* 3 large blocks of 1 MiB, default heap */
        large[i] = hak_alloc(1 << 20);
        if (!large[i])
            return 2;
        memset(large[i], 1, 1 << 20);
        live_bytes += hak_usable_size(large[i]);
        large_bytes += hak_usable_size(large[i]);
    }
    fprintf(
        stderr,
        "expect {\"heaps\":2,\"live_blocks\":113,\"live_bytes\":%llu,\"large_blocks\":3,\"large_bytes\":%llu,"
        "\"class_112\":100,\"class_%zu\":10,\"heap_name\":\"json \\\"heap\\\" \\\\ \\t1\","
        "\"heap_live_blocks\":10,\"heap_live_bytes\":%zu,\"heap_limit\":%d}\n",
        live_bytes, large_bytes, hak_usable_size(mid[0]), 10 * hak_usable_size(mid[0]), 64 << 20);
    fflush(stderr);
    if (strcmp(mode, "json") == 0) {
        hak_stats_print(stdout, 1);
    } else if (strcmp(mode, "json-heap") == 0) {
        if (hak_heap_stats_print(h, stdout, 1) != 0)
            return 2;
    } else if (strcmp(mode, "text") == 0) {
        hak_stats_print(stdout, 0);
    } else if (strcmp(mode, "exit") != 0) {
        return 2;
    }
    fflush(stdout);
    /* leave the blocks live: the exit-time statistics show them */
    return 0;
}
