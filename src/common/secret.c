/* SPDX-License-Identifier: MIT */
#include "common/secret.h"

#include <sys/auxv.h>
#include <sys/random.h>
#include <time.h>

/* Nonzero before initialisation, so that nothing ever runs with a zero key (every list is created after
 * hak_init, which calls hak_secret_init first). */
hak_secret_t hak_secret = {0x85ebca6bc2b2ae35u, 0x27d4eb2f165667b1u, 0x9e3779b97f4a7c15u};
uintptr_t hak_link_key = 0x5f3759df9e3779b9u;
uintptr_t hak_check_key = 0xc2b2ae3d27d4eb4fu;

static uint64_t splitmix(uint64_t *s) {
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

void hak_secret_init(void) {
    uint64_t k[4];
    if (getrandom(k, sizeof k, GRND_NONBLOCK) != (ssize_t)sizeof k) {
        /* No entropy pool yet (early boot) or no syscall: the 16 random bytes the kernel gave this process,
         * stretched with the clock and an address. */
        const uint64_t *r = (const uint64_t *)getauxval(AT_RANDOM);
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        uint64_t seed = (r != NULL ? r[0] ^ (r[1] << 1) : 0) ^ (uint64_t)ts.tv_nsec ^
                        ((uint64_t)ts.tv_sec << 32) ^ (uint64_t)(uintptr_t)&seed;
        for (int i = 0; i < 4; i++)
            k[i] = splitmix(&seed);
    }
    hak_link_key = (uintptr_t)k[0] | 1u; /* odd: a NULL link never encodes to zero */
    hak_check_key = (uintptr_t)(k[1] ^ (k[3] << 17 | k[3] >> 47));
    hak_secret.check = (uintptr_t)k[1];
    hak_secret.header = (uintptr_t)k[2];
    hak_secret.heap = (uintptr_t)k[3];
}
