#!/usr/bin/env python3
"""A warm worker that runs nothing: it answers every run with exit status 0 at once (PROTOCOL.md, "Warm
workers"). bench_executor.py measures with it what the daemon itself costs per task of a warm pool: the
ceiling of any executor whose every call is a task."""
import array, json, os, socket

MAX_FDS = 64


def main():
    sock = socket.socket(fileno=int(os.environ.get("MPCTL_WORKER_FD", "3")))
    sock.sendall(b'{"hello":{"protocol":1,"pid":%d}}\n' % os.getpid())
    buffer = b""
    while True:
        data, ancillary, _, _ = sock.recvmsg(1 << 16, socket.CMSG_SPACE(MAX_FDS * 4))
        for _, _, payload in ancillary:  # the runs' descriptors: closed, as a worker that is done with them
            fds = array.array("i")
            fds.frombytes(payload[:len(payload) - len(payload) % fds.itemsize])
            for fd in fds:
                os.close(fd)
        if not data:
            return
        buffer += data
        *lines, buffer = buffer.split(b"\n")
        answers = [b'{"done":{"task":%d,"exit_code":0}}\n' % json.loads(line)["run"]["task"] for line in lines if line]
        if answers:
            sock.sendall(b"".join(answers))


if __name__ == "__main__":
    main()
