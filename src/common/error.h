/* SPDX-License-Identifier: MIT */
/* Error reports for misuse (foreign or interior pointers, double frees): written to stderr with write(2),
 * naming the pointer, then abort unless HAKMEM_ON_ERROR=warn. */
#ifndef HAKMEM_COMMON_ERROR_H
#define HAKMEM_COMMON_ERROR_H

#include "common/compiler.h"

hak_cold void hak_report_invalid(const char *what, const void *p);
/* Writes a message made of parts (NULL-terminated list of strings) to stderr. */
void hak_write_stderr(const char *msg);

#endif
