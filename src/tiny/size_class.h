/* Size classes: every block size is a multiple of 16. Steps of 16 B up to 128 B, then four classes per
 * doubling (160, 192, 224, 256, 320, ...) through the slab tiers (tiny up to 8 KiB, pool above it up to
 * HAK_SLAB_MAX_SIZE). A size maps to the smallest class that holds it; sizes up to 1 KiB use one table load.
 */
#ifndef HAKMEM_TINY_SIZE_CLASS_H
#define HAKMEM_TINY_SIZE_CLASS_H

#include <stddef.h>
#include <stdint.h>

#include "common/compiler.h"

#define HAK_TINY_MAX_SIZE ((size_t)8192)       /* largest tiny class */
#define HAK_SLAB_MAX_SIZE ((size_t)256 * 1024) /* largest class served from slabs (pool tops out here) */
#define HAK_LUT_MAX_SIZE ((size_t)1024)        /* sizes up to this map through the table */

/* 8 classes of 16..128, then 4 per doubling: 128->256 ... 128K->256K is 11 doublings. */
#define HAK_CLASS_COUNT (8 + 4 * 11)
#define HAK_TINY_CLASS_COUNT (8 + 4 * 6) /* classes up to 8 KiB */

extern const uint8_t hak_class_lut[(HAK_LUT_MAX_SIZE >> 4) + 1];
extern const uint32_t hak_class_sizes[HAK_CLASS_COUNT];

/* Class for sizes above the table: four classes per doubling. Requires 1024 < size <= HAK_SLAB_MAX_SIZE. */
static inline unsigned hak_size_class_big(size_t size) {
    size_t s = size - 1;
    unsigned bit = 63u - (unsigned)__builtin_clzl(s); /* 2^bit <= s < 2^(bit+1), bit >= 10 */
    unsigned quarter = (unsigned)(s >> (bit - 2)) & 3u;
    /* class of 1024 is index 8 + 4*3 - 1 = 19; 1025..1280 is 20 */
    return 20u + (bit - 10u) * 4u + quarter;
}

/* Class index of a size; valid for size <= HAK_SLAB_MAX_SIZE. Size 0 maps to the 16 B class. */
static inline unsigned hak_size_class(size_t size) {
    if (hak_likely(size <= HAK_LUT_MAX_SIZE))
        return hak_class_lut[(size + 15) >> 4];
    return hak_size_class_big(size);
}

static inline size_t hak_class_size(unsigned cls) { return hak_class_sizes[cls]; }

#endif
