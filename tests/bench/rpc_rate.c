/* One JSON-RPC request sent again and again on one connection to mpctld, each once the answer to the one
 * before is read: the rate a client in C gets one request at a time (a Python client spends about as much
 * CPU per request as the daemon, so its rate says more about Python than about the daemon).
 *
 *     rpc_rate SOCKET SECONDS REQUEST_LINE
 *
 * Prints "REQUESTS SECONDS". The answers are not parsed: each is one line.
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
    if (argc != 4) {
        fprintf(stderr, "usage: rpc_rate SOCKET SECONDS REQUEST_LINE\n");
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
    char line[8192];
    int n = snprintf(line, sizeof line, "%s\n", argv[3]);
    static char buf[1 << 16];
    long requests = 0;
    double start = now();
    while (now() - start < seconds) {
        for (int i = 0; i < 64; ++i) {
            if (write(fd, line, (size_t)n) != n) {
                perror("rpc_rate: write");
                return 1;
            }
            size_t got = 0;
            do {
                ssize_t r = read(fd, buf + got, sizeof buf - got);
                if (r <= 0) {
                    fprintf(stderr, "rpc_rate: the daemon closed the connection\n");
                    return 1;
                }
                got += (size_t)r;
            } while (buf[got - 1] != '\n' && got < sizeof buf);
            ++requests;
        }
    }
    printf("%ld %.6f\n", requests, now() - start);
    return 0;
}
