/* SPDX-License-Identifier: MIT */
/* One intrusive doubly linked list for all of hakmem's metadata lists (spans with free blocks, SuperSlabs of
 * a thread heap, abandoned and cached SuperSlabs, thread heaps, large blocks, BigCache entries).
 *
 * A node is embedded in the listed object, so linking never allocates; hak_list_entry gets the object back.
 * A list is its two ends and is empty when both are NULL, so zeroed metadata needs no initialisation. The
 * list itself is not thread-safe: each list's declaration names the lock that protects it. */
#ifndef HAKMEM_COMMON_LIST_H
#define HAKMEM_COMMON_LIST_H

#include <stdbool.h>
#include <stddef.h>

typedef struct hak_list_node_s {
    struct hak_list_node_s *next, *prev;
} hak_list_node_t;

typedef struct hak_list_s {
    hak_list_node_t *first, *last;
} hak_list_t;

/* The object of type `type` whose member `member` is the node n (n must not be NULL). */
#define hak_list_entry(n, type, member) ((type *)(void *)((char *)(n)-offsetof(type, member)))
/* The same, or NULL for a NULL node. */
#define hak_list_entry_or_null(n, type, member) ((n) != NULL ? hak_list_entry(n, type, member) : (type *)NULL)

static inline bool hak_list_is_empty(const hak_list_t *l) { return l->first == NULL; }

/* A node that is on no list. */
static inline void hak_list_node_clear(hak_list_node_t *n) { n->next = n->prev = NULL; }

static inline void hak_list_push_front(hak_list_t *l, hak_list_node_t *n) {
    n->prev = NULL;
    n->next = l->first;
    if (n->next != NULL)
        n->next->prev = n;
    else
        l->last = n;
    l->first = n;
}

static inline void hak_list_push_back(hak_list_t *l, hak_list_node_t *n) {
    n->next = NULL;
    n->prev = l->last;
    if (n->prev != NULL)
        n->prev->next = n;
    else
        l->first = n;
    l->last = n;
}

static inline void hak_list_remove(hak_list_t *l, hak_list_node_t *n) {
    if (n->prev != NULL)
        n->prev->next = n->next;
    else
        l->first = n->next;
    if (n->next != NULL)
        n->next->prev = n->prev;
    else
        l->last = n->prev;
    n->next = n->prev = NULL;
}

/* Removes and returns the first node, or NULL. */
static inline hak_list_node_t *hak_list_pop_front(hak_list_t *l) {
    hak_list_node_t *n = l->first;
    if (n != NULL)
        hak_list_remove(l, n);
    return n;
}

/* Iterates the nodes of l; the loop body may remove (or free) the current node `n`. */
#define hak_list_for_each_safe(n, next_, l)                                                                  \
    for (hak_list_node_t *n = (l)->first, *next_ = n != NULL ? n->next : NULL; n != NULL;                    \
         n = next_, next_ = n != NULL ? n->next : NULL)

#endif
