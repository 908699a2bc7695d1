/* SPDX-License-Identifier: MIT */
#include "common/options.h"

#include <string.h>

#include "common/error.h"
#include "hakmem/hakmem.h"
#include <unistd.h>

extern char **environ;

hak_options_t hak_options = {
    .on_error_abort = true,
    .show_stats = false,
    .purge_delay_ms = 1000,
    .bigcache_max = (size_t)256 << 20,
    .ss_cache_max = 64,
    .verbose = false,
};

/* No size option can usefully exceed the user address space. */
#define HAK_ADDRESS_SPACE ((uint64_t)1 << 47)

/* How each option is written and its largest value. */
enum kind { KIND_ON_ERROR, KIND_SWITCH, KIND_NUMBER, KIND_SIZE };
static const struct option_def {
    const char *name;
    enum kind kind;
    uint64_t max;
} defs[HAK_OPTION_COUNT] = {
    [HAK_OPTION_ON_ERROR] = {"HAKMEM_ON_ERROR", KIND_ON_ERROR, 1},
    [HAK_OPTION_SHOW_STATS] = {"HAKMEM_SHOW_STATS", KIND_SWITCH, 1},
    [HAK_OPTION_PURGE_DELAY_MS] = {"HAKMEM_PURGE_DELAY_MS", KIND_NUMBER, (uint64_t)1 << 53},
    [HAK_OPTION_BIGCACHE_MAX] = {"HAKMEM_BIGCACHE_MAX", KIND_SIZE, HAK_ADDRESS_SPACE},
    [HAK_OPTION_SUPERSLAB_CACHE] = {"HAKMEM_SUPERSLAB_CACHE", KIND_NUMBER, HAK_ADDRESS_SPACE >> 21},
    [HAK_OPTION_VERBOSE] = {"HAKMEM_VERBOSE", KIND_SWITCH, 1},
};

/* Where each option's value came from, for HAKMEM_VERBOSE (relaxed atomic bytes). */
enum source { FROM_DEFAULT, FROM_ENVIRONMENT, FROM_CODE };
static uint8_t sources[HAK_OPTION_COUNT];

int hak_option_id(const char *name) {
    for (int id = 0; id < HAK_OPTION_COUNT; id++)
        if (strcmp(name, defs[id].name) == 0)
            return id;
    return -1;
}

uint64_t hak_option_value(int id) {
    switch (id) {
    case HAK_OPTION_ON_ERROR:
        return hak_options.on_error_abort;
    case HAK_OPTION_SHOW_STATS:
        return hak_options.show_stats;
    case HAK_OPTION_PURGE_DELAY_MS:
        return hak_options.purge_delay_ms;
    case HAK_OPTION_BIGCACHE_MAX:
        return hak_options.bigcache_max;
    case HAK_OPTION_SUPERSLAB_CACHE:
        return hak_options.ss_cache_max;
    case HAK_OPTION_VERBOSE:
        return hak_options.verbose;
    default:
        return 0;
    }
}

static void store(int id, uint64_t v) {
    switch (id) {
    case HAK_OPTION_ON_ERROR:
        hak_options.on_error_abort = v != 0;
        break;
    case HAK_OPTION_SHOW_STATS:
        hak_options.show_stats = v != 0;
        break;
    case HAK_OPTION_PURGE_DELAY_MS:
        hak_options.purge_delay_ms = v;
        break;
    case HAK_OPTION_BIGCACHE_MAX:
        hak_options.bigcache_max = (size_t)v;
        break;
    case HAK_OPTION_SUPERSLAB_CACHE:
        hak_options.ss_cache_max = (size_t)v;
        break;
    case HAK_OPTION_VERBOSE:
        hak_options.verbose = v != 0;
        break;
    default:
        break;
    }
}

bool hak_option_store(int id, uint64_t value) {
    if (id < 0 || id >= HAK_OPTION_COUNT || value > defs[id].max)
        return false;
    store(id, value);
    __atomic_store_n(&sources[id], (uint8_t)FROM_CODE, __ATOMIC_RELAXED);
    return true;
}

/* getenv is avoided on purpose: we scan `environ` ourselves so that nothing here can ever allocate. */
static const char *env_value(const char *name) {
    size_t n = strlen(name);
    for (char **e = environ; e != NULL && *e != NULL; e++)
        if (strncmp(*e, name, n) == 0 && (*e)[n] == '=')
            return *e + n + 1;
    return NULL;
}

/* ---- lines on stderr, built in a buffer on the stack (nothing here may allocate) ---- */

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

/* "hakmem: warning: NAME=VALUE: WHY; using USED" on stderr, with write(2). */
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

void hak_options_print(void) {
    static const char *const from[] = {"default", "environment", "hak_option_set"};
    char buf[128];
    char *o = buf, *end = buf + sizeof buf - 2;
    put(&o, end, "hakmem: version ");
    put_u64(&o, end, HAKMEM_VERSION_MAJOR);
    put(&o, end, ".");
    put_u64(&o, end, HAKMEM_VERSION_MINOR);
    put(&o, end, ".");
    put_u64(&o, end, HAKMEM_VERSION_PATCH);
    put(&o, end, ", options in effect:\n");
    *o = '\0';
    hak_write_stderr(buf);
    for (int id = 0; id < HAK_OPTION_COUNT; id++) {
        o = buf;
        put(&o, end, "hakmem: option ");
        put(&o, end, defs[id].name);
        put(&o, end, "=");
        uint64_t v = hak_option_value(id);
        if (defs[id].kind == KIND_ON_ERROR)
            put(&o, end, v ? "abort" : "warn");
        else
            put_u64(&o, end, v);
        put(&o, end, " (");
        put(&o, end, from[__atomic_load_n(&sources[id], __ATOMIC_RELAXED)]);
        put(&o, end, ")\n");
        *o = '\0';
        hak_write_stderr(buf);
    }
}

/* ---- the environment: a bad value is reported in one line and replaced, never ignored silently ---- */

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

static void load_number(int id) {
    const char *name = defs[id].name, *v = env_value(name);
    if (v == NULL)
        return;
    bool sizes = defs[id].kind == KIND_SIZE;
    uint64_t n, max = defs[id].max;
    bool clamped;
    if (!parse_number(v, sizes, max, &n, &clamped)) {
        warn_option(name, v, sizes ? "not a size (digits, then k, m, g or t)" : "not a whole number", NULL,
                    hak_option_value(id));
        return;
    }
    if (clamped)
        warn_option(name, v, "too large", NULL, max);
    store(id, n);
    __atomic_store_n(&sources[id], (uint8_t)FROM_ENVIRONMENT, __ATOMIC_RELAXED);
}

/* One of two lists of words; anything else is reported, naming what is expected. */
static void load_choice(int id, const char *const yes[], const char *const no[], const char *expected) {
    const char *name = defs[id].name, *v = env_value(name);
    if (v == NULL)
        return;
    for (unsigned i = 0; yes[i] != NULL; i++)
        if (strcmp(v, yes[i]) == 0) {
            store(id, 1);
            __atomic_store_n(&sources[id], (uint8_t)FROM_ENVIRONMENT, __ATOMIC_RELAXED);
            return;
        }
    for (unsigned i = 0; no[i] != NULL; i++)
        if (strcmp(v, no[i]) == 0) {
            store(id, 0);
            __atomic_store_n(&sources[id], (uint8_t)FROM_ENVIRONMENT, __ATOMIC_RELAXED);
            return;
        }
    warn_option(name, v, expected, hak_option_value(id) ? yes[0] : no[0], 0);
}

void hak_options_load(void) {
    static const char *const abort_words[] = {"abort", NULL}, *const warn_words[] = {"warn", NULL};
    static const char *const on[] = {"1", "yes", "true", "on", NULL};
    static const char *const off[] = {"0", "no", "false", "off", NULL};
    static const char *const switch_expected = "expected 1 or 0 (yes/no, true/false, on/off)";
    load_choice(HAK_OPTION_ON_ERROR, abort_words, warn_words, "expected abort or warn");
    load_choice(HAK_OPTION_SHOW_STATS, on, off, switch_expected);
    load_number(HAK_OPTION_PURGE_DELAY_MS);
    load_number(HAK_OPTION_BIGCACHE_MAX);
    load_number(HAK_OPTION_SUPERSLAB_CACHE);
    load_choice(HAK_OPTION_VERBOSE, on, off, switch_expected);
    if (hak_options.verbose)
        hak_options_print();
}
