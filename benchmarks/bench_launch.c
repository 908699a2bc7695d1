/* SPDX-License-Identifier: MIT */
/* bench_launch: run a program and report its resource usage (used by run_benchmarks.py).
 *
 *   bench_launch [-p LIBRARY] <program> [args...]
 *
 * Forks, execs the program (with LD_PRELOAD=LIBRARY when -p is given: only the program gets it), waits for it with wait4 and then prints, on stdout after everything the program
 * printed:
 *   LAUNCH status=<exit code or -signal> wall=<s> maxrss_kib=<n> minflt=<n> majflt=<n>
 * and exits 0 (or 126 if the program could not be started).
 *
 * Why not os.wait4 in Python directly: Linux keeps a process's peak RSS across exec, and a child forked from
 * the Python runner starts with the runner's ~18 MiB high-water mark, so every workload would report at least
 * that. Forked from this small launcher, the workload's ru_maxrss is its own.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv) {
    const char *preload = NULL;
    int first = 1;
    if (argc > 2 && !strcmp(argv[1], "-p")) {
        preload = argv[2];
        first = 3;
    }
    if (first >= argc) {
        fprintf(stderr, "usage: %s [-p LIBRARY] program [args...]\n", argv[0]);
        return 2;
    }
    struct timespec t0, t1;
    fflush(stdout);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    pid_t pid = fork();
    if (pid < 0) {
        perror("bench_launch: fork");
        return 126;
    }
    if (pid == 0) {
        if (preload && setenv("LD_PRELOAD", preload, 1)) _exit(127);
        execvp(argv[first], argv + first);
        perror("bench_launch: exec");
        _exit(127);
    }
    int st;
    struct rusage ru;
    while (wait4(pid, &st, 0, &ru) < 0) {
        if (errno != EINTR) {
            perror("bench_launch: wait4");
            return 126;
        }
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    int status = WIFSIGNALED(st) ? -WTERMSIG(st) : WEXITSTATUS(st);
    printf("LAUNCH status=%d wall=%.6f maxrss_kib=%ld minflt=%ld majflt=%ld\n", status,
           (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) * 1e-9, ru.ru_maxrss, ru.ru_minflt,
           ru.ru_majflt);
    return 0;
}
