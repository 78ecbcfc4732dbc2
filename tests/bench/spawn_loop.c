/* The physical limit of running many short processes: keep PARALLEL posix_spawn()ed copies of a program
 * in flight until TOTAL have run. What any supervisor (xargs -P, GNU parallel, mpctld) is measured against.
 *
 *     spawn_loop TOTAL PARALLEL PROGRAM [ARGS...]
 */
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>

extern char** environ;

int main(int argc, char** argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: spawn_loop TOTAL PARALLEL PROGRAM [ARGS...]\n");
        return 2;
    }
    long total = atol(argv[1]);
    long parallel = atol(argv[2]);
    long started = 0, running = 0, failed = 0;
    while (started < total || running > 0) {
        while (running < parallel && started < total) {
            pid_t pid;
            if (posix_spawn(&pid, argv[3], NULL, NULL, argv + 3, environ) != 0) {
                perror("posix_spawn");
                return 1;
            }
            ++started;
            ++running;
        }
        int status;
        if (wait(&status) > 0) {
            --running;
            failed += !(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        }
    }
    return failed != 0;
}
