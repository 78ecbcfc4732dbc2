#!/usr/bin/env python3
"""mpctl.Client to a remote daemon (`mpctld --listen tcp://...`, proto/PROTOCOL.md, "Remote clients"): TLS 1.3
with the daemon's certificate pinned, then a token. Calls, pipelined calls from many threads, notifications,
mpctl.Queue and Dict (their waiting connections and their pickles) behave over TLS as over the Unix socket;
a wrong fingerprint is refused before anything is sent (a TLS server of this test, with the daemon's own key,
sees nothing; the daemon logs no authentication failure); a wrong or revoked token, and a method the token
does not allow, are Refused.

Each test has a daemon of its own listening on 127.0.0.1 (so that the daemon's count of failed
authentications per address starts afresh), its log in a file. Helper processes are killed on cleanup.
Nothing sleeps a fixed time for correctness: waits poll a condition against a generous deadline (or block
in the daemon with one), and no test asserts how long anything took."""
import json, os, pickle, queue, socket, ssl, subprocess, sys, threading, unittest
from unittest import mock

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from py_daemon import BIN, Connection, ListeningDaemon, until  # noqa: E402

SOURCE_DIR = os.environ.get("MPCTL_TEST_SOURCE_DIR") or os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
PYTHON_DIR = os.path.join(SOURCE_DIR, "python")
sys.path.insert(0, PYTHON_DIR)
import mpctl  # noqa: E402
import mpctl.futures  # noqa: E402
import mpctl.manager  # noqa: E402
import mpctl.sync  # noqa: E402

PYTHON = "/usr/bin/python3"
LONG = 60  # seconds: every wait that should end does so long before this
SETTINGS = ("MPCTL_CONNECT", "MPCTL_FINGERPRINT", "MPCTL_TOKEN", "MPCTL_SOCKET", "MPCTL_NO_AUTOSTART")

# Unpickles an mpctl.Queue or mpctl.Dict (hex of the pickle in argv[1]) and puts argv[2] through it: the
# daemon it reaches is what the pickle says, with this process's own $MPCTL_TOKEN.
CHILD_PUT = r"""
import pickle, sys, mpctl
obj = pickle.loads(bytes.fromhex(sys.argv[1]))
if isinstance(obj, mpctl.Queue):
    obj.put(sys.argv[2])
else:
    obj["from-child"] = sys.argv[2]
print(obj.client.remote, obj.client.address)
"""


class RemoteDaemon(ListeningDaemon):
    """A ListeningDaemon with its FINGERPRINT (mpctld --print-fingerprint) and LOCAL, a line-by-line
    connection over the Unix socket."""

    def __init__(self):
        self.local = None
        super().__init__()
        printed = subprocess.run([os.path.join(BIN, "mpctld"), "--state-dir", self.state, "--print-fingerprint"],
                                 capture_output=True, stdin=subprocess.DEVNULL, timeout=120)
        if printed.returncode != 0:
            raise RuntimeError(f"mpctld --print-fingerprint: {printed.stderr.decode()}")
        self.fingerprint = printed.stdout.decode().strip()
        self.local = Connection(self.socket)

    def token(self, name, methods=None):
        params = {"name": name} if methods is None else {"name": name, "methods": methods}
        return self.local.result("token.create", params)["token"]

    def getters(self, name):
        """The gets waiting on queue NAME (0 when the daemon does not know it)."""
        answer = self.local.call("queue.info", {"name": name})
        return 0 if "error" in answer else answer["result"]["getters"]

    def stop(self):
        if self.local is not None:
            self.local.close()
        super().stop()

class FakeServer:
    """A TLS 1.3 server of this test on 127.0.0.1 with the daemon's own certificate and key: for one
    connection, says whether the handshake completed and what the client sent (up to its first line)."""

    def __init__(self, daemon):
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.minimum_version = ssl.TLSVersion.TLSv1_3
        tls = os.path.join(daemon.state, "tls")
        self.context.load_cert_chain(os.path.join(tls, "cert.pem"), os.path.join(tls, "key.pem"))
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(LONG * 2)
        self.address = "tcp://127.0.0.1:%d" % self.listener.getsockname()[1]
        self.handshake_done, self.received, self.error = False, b"", None
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        try:
            conn, _ = self.listener.accept()
        except OSError as error:
            self.error = error
            return
        conn.settimeout(LONG * 2)
        tls = self.context.wrap_socket(conn, server_side=True, do_handshake_on_connect=False)
        try:
            tls.do_handshake()  # fails when the client closes without its Finished
            self.handshake_done = True
            while not self.received.endswith(b"\n"):
                data = tls.recv(1 << 16)
                if not data:
                    break
                self.received += data
        except OSError as error:  # ssl.SSLError among them
            self.error = error
        finally:
            tls.close()

    def result(self):
        self.thread.join(LONG * 3)
        self.listener.close()
        return self.handshake_done, self.received


class RemoteCase(unittest.TestCase):
    def setUp(self):
        environment = mock.patch.dict(os.environ)
        environment.start()
        self.addCleanup(environment.stop)
        for name in SETTINGS:
            os.environ.pop(name, None)
        # Nothing local may be reached by accident: a local Client here fails at once.
        os.environ["MPCTL_SOCKET"] = "/nonexistent-mpctl-test/d.sock"
        os.environ["MPCTL_NO_AUTOSTART"] = "1"
        self.daemon = RemoteDaemon()
        self.addCleanup(self.daemon.stop)  # registered first: runs after every client is closed
        self.token = self.daemon.token("all")

    def remote(self, token=None, fingerprint=None):
        client = mpctl.Client(connect=self.daemon.address, fingerprint=fingerprint or self.daemon.fingerprint,
                              token=token or self.token)
        self.addCleanup(client.close)
        return client

    def child_env(self, **extra):
        env = {k: v for k, v in os.environ.items() if k not in SETTINGS}
        env.update(MPCTL_SOCKET="/nonexistent-mpctl-test/d.sock", MPCTL_NO_AUTOSTART="1", PYTHONPATH=PYTHON_DIR,
                   **extra)
        return env

    # ---- calls -------------------------------------------------------------------------------------------

    def test_calls_answer_as_they_do_locally(self):
        client = self.remote()
        self.assertTrue(client.remote)
        self.assertIsNone(client.socket_path)
        self.assertEqual(client.address, self.daemon.address)
        self.assertEqual(client.fingerprint, self.daemon.fingerprint)
        self.assertEqual(client.session, {"name": "all", "methods": ["*"]})
        self.assertIn(self.daemon.address, repr(client))
        client.call("kv.set", name="d", key="k", value={"a": [1, "two", None]})
        self.assertEqual(self.daemon.local.result("kv.get", {"name": "d", "key": "k"})["value"],
                         {"a": [1, "two", None]}, "what the remote client set is the daemon's")
        self.assertEqual(client.call("kv.get", {"name": "d"}, key="k")["value"], {"a": [1, "two", None]})
        with self.assertRaises(mpctl.UnknownId):
            client.call("kv.get", name="d", key="missing")
        with self.assertRaises(mpctl.Refused):
            client.call("token.create", name="from-afar")  # never allowed remotely
        self.assertIsNone(client.lost, "an error answer leaves the connection up")
        self.assertEqual(client.call("kv.get", name="d", key="k")["version"], 1)

        # The fingerprint as people write it: without "SHA256:", upper case, with colons.
        digits = self.daemon.fingerprint.split(":", 1)[1]
        for written in (digits, digits.upper(), "sha256:" + ":".join(digits[i:i + 2] for i in range(0, 64, 2))):
            with self.subTest(fingerprint=written):
                with self.remote(fingerprint=written) as other:
                    self.assertEqual(other.call("kv.get", name="d", key="k")["version"], 1)

        # options(): another connection to the same daemon, the same way.
        self.assertEqual(client.options(), {"connect": self.daemon.address, "fingerprint": self.daemon.fingerprint,
                                            "token": self.token})
        with mpctl.Client(**client.options()) as again:
            self.assertTrue(again.remote)
            self.assertEqual(again.call("kv.list", name="d")["version"], 1)

    def test_the_environment_says_where_unless_a_socket_is_given(self):
        os.environ.update(MPCTL_CONNECT=self.daemon.address, MPCTL_FINGERPRINT=self.daemon.fingerprint,
                          MPCTL_TOKEN=self.token)
        with mpctl.Client() as client:
            self.assertTrue(client.remote)
            self.assertEqual(client.address, self.daemon.address)
            self.assertEqual(client.call("daemon.status")["listen"], [self.daemon.address])
        with mpctl.Client(socket=self.daemon.socket) as local:
            self.assertFalse(local.remote, "an explicit socket wins over $MPCTL_CONNECT")
            self.assertEqual(local.socket_path, self.daemon.socket)
            self.assertEqual(local.options(), {"socket": self.daemon.socket})
            self.assertEqual(local.call("token.list")["tokens"][0]["name"], "all")
        # The default client of mpctl.sync (and so of Queue, Dict, FileLock...) follows the environment too.
        self.assertTrue(mpctl.sync.default_client().remote)

        del os.environ["MPCTL_FINGERPRINT"]
        with self.assertRaisesRegex(ValueError, "fingerprint"):
            mpctl.Client()
        os.environ["MPCTL_FINGERPRINT"] = "SHA256:1234"
        with self.assertRaisesRegex(ValueError, "not a SHA-256 fingerprint"):
            mpctl.Client()
        os.environ["MPCTL_FINGERPRINT"] = self.daemon.fingerprint
        del os.environ["MPCTL_TOKEN"]
        with self.assertRaisesRegex(ValueError, "token"):
            mpctl.Client()
        for address in ("127.0.0.1:1", "http://127.0.0.1:1", "tcp://127.0.0.1", "tcp://::1:5", "tcp://[::1]",
                        "tcp://:5", "tcp://host:0", "tcp://host:65536", "tcp://host:x"):
            with self.subTest(address=address):
                with self.assertRaisesRegex(ValueError, "tcp://HOST:PORT"):
                    mpctl.Client(connect=address, fingerprint=self.daemon.fingerprint, token=self.token)
        with self.assertRaisesRegex(ValueError, "one or the other"):
            mpctl.Client(socket=self.daemon.socket, connect=self.daemon.address)
        self.assertNotIn("authentication failed", self.daemon.log(), "nothing went to the daemon")

    def test_nothing_listening_is_no_daemon(self):
        with socket.create_server(("127.0.0.1", 0)) as probe:
            port = probe.getsockname()[1]
        with self.assertRaises(mpctl.NoDaemon):
            mpctl.Client(connect=f"tcp://127.0.0.1:{port}", fingerprint=self.daemon.fingerprint, token=self.token)

    def test_pipelined_calls_from_eight_threads_get_their_own_answers(self):
        client = self.remote()
        start, errors = threading.Barrier(8), []
        big = "x" * 300000  # some requests and answers span many TLS records

        def work(t):
            try:
                start.wait(LONG)
                values = {f"{t}.{i}": [t, i, big if i % 40 == 0 else i * "y"] for i in range(200)}
                sets = {key: client.call_async("kv.set", name="p", key=key, value=value)
                        for key, value in values.items()}
                gets = {key: client.call_async("kv.get", name="p", key=key) for key in values}
                for key, future in sets.items():
                    if future.result(LONG)["key"] != key:
                        errors.append(f"kv.set {key} was answered {future.result()}")
                for key, future in gets.items():
                    got = future.result(LONG)
                    if (got["key"], got["value"]) != (key, values[key]):
                        errors.append(f"kv.get {key} was answered {got['key']}")
            except Exception as error:
                errors.append(f"thread {t}: {error!r}")

        threads = [threading.Thread(target=work, args=(t,)) for t in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(LONG * 4)
        self.assertFalse(any(thread.is_alive() for thread in threads), "a thread still waits")
        self.assertEqual(errors, [])
        self.assertIsNone(client.lost)
        self.assertEqual(len(self.daemon.local.result("kv.list", {"name": "p"})["entries"]), 1600)

    # ---- notifications -----------------------------------------------------------------------------------

    def test_notifications_stream_over_tls(self):
        client = self.remote()
        subscribed, taken = queue.SimpleQueue(), queue.SimpleQueue()
        client.subscribe("kv.changed", subscribed.put)
        watch = client.call_async("kv.watch", {"name": "w", "timeout": LONG * 2},
                                  on_notification=lambda method, params: taken.put((method, params)))
        client.call("kv.list", name="w")  # answered after the watch was taken: it is in place
        for i in range(20):
            self.daemon.local.result("kv.set", {"name": "w", "key": f"k{i}", "value": i})
        self.daemon.local.result("kv.del", {"name": "w", "key": "k0"})
        seen = [subscribed.get(timeout=LONG) for _ in range(21)]
        self.assertEqual([(c["key"], c.get("value"), c["version"]) for c in seen[:20]],
                         [(f"k{i}", i, i + 1) for i in range(20)])
        self.assertEqual((seen[20]["key"], seen[20].get("deleted"), seen[20]["version"]), ("k0", True, 21))
        streamed = [taken.get(timeout=LONG) for _ in range(21)]
        self.assertEqual([(method, params) for method, params in streamed], [("kv.changed", c) for c in seen])
        self.assertFalse(watch.done(), "the watch goes on")

        # A Dict's watch takes a connection of its own: to the same remote daemon.
        stats = mpctl.Dict("w2", client=client)
        with stats.watch(timeout=LONG * 2) as changes:
            self.assertTrue(changes._connection.remote)
            self.daemon.local.result("kv.set", {"name": "w2", "key": "n", "value": [1]})
            self.assertEqual(next(changes), {"name": "w2", "key": "n", "value": [1], "deleted": False, "version": 1})

    def test_a_command_executor_over_tls(self):
        client = self.remote()
        os.environ["MPCTL_TOKEN"] = "mpt_a-secret-that-stays-here"
        with mpctl.futures.CommandExecutor(client=client) as executor:
            done = executor.submit(["sh", "-c", "echo ${MPCTL_TOKEN:-none}; echo err >&2"]).result(LONG)
        self.assertEqual((done.returncode, done.stdout, done.stderr), (0, b"none\n", b"err\n"),
                         "the task ran, its end came as task.completed, and the token did not go with its env")
        with self.assertRaisesRegex(ValueError, "ProcessPoolExecutor needs the daemon of this machine"):
            mpctl.futures.ProcessPoolExecutor(client=client)

    # ---- Queue and Dict ----------------------------------------------------------------------------------

    def test_queue_and_dict_over_a_remote_client(self):
        client = self.remote()
        jobs = mpctl.Queue("jobs", client=client)
        got = queue.SimpleQueue()
        getter = threading.Thread(target=lambda: got.put(jobs.get(timeout=LONG * 2)), daemon=True)
        getter.start()
        until(lambda: self.daemon.getters("jobs") == 1, "the remote get to wait", LONG)
        self.daemon.local.result("queue.put", {"name": "jobs", "values": [{"n": 1}]})  # another connection
        self.assertEqual(got.get(timeout=LONG), {"n": 1}, "the blocked get was woken by another connection's put")
        getter.join(LONG)
        kept = mpctl.manager._waiters.idle.get(client._key, [])
        self.assertTrue(kept and all(c.remote and c.address == self.daemon.address for c in kept),
                        "the get waited on a connection of its own, to the remote daemon")
        jobs.put((1, "two"))  # pickled: any value goes as locally
        jobs.put_many([b"\x00\xff", {"x": 1.5}])
        self.assertEqual(jobs.qsize(), 3)
        self.assertEqual([jobs.get_nowait() for _ in range(3)], [(1, "two"), b"\x00\xff", {"x": 1.5}])
        with self.assertRaises(queue.Empty):
            jobs.get(timeout=0.01)

        stats = mpctl.Dict("stats", client=client)
        stats["n"] = 1
        self.assertTrue(stats.compare_and_set("n", 1, 2))
        self.assertFalse(stats.compare_and_set("n", 1, 3))
        self.assertEqual(stats.setdefault("m", (4,)), (4,))
        self.assertEqual(self.daemon.local.result("kv.get", {"name": "stats", "key": "n"})["value"], 2)
        self.assertEqual(dict(stats.items()), {"n": 2, "m": (4,)})

        # A pickle says where the daemon is, never the token; the process that unpickles it has its own.
        for obj in (jobs, stats):
            data = pickle.dumps(obj)
            self.assertNotIn(self.token.encode(), data)
            copy = pickle.loads(data)
            self.assertEqual(copy._where, {"connect": self.daemon.address, "fingerprint": self.daemon.fingerprint})
            done = subprocess.run([PYTHON, "-c", CHILD_PUT, data.hex(), "from a child"], capture_output=True,
                                  stdin=subprocess.DEVNULL, env=self.child_env(MPCTL_TOKEN=self.token), timeout=120)
            self.assertEqual(done.returncode, 0, done.stderr.decode())
            self.assertEqual(done.stdout.decode().split(), ["True", self.daemon.address])
            no_token = subprocess.run([PYTHON, "-c", CHILD_PUT, data.hex(), "never"], capture_output=True,
                                      stdin=subprocess.DEVNULL, env=self.child_env(), timeout=120)
            self.assertNotEqual(no_token.returncode, 0)
            self.assertIn("needs a token", no_token.stderr.decode())
        self.assertEqual(jobs.get(timeout=LONG), "from a child")
        self.assertEqual(stats["from-child"], "from a child")
        with self.assertRaises(queue.Empty):
            jobs.get_nowait()

    def test_a_file_lock_over_tls_is_leased_to_the_connection(self):
        client = self.remote()
        path = os.path.join(self.daemon.dir, "remote.lock")
        lock = mpctl.FileLock(path, client=client)
        with lock.acquire(timeout=LONG):
            self.assertEqual(subprocess.run(["flock", "-n", path, "true"], timeout=120).returncode, 1)
            holders = self.daemon.local.result("lock.list", {"path": path})["locks"][0]["holders"]
            self.assertEqual([h["lease"]["kind"] for h in holders], ["connection"])
        self.assertEqual(subprocess.run(["flock", "-n", path, "true"], timeout=120).returncode, 0)

    def test_close_fails_the_calls_in_flight_as_locally(self):
        client = self.remote()
        waiting = client.call_async("queue.get", name="never", timeout=LONG * 2)
        until(lambda: self.daemon.getters("never") == 1, "the get to wait", LONG)
        client.close()
        self.assertIsInstance(waiting.exception(LONG), mpctl.ConnectionLost)
        self.assertIsInstance(client.lost, mpctl.ConnectionLost)
        with self.assertRaises(mpctl.ConnectionLost):
            client.call("kv.list", name="x")
        client.close()  # again: nothing happens
        with mpctl.Client(connect=self.daemon.address, fingerprint=self.daemon.fingerprint, token=self.token) as again:
            self.assertEqual(again.call("kv.list", name="x")["version"], 0, "the daemon serves on")
        self.assertNotIn("authentication failed", self.daemon.log())

    def test_descriptors_cannot_go_over_tls(self):
        client = self.remote()
        read, write = os.pipe()
        self.addCleanup(os.close, read)
        self.addCleanup(os.close, write)
        with self.assertRaisesRegex(ValueError, "descriptors cannot be passed to a remote daemon"):
            client.call("task.submit", {"argv": ["cat"], "stdin_fd": True}, fds=[read])
        self.assertEqual(self.daemon.local.result("task.list", {})["tasks"], [], "nothing was sent")
        self.assertIsNone(client.lost)
        self.assertEqual(client.call("kv.list", name="x")["version"], 0)

    # ---- refusals ----------------------------------------------------------------------------------------

    def test_a_wrong_fingerprint_is_refused_before_anything_is_sent(self):
        digits = self.daemon.fingerprint.split(":", 1)[1]
        wrong = "SHA256:" + ("0" if digits[0] != "0" else "1") + digits[1:]
        with self.assertRaises(mpctl.FingerprintMismatch) as caught:
            mpctl.Client(connect=self.daemon.address, fingerprint=wrong, token=self.token)
        error = caught.exception
        self.assertIsInstance(error, mpctl.Refused)
        self.assertIn(wrong, str(error))
        self.assertIn(self.daemon.fingerprint, str(error))
        self.assertEqual((error.expected, error.got), (wrong, self.daemon.fingerprint))
        # The daemon saw a handshake that never finished, and no request: no authentication failed.
        until(lambda: "TLS handshake failed" in self.daemon.log(), "the daemon to log the handshake", LONG)
        log = self.daemon.log()
        self.assertNotIn("authentication failed", log)
        self.assertNotIn("authenticated with token", log)

        # A server with the daemon's key that records what comes: nothing after the ClientHello with a
        # wrong fingerprint (not even the client's Finished); the session.auth first with the right one.
        server = FakeServer(self.daemon)
        with self.assertRaises(mpctl.FingerprintMismatch):
            mpctl.Client(connect=server.address, fingerprint=wrong, token=self.token)
        self.assertEqual(server.result(), (False, b""))
        server = FakeServer(self.daemon)
        with self.assertRaises(mpctl.ConnectionLost):  # it closes without answering
            mpctl.Client(connect=server.address, fingerprint=self.daemon.fingerprint, token=self.token)
        handshake_done, received = server.result()
        self.assertTrue(handshake_done)
        self.assertEqual(json.loads(received), {"jsonrpc": "2.0", "id": 1, "method": "session.auth",
                                                "params": {"token": self.token}})

    def test_a_wrong_or_revoked_token_is_refused(self):
        with self.assertRaisesRegex(mpctl.Refused, "unknown or revoked") as caught:
            mpctl.Client(connect=self.daemon.address, fingerprint=self.daemon.fingerprint, token="mpt_" + "x" * 43)
        self.assertNotIsInstance(caught.exception, mpctl.FingerprintMismatch)

        revoked = self.daemon.token("soon-gone")
        client = self.remote(token=revoked)
        self.assertEqual(client.session["name"], "soon-gone")
        self.assertEqual(self.daemon.local.result("token.revoke", {"name": "soon-gone"})["closed"], 1)
        until(lambda: client.lost is not None, "the revoked session to be closed", LONG)
        with self.assertRaises(mpctl.ConnectionLost):
            client.call("kv.list", name="x")
        with self.assertRaisesRegex(mpctl.Refused, "unknown or revoked"):
            self.remote(token=revoked)
        self.assertEqual(self.daemon.log().count("authentication failed"), 2)

    def test_a_token_for_kv_only_cannot_call_queue_put(self):
        client = self.remote(token=self.daemon.token("kv-only", ["kv.*"]))
        self.assertEqual(client.session, {"name": "kv-only", "methods": ["kv.*"]})
        client.call("kv.set", name="d", key="k", value=1)
        with self.assertRaisesRegex(mpctl.Refused, "queue.put"):
            client.call("queue.put", name="q", values=[1])
        with self.assertRaisesRegex(mpctl.Refused, "queue.put"):
            mpctl.Queue("q", client=client).put(1)
        self.assertEqual(mpctl.Dict("d", client=client)["k"], 1, "the session goes on")
        self.assertEqual(self.daemon.getters("q"), 0)
        self.assertIn("unknown_id", json.dumps(self.daemon.local.call("queue.info", {"name": "q"})),
                      "nothing was put")


if __name__ == "__main__":
    unittest.main(verbosity=2)
