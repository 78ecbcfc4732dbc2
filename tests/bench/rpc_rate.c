/* JSON-RPC requests sent again and again on one connection to mpctld, in turn, each once the answer to the
 * one before is read: the rate a client in C gets one request at a time (a Python client spends about as
 * much CPU per request as the daemon, so its rate says more about Python than about the daemon). Several
 * lines make a cycle: `lock.acquire` then `lock.release` is an acquire+release pair.
 *
 *     rpc_rate SOCKET SECONDS REQUEST_LINE...
 *
 * Prints "CYCLES SECONDS". The answers are not parsed (each is one line), except that an error answer
 * stops the run: a rate of errors would measure nothing.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char** argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: rpc_rate SOCKET SECONDS REQUEST_LINE...\n");
        return 2;
    }
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    strncpy(addr.sun_path, argv[1], sizeof addr.sun_path - 1);
    if (connect(fd, (struct sockaddr*)&addr, sizeof addr) != 0) {
        perror("rpc_rate: connect");
        return 1;
    }
    double seconds = atof(argv[2]);
    /* Each request goes out in one write, newline included, as any real client's does: a line split over
     * two writes lets the daemon wake for half of it, which measured the split rather than the daemon. */
    int lines = argc - 3;
    char** line = calloc((size_t)lines, sizeof *line);
    size_t* line_size = calloc((size_t)lines, sizeof *line_size);
    for (int i = 0; i < lines; ++i) {
        line_size[i] = strlen(argv[3 + i]) + 1;
        line[i] = malloc(line_size[i]);
        memcpy(line[i], argv[3 + i], line_size[i] - 1);
        line[i][line_size[i] - 1] = '\n';
    }
    static char buf[1 << 16];
    long cycles = 0;
    double start = now();
    while (now() - start < seconds) {
        for (int i = 0; i < lines; ++i) {
            if (write(fd, line[i], line_size[i]) != (ssize_t)line_size[i]) {
                perror("rpc_rate: write");
                return 1;
            }
            size_t got = 0;
            do {
                ssize_t r = read(fd, buf + got, sizeof buf - 1 - got);
                if (r <= 0) {
                    fprintf(stderr, "rpc_rate: the daemon closed the connection\n");
                    return 1;
                }
                got += (size_t)r;
            } while (buf[got - 1] != '\n' && got < sizeof buf - 1);
            buf[got] = '\0';
            /* The top-level member after the id: a result may hold an "error" member of its own (a task's).
             */
            const char* result = strstr(buf, ",\"result\":");
            const char* error = strstr(buf, ",\"error\":");
            if (result == NULL || (error != NULL && error < result)) {
                fprintf(stderr, "rpc_rate: %s", buf);
                return 1;
            }
        }
        ++cycles;
    }
    printf("%ld %.6f\n", cycles, now() - start);
    return 0;
}
