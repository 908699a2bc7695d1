/* Options from the environment, read once at initialisation without allocating. */
#ifndef HAKMEM_COMMON_OPTIONS_H
#define HAKMEM_COMMON_OPTIONS_H

#include "common/compiler.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct hak_options_s {
    bool on_error_abort;     /* HAKMEM_ON_ERROR=abort (default) | warn */
    bool show_stats;         /* HAKMEM_SHOW_STATS=1: print process stats at exit */
    uint64_t purge_delay_ms; /* HAKMEM_PURGE_DELAY_MS: cached memory older than this goes back to the OS */
    size_t bigcache_max;     /* HAKMEM_BIGCACHE_MAX: bytes of freed large mappings kept for reuse */
    size_t ss_cache_max;     /* HAKMEM_SUPERSLAB_CACHE: empty SuperSlabs kept committed (until the delay) */
} hak_options_t;

extern HAK_HIDDEN hak_options_t hak_options;

void hak_options_load(void);

#endif
