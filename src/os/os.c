/* SPDX-License-Identifier: MIT */
#include "os/os.h"

#include <errno.h>
#include <sys/mman.h>
#include <time.h>

static hak_os_counts_t counts;

static void count(uint64_t *c) { __atomic_fetch_add(c, 1, __ATOMIC_RELAXED); }

void hak_os_counts(hak_os_counts_t *out) {
    out->mmap = __atomic_load_n(&counts.mmap, __ATOMIC_RELAXED);
    out->munmap = __atomic_load_n(&counts.munmap, __ATOMIC_RELAXED);
    out->mremap = __atomic_load_n(&counts.mremap, __ATOMIC_RELAXED);
    out->madvise = __atomic_load_n(&counts.madvise, __ATOMIC_RELAXED);
}

/* No MAP_NORESERVE: the kernel's overcommit policy then judges every mapping as it judges glibc's, so a
 * request it would refuse (64 TiB on a 24 GiB machine) fails here with ENOMEM instead of succeeding and
 * getting the program killed later by the OOM killer. */
void *hak_os_map(size_t size) {
    count(&counts.mmap);
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

void *hak_os_map_aligned(size_t size, size_t align) {
    if (align <= HAK_OS_PAGE)
        return hak_os_map(size);
    /* Try a plain mapping first: the kernel often hands out aligned addresses after earlier aligned ones. */
    void *p = hak_os_map(size);
    if (p == NULL)
        return NULL;
    if (((uintptr_t)p & (align - 1)) == 0)
        return p;
    hak_os_unmap(p, size);
    /* The range was free a moment ago: ask for the aligned address just below it (no over-mapping, which
     * can fail under an address-space limit where the exact size would not). */
    uintptr_t hint = ((uintptr_t)p & ~(uintptr_t)(align - 1));
    if (hint != 0) {
        count(&counts.mmap);
        void *q = mmap((void *)hint, size, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
        if (q == (void *)hint)
            return q;
        if (q != MAP_FAILED)
            hak_os_unmap(q, size); /* an old kernel ignored the flag and placed it elsewhere */
    }
    size_t over = size + align;
    if (over < size) {
        errno = ENOMEM;
        return NULL;
    }
    uint8_t *raw = hak_os_map(over);
    if (raw == NULL)
        return NULL;
    uint8_t *aligned = (uint8_t *)(((uintptr_t)raw + align - 1) & ~(uintptr_t)(align - 1));
    size_t head = (size_t)(aligned - raw);
    size_t tail = over - head - size;
    if (head)
        hak_os_unmap(raw, head);
    if (tail)
        hak_os_unmap(aligned + size, tail);
    return aligned;
}

bool hak_os_map_at(void *addr, size_t size) {
    count(&counts.mmap);
    void *q =
        mmap(addr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    if (q == addr)
        return true;
    if (q != MAP_FAILED) { /* an old kernel took the address as a hint and put it elsewhere */
        count(&counts.munmap);
        munmap(q, size);
    }
    return false;
}

void hak_os_unmap(void *p, size_t size) {
    if (p != NULL && size != 0) {
        count(&counts.munmap);
        munmap(p, size);
    }
}

bool hak_os_purge(void *p, size_t size) {
    if (size == 0)
        return true;
    count(&counts.madvise);
    return madvise(p, size, MADV_DONTNEED) == 0;
}

bool hak_os_resize_in_place(void *p, size_t old_size, size_t new_size) {
    if (new_size < old_size) {
        hak_os_unmap((uint8_t *)p + new_size, old_size - new_size);
        return true;
    }
    /* mremap keeps one kernel mapping (which can still be moved later); a range made of several mappings
     * (the BigCache merges neighbours) cannot be resized by mremap, but it can be extended by a new one. */
    count(&counts.mremap);
    if (mremap(p, old_size, new_size, 0) != MAP_FAILED)
        return true;
    uint8_t *end = (uint8_t *)p + old_size;
    size_t extra = new_size - old_size;
    count(&counts.mmap);
    void *q =
        mmap(end, extra, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    if (q == (void *)end)
        return true;
    if (q != MAP_FAILED)
        hak_os_unmap(q, extra); /* an old kernel took the address as a hint and put it elsewhere */
    return false;
}

void *hak_os_move(void *p, size_t old_size, void *dst, size_t new_size) {
    count(&counts.mremap);
    void *q = mremap(p, old_size, new_size, MREMAP_MAYMOVE | MREMAP_FIXED, dst);
    return q == MAP_FAILED ? NULL : q;
}

uint64_t hak_os_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts); /* a few ms of resolution is plenty for purge delays */
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}
