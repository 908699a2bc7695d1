#include "common/options.h"

#include <string.h>
#include <unistd.h>

extern char **environ;

hak_options_t hak_options = {
    .on_error_abort = true,
    .show_stats = false,
    .purge_delay_ms = 1000,
    .bigcache_max = (size_t)256 << 20,
    .ss_cache_max = 64,
};

/* getenv is avoided on purpose: we scan `environ` ourselves so that nothing here can ever allocate. */
static const char *env_value(const char *name) {
    size_t n = strlen(name);
    for (char **e = environ; e != NULL && *e != NULL; e++)
        if (strncmp(*e, name, n) == 0 && (*e)[n] == '=')
            return *e + n + 1;
    return NULL;
}

/* Parses a size with an optional k/m/g suffix; returns false on junk. */
static bool parse_size(const char *s, uint64_t *out) {
    if (s == NULL || *s == '\0')
        return false;
    uint64_t v = 0;
    for (; *s >= '0' && *s <= '9'; s++)
        v = v * 10 + (uint64_t)(*s - '0');
    switch (*s) {
    case 'k':
    case 'K':
        v <<= 10;
        s++;
        break;
    case 'm':
    case 'M':
        v <<= 20;
        s++;
        break;
    case 'g':
    case 'G':
        v <<= 30;
        s++;
        break;
    default:
        break;
    }
    if (*s == 'b' || *s == 'B')
        s++;
    if (*s != '\0')
        return false;
    *out = v;
    return true;
}

void hak_options_load(void) {
    const char *v = env_value("HAKMEM_ON_ERROR");
    if (v != NULL)
        hak_options.on_error_abort = strcmp(v, "warn") != 0;
    v = env_value("HAKMEM_SHOW_STATS");
    if (v != NULL)
        hak_options.show_stats = v[0] == '1' || v[0] == 'y' || v[0] == 't';
    uint64_t n;
    if (parse_size(env_value("HAKMEM_PURGE_DELAY_MS"), &n))
        hak_options.purge_delay_ms = n;
    if (parse_size(env_value("HAKMEM_BIGCACHE_MAX"), &n))
        hak_options.bigcache_max = (size_t)n;
    if (parse_size(env_value("HAKMEM_SUPERSLAB_CACHE"), &n))
        hak_options.ss_cache_max = (size_t)n;
}
