/* SPDX-License-Identifier: MIT */
/* Version and options from code: hak_version, hak_option_get, hak_option_set. A change takes effect at once:
 * lowering a cache bound or the purge delay runs one pass of that cache's decay right away. */
#include <errno.h>

#include "bigcache/bigcache.h"
#include "common/options.h"
#include "heap/heap.h"
#include "superslab/superslab.h"

#define HAK_STR_(x) #x
#define HAK_STR(x) HAK_STR_(x)

const char *hak_version(void) {
    return HAK_STR(HAKMEM_VERSION_MAJOR) "." HAK_STR(HAKMEM_VERSION_MINOR) "." HAK_STR(HAKMEM_VERSION_PATCH);
}

int hak_version_number(void) { return HAKMEM_VERSION_NUMBER; }

int hak_option_get(const char *name, long long *value) {
    hak_init(); /* the environment is read first, so that it never overrides a value set from code */
    int id = name != NULL ? hak_option_id(name) : -1;
    if (id < 0 || value == NULL) {
        errno = EINVAL;
        return -1;
    }
    *value = (long long)hak_option_value(id);
    return 0;
}

int hak_option_set(const char *name, long long value) {
    hak_init();
    int id = name != NULL ? hak_option_id(name) : -1;
    if (id < 0 || value < 0 || !hak_option_store(id, (uint64_t)value)) {
        errno = EINVAL;
        return -1;
    }
    switch (id) {
    case HAK_OPTION_SHOW_STATS:
        hak_stats_show_at_exit(value != 0);
        break;
    case HAK_OPTION_PURGE_DELAY_MS:
        hak_ss_cache_collect(false);
        hak_bigcache_collect(false);
        break;
    case HAK_OPTION_BIGCACHE_MAX:
        hak_bigcache_collect(false);
        break;
    case HAK_OPTION_SUPERSLAB_CACHE:
        hak_ss_cache_collect(false);
        break;
    case HAK_OPTION_VERBOSE:
        if (value != 0)
            hak_options_print();
        break;
    default:
        break;
    }
    return 0;
}
