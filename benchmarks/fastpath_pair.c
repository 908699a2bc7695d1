/* SPDX-License-Identifier: MIT */
/* fastpath_pair: the malloc+free pair of 16..511 B blocks, for counting instructions with callgrind.
 *
 * Run it twice with different --ops under `valgrind --tool=callgrind` and divide the difference of the total
 * instruction counts by the difference of the operation counts: that is the cost of one iteration (a pair
 * plus about 8 instructions of loop), free of start-up costs. benchmarks/fastpath_instructions.sh does this
 * for every allocator installed. 64 blocks stay live so that no size class is entirely empty.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv) {
    long ops = 100000;
    if (argc == 3 && strcmp(argv[1], "--ops") == 0)
        ops = atol(argv[2]);
    void *keep[64];
    for (int i = 0; i < 64; i++)
        keep[i] = malloc(16 + (size_t)i * 7);
    for (long i = 0; i < ops; i++) {
        size_t size = 16 + (size_t)(i * 37) % 496;
        void *p = malloc(size);
        __asm__ volatile("" : : "r"(p) : "memory"); /* keep the pair from being optimised away */
        free(p);
    }
    for (int i = 0; i < 64; i++)
        free(keep[i]);
    return 0;
}
