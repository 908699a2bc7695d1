/* SPDX-License-Identifier: MIT */
/* cfrac: bignum churn in the kind of cfrac (continued-fraction factoring, a classic allocation benchmark):
 * many small, short-lived, variable-size blocks and reallocs.
 *
 * A pool of --live numbers (arrays of 32-bit limbs behind a length word). A step takes two numbers, makes
 * their sum in a block grown by realloc as carries come, their product in a new block, frees the sum,
 * replaces one of the two by the product, and if that has more than --limbs limbs, cuts it to a random
 * shorter length with a shrinking realloc. So block sizes wander between 8 B and about 8 * --limbs B, most
 * blocks live for a few steps, and every step does about 2 mallocs, 2 reallocs and 2 frees.
 *
 * Example: cfrac --steps 1M
 */
#include "bench.h"

typedef struct {
    uint32_t n; /* limbs in use */
    uint32_t limb[];
} num_t;

static num_t *num_new(uint32_t n) {
    num_t *x = bench_malloc(sizeof *x + n * sizeof x->limb[0]);
    x->n = n;
    return x;
}

static num_t *num_resize(num_t *x, uint32_t n) {
    num_t *y = realloc(x, sizeof *x + n * sizeof x->limb[0]);
    if (!y)
        bench_die("realloc failed");
    y->n = n;
    return y;
}

/* a + b, growing the result one limb at a time as the carry needs it (the realloc churn of a bignum). */
static num_t *num_add(const num_t *a, const num_t *b) {
    const num_t *lo = a->n < b->n ? a : b, *hi = a->n < b->n ? b : a;
    num_t *s = num_new(hi->n);
    uint64_t carry = 0;
    for (uint32_t i = 0; i < hi->n; i++) {
        carry += (uint64_t)hi->limb[i] + (i < lo->n ? lo->limb[i] : 0);
        s->limb[i] = (uint32_t)carry;
        carry >>= 32;
    }
    if (carry) {
        s = num_resize(s, s->n + 1);
        s->limb[s->n - 1] = (uint32_t)carry;
    }
    return s;
}

static num_t *num_mul(const num_t *a, const num_t *b) {
    num_t *p = num_new(a->n + b->n);
    memset(p->limb, 0, p->n * sizeof p->limb[0]);
    for (uint32_t i = 0; i < a->n; i++) {
        uint64_t carry = 0;
        for (uint32_t j = 0; j < b->n; j++) {
            carry += (uint64_t)a->limb[i] * b->limb[j] + p->limb[i + j];
            p->limb[i + j] = (uint32_t)carry;
            carry >>= 32;
        }
        p->limb[i + b->n] = (uint32_t)carry;
    }
    return p;
}

int main(int argc, char **argv) {
    uint64_t steps = 1000000, live = 64, limbs = 12, seed = 42;
    const bench_opt_t opts[] = {
        {"--steps", "steps (add, multiply, replace, cut)", NULL, &steps},
        {"--live", "numbers in the pool", NULL, &live},
        {"--limbs", "a product longer than this many 32-bit limbs is cut", NULL, &limbs},
        {"--seed", "RNG seed", NULL, &seed},
    };
    bench_parse(argc, argv, "cfrac-style bignum churn (small variable blocks, realloc)", opts,
                sizeof opts / sizeof opts[0]);
    if (!steps || live < 2 || limbs < 2 || limbs > 1000)
        bench_die("bad parameters");

    bench_rng_t rng = bench_rng(seed, 0);
    num_t **pool = bench_malloc(live * sizeof *pool);
    for (uint64_t k = 0; k < live; k++) {
        pool[k] = num_new((uint32_t)bench_range(&rng, 1, limbs / 2));
        for (uint32_t i = 0; i < pool[k]->n; i++)
            pool[k]->limb[i] = (uint32_t)bench_next(&rng) | 1;
    }
    uint64_t checksum = 0;
    double t0 = bench_now();
    for (uint64_t s = 0; s < steps; s++) {
        uint64_t ia = bench_range(&rng, 0, live - 1), ib = bench_range(&rng, 0, live - 1);
        num_t *sum = num_add(pool[ia], pool[ib]);
        num_t *prod = num_mul(sum, pool[ib]);
        checksum += sum->limb[0];
        free(sum);
        free(pool[ia]);
        if (prod->n > limbs) {
            prod = num_resize(prod, (uint32_t)bench_range(&rng, 1, limbs / 2));
            prod->limb[0] |= 1; /* keep numbers odd so products do not decay to zero */
        }
        pool[ia] = prod;
    }
    double secs = bench_now() - t0;
    for (uint64_t k = 0; k < live; k++) {
        checksum += pool[k]->limb[0];
        free(pool[k]);
    }
    free(pool);
    bench_result("cfrac", steps, secs, checksum, NULL);
    return 0;
}
