/* The physical limit of running many short processes: keep PARALLEL posix_spawn()ed copies of a program
 * in flight until TOTAL have run. What any supervisor (xargs -P, GNU parallel, mpctld) is measured against.
 *
 *     spawn_loop TOTAL PARALLEL PROGRAM [ARGS...]
 *
 * An ARG that is exactly {} becomes the item number (1..TOTAL), as `seq TOTAL | xargs -n1 PROGRAM` and
 * `mpctl map -- PROGRAM` pass one: that is not free (coreutils' `true` with an argument sets up its locale,
 * about a third more CPU than a bare `true`), so a fair baseline for them runs the same command lines.
 */
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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
    char item[32];
    char** args = argv + 3;
    int item_at = -1;
    for (int i = 0; args[i] != NULL; ++i) {
        if (strcmp(args[i], "{}") == 0) {
            item_at = i;
        }
    }
    while (started < total || running > 0) {
        while (running < parallel && started < total) {
            pid_t pid;
            if (item_at >= 0) {
                snprintf(item, sizeof item, "%ld", started + 1);
                args[item_at] = item;
            }
            if (posix_spawn(&pid, argv[3], NULL, NULL, args, environ) != 0) {
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
