/* SPDX-License-Identifier: MIT */
/* Fork: the thread heaps of threads that do not survive fork() give up their SuperSlabs in the child (a race
 * of the footprint issue). The C library reuses a dead thread's stack, and so its TLS, for a new thread of
 * the child, whose thread id (the address of a TLS byte) then equals the dead thread's: it took over that
 * thread's SuperSlabs, frees into them went to a thread heap nobody allocates from, and two threads of a
 * later fork could both claim them. In the child every SuperSlab of another thread must be abandoned (owner
 * id 0) and usable by the child's threads; the forking thread keeps its own. */
#include "hakmem_test.h"

#include <pthread.h>
#include <sys/wait.h>

static ht_barrier_t ready, done;
static void *theirs[2]; /* a block of the default heap and one of a private heap, made by the other thread */
static hak_heap_t *priv;

static void *other_thread(void *arg) {
    (void)arg;
    theirs[0] = hak_alloc(100);
    theirs[1] = hak_heap_alloc(priv, 200);
    ht_barrier_wait(&ready);
    ht_barrier_wait(&done); /* alive across the fork, gone in the child */
    hak_free(theirs[0]);
    hak_free(theirs[1]);
    return NULL;
}

static void *child_thread(void *arg) {
    (void)arg;
    hak_free(theirs[0]); /* the dead thread's blocks: remote frees into abandoned SuperSlabs */
    hak_free(theirs[1]);
    void *p = hak_alloc(100), *q = hak_heap_alloc(priv, 200);
    int ok = p != NULL && q != NULL;
    hak_free(p);
    hak_free(q);
    return ok ? NULL : (void *)1;
}

/* In the child: 0 if every check holds, else a code naming the first that failed. */
static int in_child(void *mine) {
    for (int i = 0; i < 2; i++)
        if (__atomic_load_n(&hak_ss_of(theirs[i])->owner_tid, __ATOMIC_RELAXED) != 0)
            return 10 + i; /* still owned by a thread that does not exist here */
    if (__atomic_load_n(&hak_ss_of(mine)->owner_tid, __ATOMIC_RELAXED) == 0)
        return 20; /* the forking thread lost its own */
    pthread_t t;
    void *rc;
    if (pthread_create(&t, NULL, child_thread, NULL) != 0 || pthread_join(t, &rc) != 0 || rc != NULL)
        return 30;
    hak_free(mine);
    return 0;
}

static void test_fork_orphans_dead_threads_superslabs(void **state) {
    (void)state;
    priv = hak_heap_create(NULL);
    assert_non_null(priv);
    void *mine = hak_alloc(100);
    assert_non_null(mine);
    ht_barrier_init(&ready, 2);
    ht_barrier_init(&done, 2);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, other_thread, NULL), 0);
    ht_barrier_wait(&ready);
    assert_ptr_not_equal(hak_ss_of(theirs[0]), hak_ss_of(mine)); /* each thread has its own SuperSlabs */
    pid_t pid = fork();
    if (pid == 0)
        _exit(in_child(mine));
    int status = 0;
    waitpid(pid, &status, 0);
    ht_barrier_wait(&done);
    pthread_join(t, NULL);
    hak_free(mine);
    hak_heap_destroy(priv);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        fail_msg("child: %s %d (10/11: a dead thread's SuperSlab still owned, 20: the forking thread's lost, "
                 "30: the child's thread failed)",
                 WIFEXITED(status) ? "check" : "signal",
                 WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
}

int main(void) {
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_fork_orphans_dead_threads_superslabs)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
