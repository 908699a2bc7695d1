/* SPDX-License-Identifier: MIT */
/* Relaxed accessors for fields that one thread writes and others may read (statistics, remote-free checks).
 * On x86-64 and aarch64 they compile to plain loads and stores, but keep the code free of data races. */
#ifndef HAKMEM_COMMON_ATOMIC_H
#define HAKMEM_COMMON_ATOMIC_H

#define hak_load_relaxed(ptr) __atomic_load_n((ptr), __ATOMIC_RELAXED)
#define hak_store_relaxed(ptr, v) __atomic_store_n((ptr), (v), __ATOMIC_RELAXED)
#define hak_load_acquire(ptr) __atomic_load_n((ptr), __ATOMIC_ACQUIRE)
#define hak_store_release(ptr, v) __atomic_store_n((ptr), (v), __ATOMIC_RELEASE)

#endif
