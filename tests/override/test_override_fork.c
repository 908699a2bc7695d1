/* SPDX-License-Identifier: MIT */
/* fork() under the override: worker threads allocate and free (small, mid and large blocks, handing blocks to
 * each other through shared slots) while the main thread forks again and again. Every child checks the blocks
 * it inherited, frees some of them (including blocks of threads that do not exist in the child), allocates,
 * starts threads of its own that allocate and free, and exits 0 through exit() (so atexit handlers and
 * destructors run). Plain malloc/free: run it under LD_PRELOAD=libhakmem_override.so.
 *
 * usage: test_override_fork [forks] [workers]     exits 0 when every child exited 0 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define SLOTS 256
#define HDR 16

static _Atomic(unsigned char *) slots[SLOTS];
static atomic_int stop;

static uint64_t rnd(uint64_t *s) {
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static size_t pick_size(uint64_t *s) {
    uint64_t r = rnd(s);
    switch (r % 16) {
    case 0: return (size_t)(r >> 8) % (3u << 20) + 300000; /* large */
    case 1: case 2: return (size_t)(r >> 8) % 200000 + 8192; /* pool */
    default: return (size_t)(r >> 8) % 1024 + 1;             /* tiny */
    }
}

/* A block carries its size and a byte pattern derived from it: checkable by any process that inherits it. */
static unsigned char *make_block(size_t n) {
    if (n < HDR)
        n = HDR;
    unsigned char *p = malloc(n);
    if (p == NULL) {
        fprintf(stderr, "malloc(%zu) failed\n", n);
        _exit(3);
    }
    memcpy(p, &n, sizeof n);
    size_t lim = n - 1 < 4096 ? n - 1 : 4096;
    for (size_t i = HDR; i < lim; i++)
        p[i] = (unsigned char)(n + i);
    p[n - 1] = (unsigned char)(n * 3);
    return p;
}

static int check_block(const unsigned char *p) {
    size_t n;
    memcpy(&n, p, sizeof n);
    size_t lim = n - 1 < 4096 ? n - 1 : 4096;
    for (size_t i = HDR; i < lim; i++)
        if (p[i] != (unsigned char)(n + i))
            return 0;
    return p[n - 1] == (unsigned char)(n * 3);
}

static void verify_free(unsigned char *p, const char *who) {
    if (p == NULL)
        return;
    if (!check_block(p)) {
        fprintf(stderr, "%s: corrupted block %p\n", who, (void *)p);
        _exit(4);
    }
    free(p);
}

static void *worker(void *arg) {
    uint64_t s = (uintptr_t)arg * 0x9e3779b97f4a7c15ull + 1;
    unsigned char *local[64] = {0};
    while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
        uint64_t r = rnd(&s);
        unsigned i = (unsigned)(r % 64);
        if (local[i] != NULL) {
            verify_free(local[i], "parent worker");
            local[i] = NULL;
        } else {
            local[i] = make_block(pick_size(&s));
        }
        if (r % 8 == 0) { /* swap a block with the shared slots: cross-thread frees */
            unsigned j = (unsigned)((r >> 16) % SLOTS);
            unsigned char *mine = local[i];
            local[i] = atomic_exchange(&slots[j], mine);
        }
    }
    for (unsigned i = 0; i < 64; i++)
        verify_free(local[i], "parent worker");
    return NULL;
}

static void *child_thread(void *arg) {
    uint64_t s = (uintptr_t)arg + 77;
    unsigned char *keep[32];
    for (int round = 0; round < 20; round++) {
        for (int i = 0; i < 32; i++)
            keep[i] = make_block(pick_size(&s) % 20000 + 1);
        for (int i = 0; i < 32; i++)
            verify_free(keep[i], "child thread");
    }
    return make_block(100); /* freed by the child's main thread */
}

static int child_main(unsigned seed) {
    uint64_t s = seed * 2654435761u + 5;
    /* Inherited blocks, allocated by threads that do not exist here: check them and free half. */
    for (unsigned j = 0; j < SLOTS; j += 2) {
        unsigned char *p = atomic_exchange(&slots[j], NULL);
        verify_free(p, "child (inherited)");
    }
    unsigned char *mine[100];
    for (int i = 0; i < 100; i++)
        mine[i] = make_block(pick_size(&s));
    pthread_t t[2];
    for (int i = 0; i < 2; i++)
        if (pthread_create(&t[i], NULL, child_thread, (void *)(uintptr_t)(seed * 2 + (unsigned)i)) != 0) {
            fprintf(stderr, "child: pthread_create failed\n");
            return 5;
        }
    for (int i = 0; i < 2; i++) {
        void *ret = NULL;
        pthread_join(t[i], &ret);
        verify_free(ret, "child (from thread)");
    }
    for (int i = 0; i < 100; i++)
        verify_free(mine[i], "child");
    return 0;
}

int main(int argc, char **argv) {
    int forks = argc > 1 ? atoi(argv[1]) : 60;
    int workers = argc > 2 ? atoi(argv[2]) : 3;
    pthread_t *w = calloc((size_t)workers, sizeof *w);
    for (int i = 0; i < workers; i++)
        if (pthread_create(&w[i], NULL, worker, (void *)(uintptr_t)(i + 1)) != 0) {
            fprintf(stderr, "pthread_create failed\n");
            return 1;
        }
    int failed = 0;
    for (int k = 0; k < forks; k++) {
        unsigned char *before = make_block(1000 + (size_t)k);
        fflush(NULL);
        pid_t pid = fork();
        if (pid < 0) {
            perror("fork");
            failed++;
            break;
        }
        if (pid == 0) {
            verify_free(before, "child (main block)");
            exit(child_main((unsigned)k));
        }
        verify_free(before, "parent (main block)");
        int st = 0;
        if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
            fprintf(stderr, "fork %d: child status 0x%x\n", k, st);
            failed++;
        }
        usleep(1000); /* let the workers move on between forks */
    }
    atomic_store(&stop, 1);
    for (int i = 0; i < workers; i++)
        pthread_join(w[i], NULL);
    for (unsigned j = 0; j < SLOTS; j++)
        verify_free(atomic_exchange(&slots[j], NULL), "parent (slots)");
    free(w);
    if (failed) {
        fprintf(stderr, "%d of %d children failed\n", failed, forks);
        return 1;
    }
    printf("fork: %d children, %d workers: ok\n", forks, workers);
    return 0;
}
