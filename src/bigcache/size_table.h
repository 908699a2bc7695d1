/* SPDX-License-Identifier: MIT */
/* The BigCache's index: a hash table from a size key (a chunk count) to the head of a chain of cached
 * entries. Open addressing with linear probing and Fibonacci (multiplicative) hashing; it grows at 3/4 load
 * from 16 slots and shrinks below 1/8, so its size follows its content. Slots come from the metadata
 * allocator. Not thread-safe: the BigCache's lock covers it. */
#ifndef HAKMEM_BIGCACHE_SIZE_TABLE_H
#define HAKMEM_BIGCACHE_SIZE_TABLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct hak_size_slot_s {
    uint64_t key;
    void *head; /* NULL = empty slot */
} hak_size_slot_t;

typedef struct hak_size_table_s {
    hak_size_slot_t *slots;
    size_t cap, used; /* used = slots holding a chain */
} hak_size_table_t;

/* The slot of key (its chain head is slot->head), or NULL if key has no chain. */
hak_size_slot_t *hak_size_table_find(hak_size_table_t *t, uint64_t key);
/* Adds key, absent so far, with chain head `head`; false if the table could not grow (metadata memory). */
bool hak_size_table_add(hak_size_table_t *t, uint64_t key, void *head);
/* Removes the slot's key (its chain became empty); the slot pointer is invalid afterwards. */
void hak_size_table_remove(hak_size_table_t *t, hak_size_slot_t *slot);

#endif
