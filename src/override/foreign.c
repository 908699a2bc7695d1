/* SPDX-License-Identifier: MIT */
/* Foreign pointers in the override (see foreign.h). */
#include "override/foreign.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

typedef size_t (*usable_fn)(void *);

/* Resolved on first use; racing threads resolve the same value, so a relaxed store/load suffices. */
static usable_fn glibc_usable;
static int glibc_usable_done;

size_t hak_foreign_usable_size(void *p) {
    usable_fn fn;
    if (__atomic_load_n(&glibc_usable_done, __ATOMIC_ACQUIRE)) {
        fn = __atomic_load_n(&glibc_usable, __ATOMIC_RELAXED);
    } else {
        /* dlsym may call malloc (it cannot reach this function again: it allocates, never sizes foreign
         * blocks). Refuse to find our own definition, which would recurse forever. */
        fn = (usable_fn)dlsym(RTLD_NEXT, "malloc_usable_size");
        if (fn == (usable_fn)malloc_usable_size)
            fn = NULL;
        __atomic_store_n(&glibc_usable, fn, __ATOMIC_RELAXED);
        __atomic_store_n(&glibc_usable_done, 1, __ATOMIC_RELEASE);
    }
    return fn != NULL ? fn(p) : 0;
}

/* ---- is it glibc's? ---- */

/* Copies n bytes from addr without faulting: false if any of them is not readable. process_vm_readv on the
 * process itself returns EFAULT for an unreadable range instead of raising SIGSEGV. */
static bool safe_read(uintptr_t addr, void *out, size_t n) {
    struct iovec local = {out, n}, remote = {(void *)addr, n};
    ssize_t got = syscall(SYS_process_vm_readv, (long)getpid(), &local, 1L, &remote, 1L, 0L);
    if (got == (ssize_t)n)
        return true;
    if (got < 0 && (errno == ENOSYS || errno == EPERM)) {
        /* Not allowed here: fall back to "is the page mapped" (mincore), which cannot see PROT_NONE. */
        unsigned char vec;
        uintptr_t page = addr & ~(uintptr_t)4095;
        if (mincore((void *)page, (addr + n - page + 4095) & ~(uintptr_t)4095, &vec) != 0)
            return false;
        for (size_t i = 0; i < n; i++)
            ((unsigned char *)out)[i] = ((const volatile unsigned char *)addr)[i];
        return true;
    }
    return false;
}

/* The start of the brk heap (field 47 of /proc/self/stat, "start_brk"), read once; 0 if unknown. */
static uintptr_t brk_start(void) {
    static uintptr_t cached;
    static int done;
    if (__atomic_load_n(&done, __ATOMIC_ACQUIRE))
        return __atomic_load_n(&cached, __ATOMIC_RELAXED);
    uintptr_t start = 0;
    int fd = open("/proc/self/stat", O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        char buf[1024];
        ssize_t n = read(fd, buf, sizeof buf - 1);
        close(fd);
        if (n > 0) {
            buf[n] = '\0';
            /* fields after the command name (which may hold spaces) are counted from its closing ')' */
            char *c = buf + n;
            while (c > buf && *c != ')')
                c--;
            for (int field = 2; *c != '\0' && field < 47; c++)
                if (*c == ' ')
                    field++;
            for (; *c >= '0' && *c <= '9'; c++)
                start = start * 10 + (uintptr_t)(*c - '0');
        }
    }
    __atomic_store_n(&cached, start, __ATOMIC_RELAXED);
    __atomic_store_n(&done, 1, __ATOMIC_RELEASE);
    return start;
}

#define GLIBC_PREV_INUSE 1u
#define GLIBC_IS_MMAPPED 2u
#define GLIBC_NON_MAIN_ARENA 4u
#define GLIBC_HEAP_MAX ((uintptr_t)64 << 20) /* HEAP_MAX_SIZE of non-main arenas on 64-bit */

bool hak_foreign_is_glibc(const void *ptr) {
    uintptr_t p = (uintptr_t)ptr;
    size_t size_field;
    if ((p & 15) != 0 || p < 4096 || !safe_read(p - sizeof size_field, &size_field, sizeof size_field))
        return false;
    size_t size = size_field & ~(size_t)7;
    uintptr_t chunk = p - 2 * sizeof(size_t);
    if (size < 4 * sizeof(size_t) || (size & 15) != 0)
        return false;
    if (size_field & GLIBC_IS_MMAPPED) { /* page-granular; prev_size holds the offset of an aligned chunk */
        size_t prev_size;
        return (size & 4095) == 0 && safe_read(chunk, &prev_size, sizeof prev_size) &&
               ((chunk - prev_size) & 4095) == 0;
    }
    if (size_field & GLIBC_NON_MAIN_ARENA) {
        uintptr_t arena; /* heap_info.ar_ptr, first word of the heap the chunk lies in */
        return safe_read(chunk & ~(GLIBC_HEAP_MAX - 1), &arena, sizeof arena) && arena != 0;
    }
    uintptr_t lo = brk_start(), hi = (uintptr_t)sbrk(0);
    size_t next_size;
    if (lo == 0 || chunk < lo || chunk + size > hi || chunk + size < chunk)
        return false;
    /* the next chunk says this one is in use */
    return safe_read(chunk + size + sizeof(size_t), &next_size, sizeof next_size) &&
           (next_size & GLIBC_PREV_INUSE) != 0;
}
