/* SPDX-License-Identifier: MIT */
/* Size classes and their span sizes. Every block size is a multiple of 16: steps of 16 B up to 128 B, then
 * four classes per doubling (160, 192, 224, 256, 320, ...) up to HAK_SLAB_MAX_SIZE. The "tiny" classes (up to
 * 8 KiB) have a thread cache; the mid ("pool") classes above them use the same spans and fast paths, in
 * spans of several slabs. A size maps to the smallest class that holds it; sizes up to 1 KiB use one table
 * load, larger ones bit arithmetic. */
#ifndef HAKMEM_TINY_SIZE_CLASS_H
#define HAKMEM_TINY_SIZE_CLASS_H

#include <stddef.h>
#include <stdint.h>

#include "common/compiler.h"
#include "superslab/superslab.h"

#define HAK_TINY_MAX_SIZE ((size_t)8192)       /* largest tiny class */
#define HAK_SLAB_MAX_SIZE ((size_t)256 * 1024) /* largest class served from slabs (pool tops out here) */
#define HAK_LUT_MAX_SIZE ((size_t)1024)        /* sizes up to this map through the table */
#define HAK_MIN_ALIGN ((size_t)16)             /* every block is aligned to its smallest class */

/* 8 classes of 16..128, then 4 per doubling: 128->256 ... 128K->256K is 11 doublings. */
#define HAK_CLASS_COUNT (8 + 4 * 11)
#define HAK_TINY_CLASS_COUNT (8 + 4 * 6) /* classes up to 8 KiB */

extern HAK_HIDDEN const uint8_t hak_class_lut[(HAK_LUT_MAX_SIZE >> 4) + 1];
extern HAK_HIDDEN const uint32_t hak_class_sizes[HAK_CLASS_COUNT];

/* Class for sizes above the table: four classes per doubling. Requires 1024 < size <= HAK_SLAB_MAX_SIZE. */
static inline unsigned hak_size_class_big(size_t size) {
    size_t s = size - 1;
    unsigned bit = 63u - (unsigned)__builtin_clzl(s); /* 2^bit <= s < 2^(bit+1), bit >= 10 */
    unsigned quarter = (unsigned)(s >> (bit - 2)) & 3u;
    /* class of 1024 is index 8 + 4*3 - 1 = 19; 1025..1280 is 20 */
    return 20u + (bit - 10u) * 4u + quarter;
}

/* Class index of a size; valid for size <= HAK_SLAB_MAX_SIZE. Size 0 maps to the 16 B class. */
/* Class of a size up to HAK_LUT_MAX_SIZE: one table load. */
static inline unsigned hak_size_class_lut(size_t size) { return hak_class_lut[(size + 15) >> 4]; }

static inline unsigned hak_size_class(size_t size) {
    if (hak_likely(size <= HAK_LUT_MAX_SIZE))
        return hak_size_class_lut(size);
    return hak_size_class_big(size);
}

static inline size_t hak_class_size(unsigned cls) { return hak_class_sizes[cls]; }

/* Span sizes. A tiny span holds 64 blocks (with 8 blocks of 8 KiB per slab every eighth allocation took the
 * slow path), unless that takes more than half a SuperSlab. A pool (mid-size) span holds 8 blocks (fewer
 * live-but-sparse spans pin less memory), unless that takes more than 256 KiB: then as many blocks as fit in
 * 256 KiB (at least one), in the fewest slabs. Spans of up to 1 MiB left the free slabs too scattered to hold
 * another one, so every few spans took a new SuperSlab. docs/DECISIONS.md has the measurements. */
#define HAK_TINY_SPAN_MIN_BLOCKS 64
#define HAK_TINY_MAX_SLABS 16
#define HAK_POOL_MIN_BLOCKS 8
#define HAK_POOL_MAX_SLABS 4

extern HAK_HIDDEN const uint8_t hak_class_span_slabs[HAK_CLASS_COUNT];

/* Slabs in a span of class cls. */
static inline unsigned hak_span_slabs_for(unsigned cls) { return hak_class_span_slabs[cls]; }

#endif
