#include "common/options.h"

#include <string.h>

#include "common/error.h"
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

/* ---- validation: a bad value is reported in one line and replaced, never ignored silently ---- */

/* Appends src to the buffer at *o, keeping room for the terminator (end is one past the last usable byte). */
static void put(char **o, char *end, const char *src) {
    while (*src != '\0' && *o < end)
        *(*o)++ = *src++;
}

static void put_u64(char **o, char *end, uint64_t v) {
    char tmp[24];
    int n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    while (n > 0 && *o < end)
        *(*o)++ = tmp[--n];
}

/* "hakmem: warning: NAME=VALUE: WHY; using USED" on stderr, with write(2) (nothing here may allocate). */
static void warn_option(const char *name, const char *value, const char *why, const char *used,
                        uint64_t num) {
    char buf[256];
    char *o = buf, *end = buf + sizeof buf - 2;
    put(&o, end, "hakmem: warning: ");
    put(&o, end, name);
    put(&o, end, "=");
    put(&o, end, value); /* cut at the buffer's end: the line stays one line */
    put(&o, end, ": ");
    put(&o, end, why);
    put(&o, end, "; using ");
    if (used != NULL)
        put(&o, end, used);
    else
        put_u64(&o, end, num);
    *o++ = '\n';
    *o = '\0';
    hak_write_stderr(buf);
}

/* Parses a decimal count with an optional binary suffix (k, m, g, t, optionally followed by b) if `sizes`.
 * Values past `max` (or past 64 bits) saturate to max and set *clamped. False on junk. */
static bool parse_number(const char *s, bool sizes, uint64_t max, uint64_t *out, bool *clamped) {
    if (*s < '0' || *s > '9')
        return false;
    uint64_t v = 0;
    bool over = false;
    for (; *s >= '0' && *s <= '9'; s++) {
        if (v > (UINT64_MAX - 9) / 10)
            over = true;
        else
            v = v * 10 + (uint64_t)(*s - '0');
    }
    unsigned shift = 0;
    if (sizes) {
        const char *units = "kmgt";
        for (unsigned i = 0; units[i] != '\0'; i++)
            if (*s == units[i] || *s == units[i] - ('a' - 'A')) {
                shift = 10 * (i + 1);
                s++;
                break;
            }
        if (*s == 'b' || *s == 'B')
            s++;
    }
    if (*s != '\0')
        return false;
    if (v > (UINT64_MAX >> shift))
        over = true;
    v <<= over ? 0 : shift;
    *clamped = over || v > max;
    *out = *clamped ? max : v;
    return true;
}

static void load_number(const char *name, bool sizes, uint64_t max, uint64_t *option) {
    const char *v = env_value(name);
    if (v == NULL)
        return;
    uint64_t n;
    bool clamped;
    if (!parse_number(v, sizes, max, &n, &clamped)) {
        warn_option(name, v, sizes ? "not a size (digits, then k, m, g or t)" : "not a whole number", NULL,
                    *option);
        return;
    }
    if (clamped)
        warn_option(name, v, "too large", NULL, max);
    *option = n;
}

/* One of two lists of words; anything else is reported, naming what is expected. */
static void load_choice(const char *name, const char *const yes[], const char *const no[],
                        const char *expected, bool *option) {
    const char *v = env_value(name);
    if (v == NULL)
        return;
    for (unsigned i = 0; yes[i] != NULL; i++)
        if (strcmp(v, yes[i]) == 0) {
            *option = true;
            return;
        }
    for (unsigned i = 0; no[i] != NULL; i++)
        if (strcmp(v, no[i]) == 0) {
            *option = false;
            return;
        }
    warn_option(name, v, expected, *option ? yes[0] : no[0], 0);
}

#define HAK_ADDRESS_SPACE                                                                                    \
    ((uint64_t)1 << 47) /* no size option can usefully exceed the user address space                         \
                         */

void hak_options_load(void) {
    static const char *const abort_words[] = {"abort", NULL}, *const warn_words[] = {"warn", NULL};
    static const char *const on[] = {"1", "yes", "true", "on", NULL}, *const off[] = {"0", "no", "false",
                                                                                      "off", NULL};
    load_choice("HAKMEM_ON_ERROR", abort_words, warn_words, "expected abort or warn",
                &hak_options.on_error_abort);
    load_choice("HAKMEM_SHOW_STATS", on, off, "expected 1 or 0 (yes/no, true/false, on/off)",
                &hak_options.show_stats);
    uint64_t n = hak_options.purge_delay_ms;
    load_number("HAKMEM_PURGE_DELAY_MS", false, (uint64_t)1 << 53, &n);
    hak_options.purge_delay_ms = n;
    n = hak_options.bigcache_max;
    load_number("HAKMEM_BIGCACHE_MAX", true, HAK_ADDRESS_SPACE, &n);
    hak_options.bigcache_max = (size_t)n;
    n = hak_options.ss_cache_max;
    load_number("HAKMEM_SUPERSLAB_CACHE", false, HAK_ADDRESS_SPACE >> 21, &n);
    hak_options.ss_cache_max = (size_t)n;
}
