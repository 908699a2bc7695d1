/* SPDX-License-Identifier: MIT */
#include "common/error.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/options.h"

void hak_write_stderr(const char *msg) {
    size_t n = strlen(msg);
    while (n > 0) {
        ssize_t w = write(2, msg, n);
        if (w <= 0)
            return;
        msg += w;
        n -= (size_t)w;
    }
}

static char *format_hex(char *out, uintptr_t v) {
    static const char digits[] = "0123456789abcdef";
    char tmp[2 * sizeof v];
    int n = 0;
    do {
        tmp[n++] = digits[v & 15];
        v >>= 4;
    } while (v != 0);
    *out++ = '0';
    *out++ = 'x';
    while (n > 0)
        *out++ = tmp[--n];
    *out = '\0';
    return out;
}

void hak_report_invalid(const char *what, const void *p) {
    char buf[256];
    char *o = buf;
    const char *prefix = "hakmem: error: ";
    size_t lp = strlen(prefix), lw = strlen(what);
    if (lw > 160)
        lw = 160;
    memcpy(o, prefix, lp);
    o += lp;
    memcpy(o, what, lw);
    o += lw;
    memcpy(o, ": ", 2);
    o += 2;
    o = format_hex(o, (uintptr_t)p);
    const char *tail =
        hak_options.on_error_abort ? " (aborting; set HAKMEM_ON_ERROR=warn to continue)\n" : " (ignored)\n";
    size_t lt = strlen(tail);
    memcpy(o, tail, lt + 1);
    hak_write_stderr(buf);
    if (hak_options.on_error_abort)
        abort();
}
