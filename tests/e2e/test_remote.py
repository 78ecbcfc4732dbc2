#!/usr/bin/env python3
"""Remote clients (PROTOCOL.md "Remote clients"): `mpctl --connect tcp://HOST:PORT --fingerprint SHA256:...`
with a token against a real `mpctld --listen tcp://127.0.0.1:0`. Everyday commands work over TLS 1.3 as over
the Unix socket; a certificate that is not the pinned one gets nothing (not even the token); no token, a wrong
one, a revoked one or a method outside the token's patterns is refused (exit 6); TLS 1.2 and plaintext
clients are turned away without hurting the daemon; the token store keeps no secret and survives a restart;
a server that never answers ends mpctl with exit 3 instead of hanging it.

Each test has a daemon of its own (a peer address that fails 5 times within a minute is refused for a
minute). Nothing sleeps a fixed time: waits poll a condition against a generous deadline."""
import hashlib, json, os, shutil, signal, socket, ssl, subprocess, sys, tempfile, threading, unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import py_daemon  # noqa: E402
from py_daemon import BIN, Connection, until  # noqa: E402

MPCTL = os.path.join(BIN, "mpctl")
MPCTLD = os.path.join(BIN, "mpctld")
OPENSSL = shutil.which("openssl") or "/usr/bin/openssl"
WRONG_PIN = "SHA256:" + "ab" * 32


class ListeningDaemon(py_daemon.ListeningDaemon):
    def stop_gracefully(self):
        """daemon.stop over the Unix socket, and wait until the process is gone."""
        conn = Connection(self.socket)
        try:
            conn.call("daemon.stop", {"now": True})
        finally:
            conn.close()
        self.proc.wait(120)


class TlsServer:
    """A TLS 1.3 server on 127.0.0.1 with CERT and KEY that takes one connection after another, records
    what each client sends, and never answers (a daemon that hangs, or one that is not the pinned one)."""

    def __init__(self, cert, key):
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.minimum_version = ssl.TLSVersion.TLSv1_3
        self.ctx.load_cert_chain(cert, key)
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.received = []  # per connection: the bytes it sent, once it is over
        self.lock = threading.Lock()
        self.stopping = False
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self):
        while not self.stopping:
            try:
                raw, _ = self.sock.accept()
            except OSError:
                return
            got = b""
            try:
                raw.settimeout(60)
                conn = self.ctx.wrap_socket(raw, server_side=True)
                while True:
                    chunk = conn.recv(65536)
                    if not chunk:
                        break
                    got += chunk
            except (OSError, ssl.SSLError):
                pass
            finally:
                raw.close()
            with self.lock:
                self.received.append(got)

    def connections(self):
        with self.lock:
            return list(self.received)

    def close(self):
        self.stopping = True
        self.sock.close()


def fingerprint_of(cert_path):
    """SHA256:HEX of the certificate file's DER, as Python's ssl computes it."""
    with open(cert_path) as f:
        der = ssl.PEM_cert_to_DER_cert(f.read())
    return "SHA256:" + hashlib.sha256(der).hexdigest()


class Remote(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory(prefix="mpt-remote-", dir="/tmp")
        self.addCleanup(self.tmp.cleanup)
        self.daemon = ListeningDaemon(self.tmp.name)
        self.addCleanup(self.daemon.stop)
        self.state = os.path.join(self.tmp.name, "state")
        self.fingerprint = self.print_fingerprint()
        # Local: the daemon's own machine, over the Unix socket.
        self.local_env = dict(os.environ, MPCTL_SOCKET=self.daemon.socket, MPCTL_NO_AUTOSTART="1", NO_COLOR="1")
        for name in ("MPCTL_CONNECT", "MPCTL_FINGERPRINT", "MPCTL_TOKEN"):
            self.local_env.pop(name, None)
        # Remote: no usable Unix socket at all, so nothing can quietly go local.
        self.remote_env = dict(self.local_env, MPCTL_SOCKET=os.path.join(self.tmp.name, "nobody.sock"),
                               MPCTL_CONNECT=self.daemon.address, MPCTL_FINGERPRINT=self.fingerprint)

    # --- helpers -----------------------------------------------------------------------------------------

    def print_fingerprint(self):
        done = subprocess.run([MPCTLD, "--print-fingerprint", "--state-dir", self.state], capture_output=True,
                              timeout=60, stdin=subprocess.DEVNULL)
        self.assertEqual(done.returncode, 0, done.stderr)
        text = done.stdout.decode().strip()
        self.assertRegex(text, r"^SHA256:[0-9a-f]{64}$")
        return text

    def run_cli(self, args, env, **kw):
        if "input" not in kw and "stdin" not in kw:
            kw["stdin"] = subprocess.DEVNULL
        return subprocess.run([MPCTL] + args, env=env, capture_output=True, timeout=120, **kw)

    def local(self, args, **kw):
        return self.run_cli(args, self.local_env, **kw)

    def local_ok(self, args, **kw):
        done = self.local(args, **kw)
        self.assertEqual(done.returncode, 0, f"mpctl {' '.join(args)}: {done.stderr.decode()}")
        return done.stdout

    def token(self, name, methods=None):
        """A new token's secret, made over the Unix socket."""
        args = ["token", "create", name] + (["--methods", methods] if methods else [])
        secret = self.local_ok(args).decode()
        self.assertTrue(secret.endswith("\n") and secret.count("\n") == 1, repr(secret))
        secret = secret.strip()
        self.assertRegex(secret, r"^mpt_[A-Za-z0-9_-]{43}$")
        return secret

    def remote(self, args, token, env=None, **kw):
        env = dict(env or self.remote_env)
        if token is None:
            env.pop("MPCTL_TOKEN", None)
        else:
            env["MPCTL_TOKEN"] = token
        return self.run_cli(args, env, **kw)

    def remote_ok(self, args, token, **kw):
        done = self.remote(args, token, **kw)
        self.assertEqual(done.returncode, 0, f"remote mpctl {' '.join(args)}: {done.stderr.decode()}")
        return done.stdout

    def log_after(self, mark, until_text):
        """The daemon's log lines written after MARK (a length of the log), once one holds UNTIL_TEXT."""
        until(lambda: until_text in self.daemon.log()[mark:], f"{until_text!r} in the daemon's log")
        return self.daemon.log()[mark:].splitlines()

    def tls_client(self, port=None):
        """A TLS 1.3 connection to the daemon with Python's ssl, pinned by hand as mpctl pins."""
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        ctx.minimum_version = ctx.maximum_version = ssl.TLSVersion.TLSv1_3
        raw = socket.create_connection(("127.0.0.1", port or self.daemon.port), timeout=60)
        conn = ctx.wrap_socket(raw)
        self.assertEqual("SHA256:" + hashlib.sha256(conn.getpeercert(binary_form=True)).hexdigest(),
                         self.fingerprint)
        return conn

    @staticmethod
    def read_reply(conn):
        """One line from CONN (None at end of file)."""
        data = b""
        while not data.endswith(b"\n"):
            try:
                chunk = conn.recv(65536)
            except (ssl.SSLError, ConnectionResetError):
                chunk = b""
            if not chunk:
                return None if not data else json.loads(data)
            data += chunk
        return json.loads(data)

    @staticmethod
    def closed(conn):
        """Whether CONN is at its end (the daemon closed it)."""
        try:
            return conn.recv(1) == b""
        except (ssl.SSLError, ConnectionResetError, BrokenPipeError):
            return True

    # --- 1. everyday use ---------------------------------------------------------------------------------

    def test_a_remote_client_submits_waits_puts_gets_and_sets_keys(self):
        secret = self.token("laptop")
        task = int(self.remote_ok(["submit", "--", "true"], secret))
        self.remote_ok(["wait", str(task)], secret)
        status = json.loads(self.local_ok(["status", str(task), "--json"]))
        self.assertEqual((status["state"], status["exit_code"]), ("succeeded", 0))

        run = self.remote(["run", "--", "sh", "-c", "echo out; echo err >&2; exit 3"], secret)
        self.assertEqual((run.returncode, run.stdout, run.stderr), (3, b"out\n", b"err\n"))

        self.remote_ok(["queue", "put", "jobs", "first", "second"], secret)
        self.assertEqual(self.remote_ok(["queue", "get", "jobs"], secret), b"first\n")
        self.assertEqual(self.local_ok(["queue", "get", "jobs"]), b"second\n")  # the same queue

        self.remote_ok(["kv", "set", "conf", "answer", "42"], secret)
        self.assertEqual(self.remote_ok(["kv", "get", "conf", "answer"], secret), b"42\n")
        self.assertEqual(self.local_ok(["kv", "get", "conf", "answer"]), b"42\n")
        log = self.daemon.log()
        self.assertIn("authenticated with token laptop", log)
        self.assertNotIn(secret, log)

    def test_streams_over_tls_arrive_whole_and_in_order(self):
        # mpctl map and logs --follow poll the connection themselves: nothing may wait unseen inside TLS.
        secret = self.token("streams")
        items = "".join(f"{i}\n" for i in range(1, 301)).encode()
        out = self.remote_ok(["map", "-j", "4", "--", "echo", "item"], secret, input=items)
        self.assertEqual(out.decode().splitlines(), [f"item {i}" for i in range(1, 301)])
        task = int(self.remote_ok(["submit", "--", "sh", "-c", "for i in 1 2 3; do echo line $i; sleep 0.1; "
                                   "done; head -c 300000 /dev/zero | tr '\\0' x"], secret))
        follow = self.remote_ok(["logs", "--follow", str(task)], secret)
        self.assertEqual(follow, b"line 1\nline 2\nline 3\n" + b"x" * 300000)

    def test_flags_win_over_the_environment_and_a_token_file_is_read(self):
        secret = self.token("flags")
        token_file = os.path.join(self.tmp.name, "token")
        with open(token_file, "w") as f:
            f.write(secret + "\nsecond line ignored\n")
        env = dict(self.remote_env, MPCTL_CONNECT="tcp://127.0.0.1:1", MPCTL_FINGERPRINT=WRONG_PIN,
                   MPCTL_TOKEN="mpt_not_this_one")
        # The pin as people copy it: upper case with colons, or bare hex.
        hexpin = self.fingerprint.split(":", 1)[1]
        colons = ":".join(hexpin[i:i + 2] for i in range(0, 64, 2)).upper()
        for pin in (colons, hexpin):
            done = self.run_cli(["--connect", self.daemon.address, "--fingerprint", pin, "--token-file",
                                 token_file, "kv", "set", "d", "k", "v"], env)
            self.assertEqual(done.returncode, 0, done.stderr)

    def test_stdin_cannot_be_passed_to_a_remote_daemon(self):
        secret = self.token("stdin")
        done = self.remote(["submit", "--stdin", "-", "--", "cat"], secret, input=b"data\n")
        self.assertEqual(done.returncode, 6, done.stderr)
        self.assertIn(b"a remote daemon cannot take this process's stdin", done.stderr)
        self.assertEqual(self.local_ok(["list", "--json"]), b"")  # nothing was submitted

    # --- 2. the pin ----------------------------------------------------------------------------------------

    def test_a_wrong_fingerprint_exits_6_naming_both_and_the_daemon_hears_no_token(self):
        secret = self.token("pinned")
        probe = self.token("probe")
        mark = len(self.daemon.log())
        done = self.remote(["--fingerprint", WRONG_PIN, "kv", "get", "d", "k"], secret)
        self.assertEqual(done.returncode, 6, done.stderr)
        self.assertIn(self.fingerprint.split(":", 1)[1].encode(), done.stderr)
        self.assertIn(WRONG_PIN.split(":", 1)[1].encode(), done.stderr)
        # A later good client marks the point the daemon's log has reached.
        self.remote(["kv", "get", "d", "k"], probe)
        lines = [line for line in self.log_after(mark, "authenticated with token probe") if "probe" not in line]
        self.assertEqual([line for line in lines if "token" in line.lower()], [], lines)

    def test_a_wrong_fingerprint_sends_nothing_at_all(self):
        # A server that is not the pinned one (another certificate) records every byte it is sent.
        cert, key = self.make_certificate()
        server = TlsServer(cert, key)
        self.addCleanup(server.close)
        env = dict(self.remote_env, MPCTL_CONNECT=f"tcp://127.0.0.1:{server.port}")
        done = self.remote(["kv", "get", "d", "k"], "mpt_" + "s" * 43, env=env)
        self.assertEqual(done.returncode, 6, done.stderr)
        self.assertIn(fingerprint_of(cert).split(":", 1)[1].encode(), done.stderr)
        until(lambda: len(server.connections()) == 1, "the server to see the connection end")
        self.assertEqual(server.connections(), [b""])

    def test_clients_with_the_wrong_pin_do_not_lock_the_right_ones_out(self):
        # PROTOCOL.md counts as failed authentications a wrong, unknown or revoked token, a bad first
        # request and no request within 10 s; a client that leaves at once after the handshake (its pin did
        # not match) has tried no token.
        secret = self.token("patient")
        for _ in range(6):
            self.assertEqual(self.remote(["--fingerprint", WRONG_PIN, "kv", "get", "d", "k"], secret).returncode, 6)
        done = self.remote(["kv", "set", "d", "k", "1"], secret)
        self.assertEqual(done.returncode, 0, done.stderr)

    def test_missing_settings_are_usage_errors_that_say_where_to_get_them(self):
        secret = self.token("usage")
        env = dict(self.remote_env)
        env.pop("MPCTL_FINGERPRINT")
        done = self.remote(["kv", "get", "d", "k"], secret, env=env)
        self.assertEqual(done.returncode, 2, done.stderr)
        self.assertIn(b"mpctld --print-fingerprint", done.stderr)
        done = self.remote(["kv", "get", "d", "k"], None)
        self.assertEqual(done.returncode, 2, done.stderr)
        self.assertIn(b"MPCTL_TOKEN", done.stderr)
        self.assertIn(b"mpctl token create", done.stderr)
        done = self.remote(["--connect", "127.0.0.1:80", "kv", "get", "d", "k"], secret)
        self.assertEqual(done.returncode, 2, done.stderr)
        done = self.remote(["--fingerprint", "SHA256:1234", "kv", "get", "d", "k"], secret)
        self.assertEqual(done.returncode, 2, done.stderr)

    # --- 3. tokens -----------------------------------------------------------------------------------------

    def test_a_wrong_or_revoked_token_exits_6_and_revoking_closes_its_sessions(self):
        secret = self.token("soon-gone")
        done = self.remote(["kv", "get", "d", "k"], "mpt_" + "A" * 43)
        self.assertEqual(done.returncode, 6, done.stderr)
        self.assertIn(b"refused the token", done.stderr)

        self.local_ok(["kv", "set", "d", "k", "1"])
        watch = subprocess.Popen([MPCTL, "kv", "watch", "d", "--current"],
                                 env=dict(self.remote_env, MPCTL_TOKEN=secret), stdin=subprocess.DEVNULL,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)

        def reap():
            if watch.poll() is None:
                os.killpg(watch.pid, signal.SIGKILL)
            watch.communicate(timeout=60)
        self.addCleanup(reap)
        # Live once the entry there is comes (--current); then a change streams to it over TLS.
        self.assertIn(b'"value":1', watch.stdout.readline())
        self.local_ok(["kv", "set", "d", "k", "2"])
        self.assertIn(b'"value":2', watch.stdout.readline())
        revoked = json.loads(self.local_ok(["token", "revoke", "soon-gone", "--json"]))
        self.assertEqual((revoked["name"], revoked["revoked"], revoked["closed"]), ("soon-gone", True, 1))
        watch.wait(60)
        self.assertNotEqual(watch.returncode, 0)
        done = self.remote(["kv", "get", "d", "k"], secret)
        self.assertEqual(done.returncode, 6, done.stderr)
        self.assertEqual(self.local(["token", "revoke", "soon-gone"]).returncode, 4)

    def test_a_token_for_kv_only_cannot_put_on_a_queue(self):
        secret = self.token("kv-only", "kv.*")
        self.remote_ok(["kv", "set", "d", "k", "v"], secret)
        done = self.remote(["queue", "put", "q", "x"], secret)
        self.assertEqual(done.returncode, 6, done.stderr)
        self.assertIn(b"queue.put", done.stderr)
        self.assertEqual(self.local_ok(["queue", "list", "--json"]), b"")  # no queue was made

    def test_token_methods_are_never_allowed_remotely(self):
        secret = self.token("everything")
        done = self.remote(["token", "list"], secret)
        self.assertEqual(done.returncode, 6, done.stderr)
        conn = self.tls_client()
        try:
            conn.sendall(json.dumps({"jsonrpc": "2.0", "id": 1, "method": "session.auth",
                                     "params": {"token": secret}}).encode() + b"\n")
            self.assertEqual(self.read_reply(conn)["result"]["name"], "everything")
            conn.sendall(b'{"jsonrpc":"2.0","id":2,"method":"token.list","params":{}}\n')
            reply = self.read_reply(conn)
            self.assertEqual(reply["error"]["data"]["error"], "refused", reply)
        finally:
            conn.close()

    def test_the_first_request_must_be_session_auth(self):
        self.token("unused")
        conn = self.tls_client()
        try:
            conn.sendall(b'{"jsonrpc":"2.0","id":1,"method":"kv.get","params":{"name":"d","key":"k"}}\n')
            reply = self.read_reply(conn)
            self.assertIsNotNone(reply)
            self.assertEqual(reply["error"]["data"]["error"], "refused", reply)
            until(lambda: self.closed(conn), "the daemon to close the connection")
        finally:
            conn.close()

    def test_token_list_never_shows_a_secret_and_the_state_dir_keeps_none(self):
        secrets = [self.token("alpha"), self.token("beta", "kv.*,queue.get")]
        # A task submitted with the token in mpctl's environment does not get it (nor does the journal).
        self.assertEqual(self.remote_ok(["run", "--", "sh", "-c", "echo ${MPCTL_TOKEN:-unset}"], secrets[0]),
                         b"unset\n")
        table = self.local_ok(["token", "list"]).decode()
        self.assertEqual(table.splitlines()[0].split(), ["NAME", "METHODS", "CREATED"])
        rows = {line.split()[0]: line.split()[1] for line in table.splitlines()[1:]}
        self.assertEqual(rows, {"alpha": "*", "beta": "kv.*,queue.get"})
        listed = [json.loads(line) for line in self.local_ok(["token", "list", "--json"]).splitlines()]
        self.assertEqual(sorted(t["name"] for t in listed), ["alpha", "beta"])
        for t in listed:
            self.assertEqual(sorted(t), ["created_at", "methods", "name"])
        everything = table + json.dumps(listed)
        self.assertNotIn("mpt_", everything)
        for root, _, files in os.walk(self.state):
            for name in files:
                with open(os.path.join(root, name), "rb") as f:
                    data = f.read()
                for s in secrets:
                    self.assertNotIn(s.encode(), data, os.path.join(root, name))
                    self.assertNotIn(s[4:].encode(), data, os.path.join(root, name))

    def test_tokens_and_the_certificate_survive_a_daemon_restart(self):
        secret = self.token("durable")
        self.remote_ok(["kv", "set", "d", "k", "before"], secret)
        self.daemon.stop_gracefully()
        self.daemon.start()
        self.assertEqual(self.print_fingerprint(), self.fingerprint)
        env = dict(self.remote_env, MPCTL_CONNECT=self.daemon.address)
        self.assertEqual(self.remote_ok(["kv", "get", "d", "k"], secret, env=env), b"before\n")
        self.assertIn("durable", self.local_ok(["token", "list"]).decode())

    # --- 4. what is turned away ------------------------------------------------------------------------------

    def test_only_tls_1_3_is_offered(self):
        target = f"127.0.0.1:{self.daemon.port}"
        old = subprocess.run([OPENSSL, "s_client", "-connect", target, "-tls1_2"], stdin=subprocess.DEVNULL,
                             capture_output=True, timeout=60)
        self.assertNotEqual(old.returncode, 0, old.stdout)
        new = subprocess.run([OPENSSL, "s_client", "-connect", target, "-tls1_3"], stdin=subprocess.DEVNULL,
                             capture_output=True, timeout=60)
        self.assertEqual(new.returncode, 0, new.stderr)
        self.assertIn(b"TLSv1.3", new.stdout)
        self.assertEqual(self.local(["daemon", "status"]).returncode, 0)

    def test_a_plaintext_client_is_disconnected_and_the_daemon_still_serves(self):
        secret = self.token("after-plaintext")
        raw = socket.create_connection(("127.0.0.1", self.daemon.port), timeout=60)
        try:
            raw.sendall(b'{"jsonrpc":"2.0","id":1,"method":"daemon.status","params":{}}\n')
            got = b""
            while True:
                try:
                    chunk = raw.recv(65536)
                except ConnectionResetError:
                    break
                if not chunk:
                    break
                got += chunk
            self.assertNotIn(b"jsonrpc", got)  # at most a TLS alert: never an answer
        finally:
            raw.close()
        self.assertEqual(self.remote_ok(["kv", "set", "d", "k", "v"], secret), b"")
        self.assertEqual(self.local(["daemon", "status"]).returncode, 0)

    # --- 5. where nothing answers --------------------------------------------------------------------------------

    def test_a_remote_address_never_autostarts_a_daemon(self):
        socket_path = os.path.join(self.tmp.name, "autostart.sock")
        env = dict(self.remote_env, MPCTL_SOCKET=socket_path, MPCTL_CONNECT="tcp://127.0.0.1:1")
        env.pop("MPCTL_NO_AUTOSTART")
        done = self.remote(["kv", "get", "d", "k"], "mpt_" + "x" * 43, env=env)
        self.assertEqual(done.returncode, 3, done.stderr)
        self.assertFalse(os.path.exists(socket_path))

    def test_a_server_that_never_answers_ends_mpctl_with_exit_3(self):
        # The daemon's own certificate (so the pin matches), served by something that never answers.
        tls = os.path.join(self.state, "tls")
        server = TlsServer(os.path.join(tls, "cert.pem"), os.path.join(tls, "key.pem"))
        self.addCleanup(server.close)
        env = dict(self.remote_env, MPCTL_CONNECT=f"tcp://127.0.0.1:{server.port}")
        secret = "mpt_" + "h" * 43
        done = self.remote(["kv", "get", "d", "k"], secret, env=env)
        self.assertEqual(done.returncode, 3, done.stderr)
        self.assertIn(b"session.auth", done.stderr)
        until(lambda: len(server.connections()) == 1, "the server to see the connection end")
        sent = [json.loads(line) for line in server.connections()[0].splitlines()]
        self.assertEqual([(m["method"], m["params"]) for m in sent], [("session.auth", {"token": secret})])

    # --- helpers that need the test's directory ------------------------------------------------------------

    def make_certificate(self):
        cert = os.path.join(self.tmp.name, "other-cert.pem")
        key = os.path.join(self.tmp.name, "other-key.pem")
        done = subprocess.run([OPENSSL, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                               "-nodes", "-keyout", key, "-out", cert, "-days", "1", "-subj", "/CN=not-mpctld"],
                              stdin=subprocess.DEVNULL, capture_output=True, timeout=60)
        self.assertEqual(done.returncode, 0, done.stderr)
        return cert, key


if __name__ == "__main__":
    unittest.main()
