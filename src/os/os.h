/* SPDX-License-Identifier: MIT */
/* OS layer: the only place that talks to mmap/munmap/madvise/mremap. Never calls malloc. */
#ifndef HAKMEM_OS_OS_H
#define HAKMEM_OS_OS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HAK_OS_PAGE ((size_t)4096)

static inline size_t hak_align_up(size_t n, size_t a) { return (n + a - 1) & ~(a - 1); }
static inline bool hak_is_pow2(size_t n) { return n != 0 && (n & (n - 1)) == 0; }

/* Read-write anonymous memory, not prefaulted; NULL on failure (errno set by the kernel). */
void *hak_os_map(size_t size);
/* Like hak_os_map but the result is aligned to `align` (a power of two >= page). */
void *hak_os_map_aligned(size_t size, size_t align);
void hak_os_unmap(void *p, size_t size);
/* Give the pages back to the OS; the range stays mapped and reads back as zero. False if the kernel refused
 * (the pages then keep their contents). */
bool hak_os_purge(void *p, size_t size);
/* Maps size bytes exactly at addr (page aligned), never over an existing mapping; false if any of it is
 * taken.
 */
bool hak_os_map_at(void *addr, size_t size);
/* Resize a mapping in place; returns false if the space after it is taken. */
bool hak_os_resize_in_place(void *p, size_t old_size, size_t new_size);
/* Move a mapping to `dst` (a reserved, suitably aligned range of new_size bytes) without copying. Fails
 * (NULL) for a range made of several kernel mappings; dst is then unmapped already (the kernel clears the
 * target first), so the caller must not unmap it again: another thread may own that range by now. */
void *hak_os_move(void *p, size_t old_size, void *dst, size_t new_size);
/* Monotonic clock in milliseconds (vDSO, no allocation). */
uint64_t hak_os_now_ms(void);
/* Something stamped `since` is at least `delay` old at `now`; a stamp later than `now` (another thread read
 * the clock after this one) is young, never a huge unsigned age. */
static inline bool hak_older_than(uint64_t now, uint64_t since, uint64_t delay) {
    return now >= since && now - since >= delay;
}

/* System calls made so far, process-wide (relaxed atomic counts: each costs far more than its count). */
typedef struct hak_os_counts_s {
    uint64_t mmap, munmap, mremap, madvise;
} hak_os_counts_t;
void hak_os_counts(hak_os_counts_t *out);

#endif
