/* SPDX-License-Identifier: MIT */
#include "bigcache/size_table.h"

#include "common/meta.h"

#define TABLE_MIN 16

static size_t slot_of(uint64_t key, size_t cap) {
    return (size_t)((key * 0x9e3779b97f4a7c15ull) >> 32) & (cap - 1);
}

static void place(hak_size_slot_t *slots, size_t cap, uint64_t key, void *head) {
    size_t i = slot_of(key, cap);
    while (slots[i].head != NULL)
        i = (i + 1) & (cap - 1);
    slots[i].key = key;
    slots[i].head = head;
}

static bool resize(hak_size_table_t *t, size_t cap) {
    hak_size_slot_t *slots = hak_meta_alloc(cap * sizeof *slots);
    if (slots == NULL)
        return false;
    for (size_t i = 0; i < t->cap; i++)
        if (t->slots[i].head != NULL)
            place(slots, cap, t->slots[i].key, t->slots[i].head);
    if (t->slots != NULL)
        hak_meta_free(t->slots, t->cap * sizeof *t->slots);
    t->slots = slots;
    t->cap = cap;
    return true;
}

hak_size_slot_t *hak_size_table_find(hak_size_table_t *t, uint64_t key) {
    if (t->cap == 0)
        return NULL;
    for (size_t i = slot_of(key, t->cap);; i = (i + 1) & (t->cap - 1)) {
        if (t->slots[i].head == NULL)
            return NULL;
        if (t->slots[i].key == key)
            return &t->slots[i];
    }
}

bool hak_size_table_add(hak_size_table_t *t, uint64_t key, void *head) {
    if ((t->used + 1) * 4 > t->cap * 3 && !resize(t, t->cap ? t->cap * 2 : TABLE_MIN))
        return false;
    place(t->slots, t->cap, key, head);
    t->used++;
    return true;
}

/* Open addressing: the rest of the probe run is placed again, so no lookup stops at the hole. */
void hak_size_table_remove(hak_size_table_t *t, hak_size_slot_t *slot) {
    size_t i = (size_t)(slot - t->slots);
    t->slots[i].head = NULL;
    t->used--;
    for (size_t j = (i + 1) & (t->cap - 1); t->slots[j].head != NULL; j = (j + 1) & (t->cap - 1)) {
        hak_size_slot_t moved = t->slots[j];
        t->slots[j].head = NULL;
        place(t->slots, t->cap, moved.key, moved.head);
    }
    if (t->cap > TABLE_MIN && t->used < t->cap / 8)
        resize(t, t->cap / 2); /* on failure the table stays larger: still correct */
}
