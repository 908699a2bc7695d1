/* SPDX-License-Identifier: MIT */
/* Span supply for thread heaps (tiny-internal): new spans by best fit over the owned SuperSlabs, then from
 * adopted or new SuperSlabs; empty spans given back; remote frees collected where the SuperSlabs flag them.
 */
#ifndef HAKMEM_TINY_SPAN_H
#define HAKMEM_TINY_SPAN_H

#include <stdbool.h>

#include "tiny/theap.h"

/* A new span for class cls, owned by th. NULL with errno = ENOMEM when out of memory or over the quota. */
hak_span_t *hak_theap_span_new(hak_theap_t *th, unsigned cls);
/* Gives an empty span that is not its class's current one back to its SuperSlab (taking it off the class
 * list), and the SuperSlab back to the global cache when it becomes empty. True: ss was released. */
bool hak_theap_span_free(hak_theap_t *th, hak_superslab_t *ss, hak_span_t *s);
/* Settles one span after its owner changed or remote frees arrived: collects remote frees, retires it when
 * empty, and puts it on the right list. True: the SuperSlab itself was released. */
bool hak_theap_span_settle(hak_theap_t *th, hak_superslab_t *ss, hak_span_t *s);
/* Collects remote frees flagged in th's SuperSlabs; full spans that got blocks back become available. */
void hak_theap_collect_remote(hak_theap_t *th);

static inline hak_superslab_t *hak_ss_of_link(hak_list_node_t *n) {
    return hak_list_entry_or_null(n, hak_superslab_t, link);
}

#endif
