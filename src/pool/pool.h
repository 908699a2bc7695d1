/* Pool: mid sizes (above the tiny classes, up to HAK_SLAB_MAX_SIZE) use the same slab machinery as tiny
 * blocks, but in spans of several 64 KiB slabs so that each span holds a useful number of blocks. The same
 * rule sizes the spans of the larger tiny classes (a 64 KiB slab holds only 8 blocks of 8 KiB, which sends
 * every eighth allocation down the slow path). */
#ifndef HAKMEM_POOL_POOL_H
#define HAKMEM_POOL_POOL_H

#include "superslab/superslab.h"
#include "tiny/size_class.h"

#define HAK_TINY_SPAN_MIN_BLOCKS 64 /* a tiny span holds this many blocks ... */
#define HAK_TINY_MAX_SLABS 16       /* ... unless that would take more than half a SuperSlab */
/* A pool span holds 8 blocks (fewer live-but-sparse spans pin less memory), unless that takes more than
 * 256 KiB: then as many blocks as fit in 256 KiB (at least one), in the fewest slabs. Spans of up to 1 MiB
 * left the free slabs too scattered to hold another one, so every few spans took a new SuperSlab and purged
 * the scattered slabs, only to fault them in again. */
#define HAK_POOL_MIN_BLOCKS 8
#define HAK_POOL_MAX_SLABS 4

extern const uint8_t hak_class_span_slabs[HAK_CLASS_COUNT];

static inline unsigned hak_span_slabs_for(unsigned cls) { return hak_class_span_slabs[cls]; }

#endif
