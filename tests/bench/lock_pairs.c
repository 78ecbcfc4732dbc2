/* Acquire+release pairs of one file lock on one connection to mpctld, one request at a time, as a client
 * in C would make them (the Python client of bench_locks.py spends as much CPU per pair as the daemon).
 *
 *     lock_pairs SOCKET PATH SECONDS
 *
 * Prints "PAIRS SECONDS". Requests are lock.acquire with a connection lease, then lock.release with the
 * grant's token; each is sent once the answer to the one before is read.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

static char buf[1 << 16];
static size_t have = 0;

/* Reads one line into LINE (without the newline); exits on EOF. */
static void read_line(int fd, char* line, size_t size) {
    for (;;) {
        char* nl = memchr(buf, '\n', have);
        if (nl != NULL) {
            size_t n = (size_t)(nl - buf);
            if (n >= size) {
                n = size - 1;
            }
            memcpy(line, buf, n);
            line[n] = '\0';
            have -= (size_t)(nl - buf) + 1;
            memmove(buf, nl + 1, have);
            return;
        }
        ssize_t got = read(fd, buf + have, sizeof buf - have);
        if (got <= 0) {
            fprintf(stderr, "lock_pairs: the daemon closed the connection\n");
            exit(1);
        }
        have += (size_t)got;
    }
}

static void send_all(int fd, const char* text, size_t n) {
    while (n > 0) {
        ssize_t put = write(fd, text, n);
        if (put <= 0) {
            perror("lock_pairs: write");
            exit(1);
        }
        text += put;
        n -= (size_t)put;
    }
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char** argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: lock_pairs SOCKET PATH SECONDS\n");
        return 2;
    }
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    strncpy(addr.sun_path, argv[1], sizeof addr.sun_path - 1);
    if (connect(fd, (struct sockaddr*)&addr, sizeof addr) != 0) {
        perror("lock_pairs: connect");
        return 1;
    }
    double seconds = atof(argv[3]);
    char request[4096], line[8192];
    long pairs = 0;
    double start = now(), end = start;
    while (end - start < seconds) {
        int n =
            snprintf(request, sizeof request,
                     "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"lock.acquire\",\"params\":{\"path\":\"%s\","
                     "\"lease\":\"connection\"}}\n",
                     argv[2]);
        send_all(fd, request, (size_t)n);
        read_line(fd, line, sizeof line);
        char* token = strstr(line, "\"token\":");
        if (token == NULL) {
            fprintf(stderr, "lock_pairs: no grant: %s\n", line);
            return 1;
        }
        n = snprintf(request, sizeof request,
                     "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"lock.release\",\"params\":{\"path\":\"%s\","
                     "\"token\":%ld}}\n",
                     argv[2], atol(token + 8));
        send_all(fd, request, (size_t)n);
        read_line(fd, line, sizeof line);
        if (strstr(line, "\"released\"") == NULL) {
            fprintf(stderr, "lock_pairs: not released: %s\n", line);
            return 1;
        }
        ++pairs;
        if ((pairs & 255) == 0) {
            end = now();
        }
    }
    end = now();
    printf("%ld %.6f\n", pairs, end - start);
    return 0;
}
