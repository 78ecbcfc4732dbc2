#!/usr/bin/env python3
"""What a remote client pays (PROTOCOL.md "Remote clients"), measured in one run against the Unix socket on
this machine, over loopback; prints ratios.

  1. Connecting: a TCP connection, the TLS 1.3 handshake, the certificate's pin checked and session.auth
     answered, vs a Unix socket's connect() (with, for scale, the connect and one daemon.status).
  2. A request's round trip on an open connection: daemon.status and kv.get, over TLS vs the Unix socket.
  3. The whole command: `mpctl kv get` with --connect (which runs mpctl-tls) vs without.

The client of 1 and 2 is Python's ssl module (the standard library), pinning as mpctl does: TLS 1.3 only, no
certificate authority, the SHA-256 of the certificate's DER compared with `mpctld --print-fingerprint`.

Usage: tests/bench/bench_remote.py [--build DIR] [--runs N] [--requests N]     (DIR defaults to ./build)
Connect times are the median of N connections (default 200), round trips the median of N requests (default
2000) on one connection, commands the median of --runs x 20. Not a pass/fail test: it prints what it measures.
"""
import argparse, hashlib, json, os, shutil, signal, socket, ssl, statistics, subprocess, sys, tempfile, time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from bench_core import Connection  # noqa: E402


class Line:
    """JSON-RPC lines over SOCK (a Unix socket or a TLS one)."""

    def __init__(self, sock):
        self.sock = sock
        self.file = sock.makefile("rwb")
        self.next_id = 0

    def call(self, method, **params):
        self.next_id += 1
        self.file.write(json.dumps({"jsonrpc": "2.0", "id": self.next_id, "method": method,
                                    "params": params}).encode() + b"\n")
        self.file.flush()
        while True:
            raw = self.file.readline()
            if not raw:
                raise RuntimeError(f"{method}: the daemon closed the connection")
            msg = json.loads(raw)
            if msg.get("id") == self.next_id:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg["result"]

    def close(self):
        self.file.close()
        self.sock.close()


def tls_context():
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE  # pinned instead, below
    ctx.minimum_version = ctx.maximum_version = ssl.TLSVersion.TLSv1_3
    return ctx


def connect_tls(ctx, port, pin, token):
    """A TLS connection to the daemon, its certificate checked against PIN and TOKEN accepted."""
    sock = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=60))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    shown = hashlib.sha256(sock.getpeercert(binary_form=True)).hexdigest()
    if shown != pin:
        sock.close()
        raise RuntimeError(f"the daemon's certificate is SHA256:{shown}, not the pinned SHA256:{pin}")
    conn = Line(sock)
    conn.call("session.auth", token=token)
    return conn


def connect_unix(path):
    sock = socket.socket(socket.AF_UNIX)
    sock.settimeout(60)
    sock.connect(path)
    return Line(sock)


def medians_interleaved(n, *whats):
    """The median time of each of WHATS, run in turn N times each: all see the machine as it is meanwhile
    (on a busy machine, measuring one after the other would compare two different moments)."""
    times = [[] for _ in whats]
    for _ in range(n):
        for i, what in enumerate(whats):
            t = time.perf_counter()
            what()
            times[i].append(time.perf_counter() - t)
    return [statistics.median(ts) for ts in times]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--connects", type=int, default=200)
    ap.add_argument("--requests", type=int, default=2000)
    args = ap.parse_args()
    bin_dir = os.path.abspath(os.path.join(args.build, "bin"))
    mpctld, mpctl = os.path.join(bin_dir, "mpctld"), os.path.join(bin_dir, "mpctl")
    work = tempfile.mkdtemp(prefix="mpb-remote-", dir="/dev/shm" if os.path.isdir("/dev/shm") else None)
    sock_path, state = os.path.join(work, "d.sock"), os.path.join(work, "state")
    proc = None
    rows = []
    try:
        pin = subprocess.run([mpctld, "--print-fingerprint", "--state-dir", state], check=True,
                             capture_output=True).stdout.decode().strip()
        pin_hex = pin.split(":", 1)[1]
        proc = subprocess.Popen([mpctld, "--foreground", "--exit-with-parent", "--socket", sock_path,
                                 "--state-dir", state, "--workers", "2", "--log-level", "warn",
                                 "--listen", "tcp://127.0.0.1:0"])
        local = Connection(sock_path)  # retries until the daemon serves
        listen = [a for a in local.call("daemon.status")["listen"] if a.startswith("tcp://")]
        port = int(listen[0].rsplit(":", 1)[1])
        token = local.call("token.create", name="bench")["token"]
        local.call("kv.set", name="bench", key="k", value="v")
        ctx = tls_context()

        # 1. Connecting.
        def tls_once():
            connect_tls(ctx, port, pin_hex, token).close()

        def unix_once():
            connect_unix(sock_path).close()

        def unix_and_status():
            c = connect_unix(sock_path)
            c.call("daemon.status")
            c.close()
        tls_once()  # warm
        unix_connect, unix_first, tls_connect = medians_interleaved(args.connects, unix_once, unix_and_status,
                                                                    tls_once)
        rows.append(("connect: TCP + TLS 1.3 handshake + pin + session.auth", tls_connect, unix_connect,
                     "Unix connect()"))
        rows.append(("connect: TCP + TLS 1.3 handshake + pin + session.auth", tls_connect, unix_first,
                     "Unix connect() + daemon.status"))

        # 2. Round trips on an open connection.
        tls = connect_tls(ctx, port, pin_hex, token)
        unix = connect_unix(sock_path)
        for method, params in (("daemon.status", {}), ("kv.get", {"name": "bench", "key": "k"})):
            unix.call(method, **params)  # warm
            tls.call(method, **params)
            u, t = medians_interleaved(args.requests, lambda: unix.call(method, **params),
                                       lambda: tls.call(method, **params))
            rows.append((f"round trip: {method} over TLS", t, u, f"{method} over the Unix socket"))
        tls.close()
        unix.close()

        # 3. The whole command.
        remote_env = dict(os.environ, MPCTL_CONNECT=listen[0], MPCTL_FINGERPRINT=pin, MPCTL_TOKEN=token,
                          MPCTL_NO_AUTOSTART="1")
        local_env = dict(os.environ, MPCTL_SOCKET=sock_path, MPCTL_NO_AUTOSTART="1")
        for name in ("MPCTL_CONNECT", "MPCTL_FINGERPRINT", "MPCTL_TOKEN"):
            local_env.pop(name, None)
        cmd = [mpctl, "kv", "get", "bench", "k"]

        def command(env):
            return lambda: subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL,
                                          stdin=subprocess.DEVNULL)
        command(remote_env)()  # warm
        local_cmd, remote_cmd = medians_interleaved(20 * args.runs, command(local_env), command(remote_env))
        rows.append(("`mpctl --connect ... kv get` (mpctl-tls, TLS, auth)", remote_cmd, local_cmd,
                     "`mpctl kv get` over the Unix socket"))
        local.close()
    finally:
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            proc.wait(60)
        shutil.rmtree(work, ignore_errors=True)

    print(f"\nmpctl remote clients over loopback ({os.cpu_count()} CPUs; medians: {args.connects} connects, "
          f"{args.requests} requests, {20 * args.runs} commands)\n")
    width = max(len(r[0]) for r in rows)
    print(f"{'what':{width}} {'time':>9} {'baseline':>9}  {'ratio':>7}  baseline")
    for what, ours, base, base_name in rows:
        print(f"{what:{width}} {ours*1e6:7.0f}us {base*1e6:7.0f}us  {ours/base:6.2f}x  {base_name}")
    print("\nratio = time / baseline time (lower is better)")


if __name__ == "__main__":
    main()
