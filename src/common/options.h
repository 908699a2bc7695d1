/* SPDX-License-Identifier: MIT */
/* Options: HAKMEM_* environment variables read once at initialisation without allocating, and read and set
 * from code afterwards (hak_option_get / hak_option_set, api/info.c). Each option is one atomic variable:
 * code on any thread reads it with a plain-looking load (a plain mov on x86-64), and a change made at run
 * time is seen by the next operation that reads it. */
#ifndef HAKMEM_COMMON_OPTIONS_H
#define HAKMEM_COMMON_OPTIONS_H

#include "common/compiler.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct hak_options_s {
    _Atomic bool on_error_abort;     /* HAKMEM_ON_ERROR=abort (default) | warn */
    _Atomic bool show_stats;         /* HAKMEM_SHOW_STATS=1: print process stats at exit */
    _Atomic uint64_t purge_delay_ms; /* HAKMEM_PURGE_DELAY_MS: cached memory older than this goes back */
    _Atomic size_t bigcache_max;     /* HAKMEM_BIGCACHE_MAX: bytes of freed large mappings kept for reuse */
    _Atomic size_t
        ss_cache_max;     /* HAKMEM_SUPERSLAB_CACHE: empty SuperSlabs kept committed (until the delay) */
    _Atomic bool verbose; /* HAKMEM_VERBOSE=1: print the options in effect at initialisation */
} hak_options_t;

extern HAK_HIDDEN hak_options_t hak_options;

/* The options by number, in the order they are printed. */
enum hak_option_id {
    HAK_OPTION_ON_ERROR,
    HAK_OPTION_SHOW_STATS,
    HAK_OPTION_PURGE_DELAY_MS,
    HAK_OPTION_BIGCACHE_MAX,
    HAK_OPTION_SUPERSLAB_CACHE,
    HAK_OPTION_VERBOSE,
    HAK_OPTION_COUNT
};

/* Reads the environment (once, at initialisation); with HAKMEM_VERBOSE=1 prints the options afterwards. */
void hak_options_load(void);
/* The option called `name` (its environment variable's name), or -1. */
int hak_option_id(const char *name);
/* An option's value as a number: ON_ERROR is 1 for abort and 0 for warn, the switches 1 or 0. */
uint64_t hak_option_value(int id);
/* Sets an option from code; false (nothing changed) for a value out of its range. */
bool hak_option_store(int id, uint64_t value);
/* One line per option to stderr, with write(2): "hakmem: option NAME=VALUE (where it came from)". */
void hak_options_print(void);

#endif
