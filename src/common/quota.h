/* SPDX-License-Identifier: MIT */
/* Quota: the memory one heap may hold from the OS. The heap embeds one and hands a pointer to every tier
 * below it, so spans and large blocks are charged without the tiers knowing what a heap is. Charging happens
 * when a span or a large mapping is taken, never on the fast paths.
 *
 * This is also the one place that knows the high-water marks of held memory: each quota keeps its peak, and
 * every charge also goes to the process-wide total (hak_quota_all), which keeps the process's peak. Both are
 * relaxed atomic maxima, updated only when a charge raises them. */
#ifndef HAKMEM_COMMON_QUOTA_H
#define HAKMEM_COMMON_QUOTA_H

#include <stdbool.h>
#include <stddef.h>

#include "common/compiler.h"

typedef struct hak_quota_s {
    size_t held;  /* bytes charged (atomic) */
    size_t peak;  /* highest value `held` reached (atomic) */
    size_t limit; /* 0 = unlimited; set before the quota is shared */
} hak_quota_t;

/* Bytes charged to every heap's quota together, and their peak (common/quota.c; its limit is unused). */
extern HAK_HIDDEN hak_quota_t hak_quota_all;

static inline void hak_quota_raise_peak(size_t *peak, size_t now) {
    size_t p = __atomic_load_n(peak, __ATOMIC_RELAXED);
    while (now > p && !__atomic_compare_exchange_n(peak, &p, now, true, __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {
    }
}

/* Charges bytes; false (nothing charged) if that would pass the limit. */
/* Test hook, called when a charge is refused (tests define it to let another thread charge meanwhile). */
void hak_test_hook_quota_refused(void);

/* With a limit, a compare-and-swap adds only what fits: adding first and taking back a refused charge let
 * concurrent charges that fit fail while the refused one was counted. */
static inline bool hak_quota_charge(hak_quota_t *q, size_t bytes) {
    size_t now;
    if (q->limit == 0) {
        now = __atomic_add_fetch(&q->held, bytes, __ATOMIC_RELAXED);
    } else {
        size_t held = __atomic_load_n(&q->held, __ATOMIC_RELAXED);
        do {
            if (bytes > q->limit || held > q->limit - bytes) {
                hak_test_hook_quota_refused();
                return false;
            }
            now = held + bytes;
        } while (
            !__atomic_compare_exchange_n(&q->held, &held, now, true, __ATOMIC_RELAXED, __ATOMIC_RELAXED));
    }
    hak_quota_raise_peak(&q->peak, now);
    hak_quota_raise_peak(&hak_quota_all.peak,
                         __atomic_add_fetch(&hak_quota_all.held, bytes, __ATOMIC_RELAXED));
    return true;
}

static inline void hak_quota_uncharge(hak_quota_t *q, size_t bytes) {
    __atomic_sub_fetch(&q->held, bytes, __ATOMIC_RELAXED);
    __atomic_sub_fetch(&hak_quota_all.held, bytes, __ATOMIC_RELAXED);
}

/* Heap destroy: whatever is still charged (spans given back without visiting them) leaves the process total.
 */
static inline void hak_quota_drop(hak_quota_t *q) {
    hak_quota_uncharge(q, __atomic_load_n(&q->held, __ATOMIC_RELAXED));
}

static inline size_t hak_quota_held(const hak_quota_t *q) {
    return __atomic_load_n(&q->held, __ATOMIC_RELAXED);
}

static inline size_t hak_quota_peak(const hak_quota_t *q) {
    return __atomic_load_n(&q->peak, __ATOMIC_RELAXED);
}

#endif
