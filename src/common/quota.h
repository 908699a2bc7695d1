/* Quota: the memory one heap may hold from the OS. The heap embeds one and hands a pointer to every tier
 * below it, so spans and large blocks are charged without the tiers knowing what a heap is. Charging happens
 * when a span or a large mapping is taken, never on the fast paths. */
#ifndef HAKMEM_COMMON_QUOTA_H
#define HAKMEM_COMMON_QUOTA_H

#include <stdbool.h>
#include <stddef.h>

typedef struct hak_quota_s {
    size_t held;  /* bytes charged (atomic) */
    size_t limit; /* 0 = unlimited; set before the quota is shared */
} hak_quota_t;

/* Charges bytes; false (nothing charged) if that would pass the limit. */
static inline bool hak_quota_charge(hak_quota_t *q, size_t bytes) {
    size_t now = __atomic_add_fetch(&q->held, bytes, __ATOMIC_RELAXED);
    if (q->limit != 0 && now > q->limit) {
        __atomic_sub_fetch(&q->held, bytes, __ATOMIC_RELAXED);
        return false;
    }
    return true;
}

static inline void hak_quota_uncharge(hak_quota_t *q, size_t bytes) {
    __atomic_sub_fetch(&q->held, bytes, __ATOMIC_RELAXED);
}

static inline size_t hak_quota_held(const hak_quota_t *q) {
    return __atomic_load_n(&q->held, __ATOMIC_RELAXED);
}

#endif
