/* The floor under any one-request-at-a-time rate over a Unix socket on this machine: a server in C that
 * does nothing but answer each line it reads with one fixed line (an answer of shm.list_get's size), with
 * epoll and non-blocking reads as mpctld's loop has. rpc_rate against it gives the rate of the transport
 * and the scheduler's wake-ups alone; rpc_rate against mpctld gives that less what the daemon spends.
 *
 *     rpc_floor SOCKET      (serves until killed)
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

int main(int argc, char** argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: rpc_floor SOCKET\n");
        return 2;
    }
    int listener = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    strncpy(addr.sun_path, argv[1], sizeof addr.sun_path - 1);
    if (bind(listener, (struct sockaddr*)&addr, sizeof addr) != 0 || listen(listener, 16) != 0) {
        perror("rpc_floor: bind");
        return 1;
    }
    int ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = listener};
    epoll_ctl(ep, EPOLL_CTL_ADD, listener, &ev);
    static const char answer[] =
        "{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"name\":\"mpb-list\",\"index\":5000,\"value\":5000}}\n";
    static char buf[1 << 16];
    for (;;) {
        struct epoll_event ready[16];
        int n = epoll_wait(ep, ready, 16, -1);
        for (int i = 0; i < n; ++i) {
            int fd = ready[i].data.fd;
            if (fd == listener) {
                int c = accept4(listener, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
                if (c >= 0) {
                    struct epoll_event cev = {.events = EPOLLIN | EPOLLET, .data.fd = c};
                    epoll_ctl(ep, EPOLL_CTL_ADD, c, &cev);
                }
                continue;
            }
            for (;;) {
                ssize_t r = recv(fd, buf, sizeof buf, 0);
                if (r <= 0) {
                    if (r == 0) {
                        close(fd);
                    }
                    break;
                }
                for (ssize_t k = 0; k < r; ++k) {
                    if (buf[k] == '\n' && send(fd, answer, sizeof answer - 1, MSG_NOSIGNAL) < 0) {
                        break;
                    }
                }
            }
        }
    }
}
