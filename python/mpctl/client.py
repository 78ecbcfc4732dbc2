"""mpctl.Client: the daemon's JSON-RPC protocol (proto/PROTOCOL.md) over its Unix socket, or over TLS to a
remote daemon (`mpctld --listen`, PROTOCOL.md, "Remote clients"), for Python programs.

One connection, shared by every thread: requests are pipelined (each call writes its line under a lock and
waits for the answer with its id), and one reader thread matches answers to calls as they come, in any
order, and hands notifications (task.output, task.completed) to the calls that stream them. A daemon that
is not running is started as the mpctl CLI starts it (`mpctl daemon start`), unless autostart is off (a
remote one never is). Errors are raised as subclasses of mpctl.Error that carry the JSON-RPC code and the
error's name.

Remotely, TLS runs on an ssl.SSLObject over memory BIOs rather than an ssl.SSLSocket, since OpenSSL's SSL
object must not be used by two threads at once and here the reader thread reads while callers write: every
call into the SSLObject is made under one lock, the socket is read and written outside it, and what the
SSLObject produces (from a write, or from a read: TLS 1.3 key updates) is sent in the order it was produced.
"""
import array, concurrent.futures, errno, hashlib, itertools, json, os, re, shutil, socket, ssl, subprocess
import threading, time

from mpctl._jsonline import compact

__all__ = ["Client", "Error", "ParseError", "InvalidRequest", "MethodNotFound", "InvalidParams", "InternalError",
           "UnknownId", "UnknownTask", "Busy", "Timeout", "Refused", "InvalidState", "ShuttingDown", "DaemonIOError",
           "Deadlock", "ConnectionLost", "NoDaemon", "FingerprintMismatch", "RawJSON", "socket_path"]


class Error(Exception):
    """An error answer of the daemon (or the lack of one): CODE is the JSON-RPC code, NAME the error's name
    (`data.error`), DATA the error's data object, MESSAGE the daemon's words."""
    code, name = None, None

    def __init__(self, message, code=None, name=None, data=None):
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        if name is not None:
            self.name = name
        self.data = data or {}


class ParseError(Error):
    code, name = -32700, "parse_error"


class InvalidRequest(Error):
    code, name = -32600, "invalid_request"


class MethodNotFound(Error):
    code, name = -32601, "method_not_found"


class InvalidParams(Error, ValueError):
    code, name = -32602, "invalid_params"


class InternalError(Error):
    code, name = -32603, "internal_error"


class UnknownId(Error, LookupError):
    """No task, pool, lock or segment by that id or name."""
    code, name = -32001, "unknown_id"


UnknownTask = UnknownId


class Busy(Error):
    code, name = -32002, "busy"


class Timeout(Error, TimeoutError):
    code, name = -32003, "timeout"


class Refused(Error, PermissionError):
    code, name = -32004, "refused"


class InvalidState(Error):
    code, name = -32005, "invalid_state"


class ShuttingDown(Error):
    code, name = -32006, "shutting_down"


class DaemonIOError(Error, OSError):
    """The daemon could not write its journal or files (disk full...)."""
    code, name = -32007, "io_error"


class Deadlock(Error):
    code, name = -32008, "deadlock"


class ConnectionLost(Error, ConnectionError):
    """The daemon closed the connection (it stopped or was killed) before answering."""
    name = "connection_lost"


class NoDaemon(Error, ConnectionError):
    """No daemon answers at the socket (or the remote address), and none could be started."""
    name = "no_daemon"


class FingerprintMismatch(Refused):
    """The remote daemon showed a certificate other than the one pinned: nothing was sent to it. EXPECTED
    and GOT are the two fingerprints, as `SHA256:` and 64 lowercase hex digits."""
    name = "fingerprint_mismatch"

    def __init__(self, message, expected=None, got=None):
        super().__init__(message, data={"expected": expected, "got": got})
        self.expected, self.got = expected, got


ERRORS = {cls.code: cls for cls in (ParseError, InvalidRequest, MethodNotFound, InvalidParams, InternalError,
                                     UnknownId, Busy, Timeout, Refused, InvalidState, ShuttingDown, DaemonIOError,
                                     Deadlock)}


MAX_REQUEST = 1 << 20  # bytes in a request line, its newline aside (PROTOCOL.md, "Framing")


def socket_path(path=None):
    """The daemon's socket, as mpctl finds it: PATH > $MPCTL_SOCKET > $XDG_RUNTIME_DIR/mpctl/mpctld.sock >
    /tmp/mpctl-$UID/mpctld.sock."""
    if path:
        return os.fspath(path)
    if os.environ.get("MPCTL_SOCKET"):
        return os.environ["MPCTL_SOCKET"]
    if os.environ.get("XDG_RUNTIME_DIR"):
        return os.path.join(os.environ["XDG_RUNTIME_DIR"], "mpctl", "mpctld.sock")
    return f"/tmp/mpctl-{os.getuid()}/mpctld.sock"


_CONNECT_SECONDS = 30  # to reach a remote daemon, agree on TLS and be authenticated; nothing later times out
_FINGERPRINT = re.compile(r"[0-9a-f]{64}")


def _fingerprint(text):
    """TEXT, a SHA-256 fingerprint ("SHA256:" or not, hex with or without colons, any case), as `SHA256:`
    and 64 lowercase hex digits; ValueError if it is none."""
    if not isinstance(text, str):
        raise TypeError(f"a fingerprint is a str, not {type(text).__name__}")
    digits = text.strip()
    if digits[:7].upper() == "SHA256:":
        digits = digits[7:]
    digits = digits.replace(":", "").lower()
    if not _FINGERPRINT.fullmatch(digits):
        raise ValueError(f"not a SHA-256 fingerprint: {text!r} (SHA256: and 64 hex digits, as "
                         f"`mpctld --print-fingerprint` prints it)")
    return "SHA256:" + digits


def _host_port(address):
    """tcp://HOST:PORT (an IPv6 HOST in brackets) as (HOST, PORT); ValueError if it is not one."""
    def bad(why):
        return ValueError(f"{why}: {address!r} (a remote daemon is tcp://HOST:PORT; an IPv6 address in "
                          f"brackets: tcp://[::1]:PORT)")
    if not isinstance(address, str) or not address.startswith("tcp://"):
        raise bad("not a tcp:// address")
    rest = address[len("tcp://"):]
    if rest.startswith("["):
        host, bracket, port = rest[1:].partition("]")
        if not bracket or not port.startswith(":"):
            raise bad("an IPv6 address is written [ADDRESS]:PORT")
        port = port[1:]
    else:
        host, colon, port = rest.rpartition(":")
        if not colon:
            raise bad("no port")
        if ":" in host:
            raise bad("an IPv6 address goes in brackets")
    if not host or any(c in host for c in "/[] "):
        raise bad("no host")
    if not (port.isascii() and port.isdigit() and len(port) <= 5 and 1 <= int(port) <= 65535):
        raise bad("the port must be from 1 to 65535")
    return host, int(port)


def _where(socket=None, connect=None, fingerprint=None, token=None):
    """Where a Client made with these arguments goes, its defaults taken from the environment:
    {"socket": path} (see socket_path()), or {"connect", "fingerprint", "token"} for a remote daemon: CONNECT,
    else $MPCTL_CONNECT unless SOCKET is given; FINGERPRINT (normalized) else $MPCTL_FINGERPRINT; TOKEN else
    $MPCTL_TOKEN (either may be None here: Client says what is missing)."""
    if socket is not None and connect is not None:
        raise ValueError("socket (a Unix socket's path) or connect (tcp://HOST:PORT): one or the other")
    if socket is None and connect is None and os.environ.get("MPCTL_CONNECT"):
        connect = os.environ["MPCTL_CONNECT"]
    if connect is None:
        return {"socket": socket_path(socket)}
    if fingerprint is None:
        fingerprint = os.environ.get("MPCTL_FINGERPRINT") or None
    if token is None:
        token = os.environ.get("MPCTL_TOKEN") or None
    return {"connect": connect, "fingerprint": None if fingerprint is None else _fingerprint(fingerprint),
            "token": token}


def _where_key(where):
    """_where()'s answer as a dict key: the same daemon, reached the same way."""
    return tuple(sorted(where.items()))


def _error_from(answer_error):
    data = answer_error.get("data") if isinstance(answer_error.get("data"), dict) else {}
    code = answer_error.get("code")
    cls = ERRORS.get(code, Error)
    return cls(answer_error.get("message", ""), code=code, name=data.get("error"), data=data)


class RawJSON(str):
    """Params already written as JSON text (an object), for a caller that has encoded them (or their parts)
    already: sent as they are."""


class _Call:
    """A request in flight: its answer's future, and what its notifications go to."""
    __slots__ = ("future", "on_notification")

    def __init__(self, on_notification):
        self.future, self.on_notification = concurrent.futures.Future(), on_notification


class _TLSStream:
    """TLS 1.3 over the TCP socket SOCK, on an ssl.SSLObject and two memory BIOs, for one reader thread and
    any number of writing threads (writers ordered by their caller). Every SSLObject and BIO call is made
    under _ssl_lock, never across a socket call; bytes the SSLObject produced are sent under _send_lock,
    taken from the outgoing BIO in the same critical section, so that they go in the order they were made."""

    def __init__(self, sock):
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.minimum_version = context.maximum_version = ssl.TLSVersion.TLSv1_3
        context.check_hostname = False  # the certificate is pinned instead (no certificate authority)
        context.verify_mode = ssl.CERT_NONE
        self._sock = sock
        self._incoming, self._outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        self._ssl = context.wrap_bio(self._incoming, self._outgoing, server_side=False)
        self._ssl_lock = threading.Lock()
        self._send_lock = threading.Lock()
        self._unsent = b""  # taken from the outgoing BIO and not sent yet (under _send_lock)

    def handshake(self):
        """Agree on TLS up to the handshake's last message, which is not sent yet (see finish()): the server
        certificate's fingerprint ("SHA256:" and hex), None if it showed none."""
        while True:
            with self._ssl_lock:
                try:
                    self._ssl.do_handshake()
                    break
                except ssl.SSLWantReadError:
                    pass
            self._flush(block=True)
            data = self._sock.recv(1 << 16)
            if not data:
                raise ConnectionResetError(errno.ECONNRESET, "closed during the TLS handshake")
            with self._ssl_lock:
                self._incoming.write(data)
        with self._ssl_lock:
            der = self._ssl.getpeercert(binary_form=True)
        return "SHA256:" + hashlib.sha256(der).hexdigest() if der else None

    def finish(self):
        """Send the client's Finished: once the certificate is known to be the pinned one."""
        self._flush(block=True)

    def sendall(self, data):
        with self._ssl_lock:
            view = memoryview(data)
            while view:
                view = view[self._ssl.write(view):]
        self._flush(block=True)

    def recv(self, size):
        """Up to SIZE bytes of plaintext; b"" once the daemon closed the connection."""
        while True:
            with self._ssl_lock:
                try:
                    data = self._ssl.read(size)
                except ssl.SSLWantReadError:
                    data = None
                except ssl.SSLZeroReturnError:  # the daemon's close_notify
                    data = b""
            self._flush(block=False)  # a read may have produced records (a key update's answer)
            if data is not None:
                return data
            raw = self._sock.recv(1 << 17)
            if not raw:
                return b""
            with self._ssl_lock:
                self._incoming.write(raw)

    def close_notify(self):
        """Say the connection ends (TLS close_notify), as far as that can go without waiting."""
        with self._ssl_lock:
            try:
                self._ssl.unwrap()
            except (ssl.SSLError, ValueError):
                pass  # ssl.SSLWantReadError: the daemon's close_notify has not come, and is not waited for
        try:
            self._flush(block=False)
        except OSError:
            pass

    def _flush(self, block):
        """Send what the SSLObject produced, in order. BLOCK false (the reader thread, which must never wait
        for the socket: the daemon may be waiting for it to read) leaves the bytes to whoever holds
        _send_lock, who looks again once it let go, and leaves what a full socket does not take to the next
        flush."""
        while True:
            if not self._send_lock.acquire(blocking=block):
                return
            try:
                while True:
                    if not self._unsent:
                        with self._ssl_lock:
                            self._unsent = self._outgoing.read()
                        if not self._unsent:
                            break
                    if block:
                        self._sock.sendall(self._unsent)
                        self._unsent = b""
                    else:
                        try:
                            sent = self._sock.send(self._unsent, socket.MSG_DONTWAIT)
                        except (BlockingIOError, InterruptedError):
                            return
                        self._unsent = self._unsent[sent:]
            finally:
                self._send_lock.release()
            with self._ssl_lock:
                if not self._outgoing.pending:
                    return


class Client:
    """A connection to mpctld. SOCKET: see socket_path(). AUTOSTART (default: on unless $MPCTL_NO_AUTOSTART
    is set): start the daemon with `MPCTL_BIN daemon start` when nobody answers (MPCTL_BIN: the mpctl
    argument, else $MPCTL_BIN, else `mpctl` in PATH). Thread-safe; a context manager that closes it.

    CONNECT ("tcp://HOST:PORT", an IPv6 HOST in brackets; default $MPCTL_CONNECT unless SOCKET is given) is
    a remote daemon (`mpctld --listen`), reached over TLS 1.3: its certificate must have FINGERPRINT (default
    $MPCTL_FINGERPRINT; what `mpctld --print-fingerprint` prints; "SHA256:" optional, colons and case
    ignored), else FingerprintMismatch (a Refused) is raised and nothing was sent; then the session is
    authenticated with TOKEN (default $MPCTL_TOKEN; `mpctl token create` makes one on the daemon's machine),
    a refusal raised as Refused. A missing fingerprint or token is ValueError. Remotely nothing is started,
    and no descriptors can be passed (fds: ValueError).

    remote says which it is; address is the socket's path or the tcp:// address; socket_path is the path
    (None remotely); fingerprint the pinned one (None locally); session what session.auth answered
    ({"name", "methods"}; None locally); options() the arguments of another Client to the same daemon."""

    def __init__(self, socket=None, *, autostart=None, mpctl=None, connect=None, fingerprint=None, token=None):
        where = _where(socket, connect, fingerprint, token)
        self.remote = "connect" in where
        self._where = where
        self._write_lock = threading.Lock()
        self._calls = {}
        self._calls_lock = threading.Lock()
        self._ids = itertools.count(1)
        self._lost = None  # the ConnectionLost every later call gets, once the connection is gone
        self._subscribers = {}  # notification method -> [callback]
        self.session = None
        if not self.remote:
            self.socket_path = self.address = where["socket"]
            self.fingerprint = None
            if autostart is None:
                autostart = os.environ.get("MPCTL_NO_AUTOSTART", "") in ("", "0")
            self._sock = self._stream = self._connect(autostart, mpctl)
            self._tls = None
        else:
            self.socket_path, self.address, self.fingerprint = None, where["connect"], where["fingerprint"]
            host, port = _host_port(self.address)
            if self.fingerprint is None:
                raise ValueError(f"connecting to {self.address} needs the daemon's certificate fingerprint "
                                 f"(fingerprint=, or $MPCTL_FINGERPRINT): `mpctld --print-fingerprint` on the "
                                 f"daemon's machine prints it")
            if not where["token"]:
                raise ValueError(f"connecting to {self.address} needs a token (token=, or $MPCTL_TOKEN): "
                                 f"`mpctl token create NAME` on the daemon's machine makes one")
            self._sock, self._tls = self._connect_remote(host, port)
            self._stream = self._tls
        self._reader = threading.Thread(target=self._read, name="mpctl-client-reader", daemon=True)
        self._reader.start()
        if self.remote:
            self._authenticate(where["token"])

    def options(self):
        """The arguments of a Client to the same daemon, reached the same way: {"socket": path}, or
        {"connect", "fingerprint", "token"} (the token is a secret: this is for this process's use)."""
        return dict(self._where)

    @property
    def _key(self):
        return _where_key(self._where)

    def __repr__(self):
        return f"<{type(self).__module__}.{type(self).__name__} {self.address}{' lost' if self._lost else ''}>"

    # ---- connecting ----

    def _connect(self, autostart, mpctl):
        try:
            return self._try_connect()
        except (FileNotFoundError, ConnectionRefusedError) as error:
            if not autostart:
                raise NoDaemon(f"no daemon at {self.socket_path} ({error.strerror}; autostart is off)") from None
        binary = mpctl or os.environ.get("MPCTL_BIN") or shutil.which("mpctl")
        if binary is None:
            raise NoDaemon(f"no daemon at {self.socket_path}, and no mpctl to start one (set MPCTL_BIN)")
        started = subprocess.run([binary, "--socket", self.socket_path, "daemon", "start"], stdin=subprocess.DEVNULL,
                                 stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        if started.returncode != 0:
            said = started.stdout.decode(errors="replace").strip()
            raise NoDaemon(f"no daemon at {self.socket_path} and none could be started: {said}")
        deadline, delay = time.monotonic() + 15, 0.002
        while True:  # it is serving once `daemon start` returns; another may have been starting: retry briefly
            try:
                return self._try_connect()
            except (FileNotFoundError, ConnectionRefusedError) as error:
                if time.monotonic() > deadline:
                    raise NoDaemon(f"started mpctld, but nothing answers at {self.socket_path}: "
                                   f"{error.strerror}") from None
                time.sleep(delay)
                delay = min(delay * 2, 0.25)

    def _connect_remote(self, host, port):
        """The TCP socket to HOST:PORT, and TLS over it with the pinned certificate: (socket, _TLSStream)."""
        try:
            sock = socket.create_connection((host, port), timeout=_CONNECT_SECONDS)
        except OSError as error:
            raise NoDaemon(f"no daemon at {self.address}: {error.strerror or error}") from None
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # requests are small lines: no Nagle wait
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
            tls = _TLSStream(sock)
            try:
                got = tls.handshake()
            except (OSError, ssl.SSLError) as error:  # socket.timeout, a peer that does not speak TLS 1.3...
                raise NoDaemon(f"no TLS 1.3 with {self.address} (is it `mpctld --listen`?): {error}") from None
            if got != self.fingerprint:
                raise FingerprintMismatch(
                    f"{self.address} shows a certificate of fingerprint {got}, not {self.fingerprint} as "
                    f"pinned: nothing was sent to it (another daemon, or someone in between?)",
                    expected=self.fingerprint, got=got)
            tls.finish()
            sock.settimeout(None)
        except BaseException:
            sock.close()
            raise
        return sock, tls

    def _authenticate(self, token):
        """session.auth with TOKEN, before anything else; the connection is closed if it fails."""
        try:
            future = self.call_async("session.auth", {"token": token})
            try:
                self.session = future.result(_CONNECT_SECONDS)
            except concurrent.futures.TimeoutError:
                raise NoDaemon(f"{self.address} did not answer session.auth within {_CONNECT_SECONDS} s") from None
            except ConnectionLost as error:
                raise ConnectionLost(
                    f"{self.address} closed the connection before answering session.auth (a daemon refuses, "
                    f"for a minute, an address that failed to authenticate 5 times within a minute): "
                    f"{error}") from None
        except BaseException:
            self.close()
            raise

    def _try_connect(self):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.connect(self.socket_path)
        except BaseException:
            sock.close()
            raise
        return sock

    # ---- calling ----

    def call(self, method, params=None, *, timeout=None, on_notification=None, fds=(), **kwargs):
        """Send METHOD with PARAMS (a dict, or keyword arguments) and wait for its result, which is returned
        (the error answer is raised as an mpctl.Error). ON_NOTIFICATION(method, params) gets the
        notifications that arrive while it is in flight. FDS are passed with the request (SCM_RIGHTS), for
        `stdin_fd`. TIMEOUT (seconds) bounds the wait for the answer here: concurrent.futures.TimeoutError."""
        return self.call_async(method, params, on_notification=on_notification, fds=fds, **kwargs).result(timeout)

    def call_async(self, method, params=None, *, on_notification=None, fds=(), **kwargs):
        """As call(), without waiting: a concurrent.futures.Future of the result."""
        if params is None:
            params = kwargs
        elif kwargs:
            params = {**params, **kwargs}
        request_id = next(self._ids)
        call = _Call(on_notification)
        if isinstance(params, RawJSON):
            line = f'{{"jsonrpc":"2.0","id":{request_id},"method":{json.dumps(method)},"params":{params}}}\n'.encode()
        else:
            line = compact({"jsonrpc": "2.0", "id": request_id, "method": method, "params": params}).encode() + b"\n"
        if fds and self.remote:
            raise ValueError(f"descriptors cannot be passed to a remote daemon ({self.address}): "
                             f"a {method} with fds (stdin_fd) needs the daemon of this machine")
        if len(line) > MAX_REQUEST + 1:
            # The daemon would answer it with id null, which no call could be matched with: refused here.
            raise InvalidRequest(f"a {method} request of {len(line) - 1} bytes: the protocol's limit is {MAX_REQUEST}")
        with self._calls_lock:
            if self._lost is not None:
                raise self._lost
            self._calls[request_id] = call
        try:
            with self._write_lock:
                if fds:  # the descriptors ride on the first bytes, as mpctl sends them
                    sent = self._sock.sendmsg([line], [(socket.SOL_SOCKET, socket.SCM_RIGHTS,
                                                        array.array("i", fds).tobytes())])
                    if sent < len(line):
                        self._sock.sendall(line[sent:])
                else:
                    self._stream.sendall(line)
        except OSError as error:
            with self._calls_lock:
                self._calls.pop(request_id, None)
            raise ConnectionLost(f"the connection to {self.address} is gone: {error}") from error
        return call.future

    @property
    def lost(self):
        """None while the connection is up; once it is gone, the ConnectionLost that every call raises."""
        return self._lost

    def subscribe(self, method, callback):
        """CALLBACK(params) for every notification METHOD (task.completed, task.output) on this connection,
        whichever call streams it. Callbacks run in the reader thread: they must not wait for a call."""
        with self._calls_lock:
            self._subscribers.setdefault(method, []).append(callback)

    def unsubscribe(self, method, callback):
        with self._calls_lock:
            self._subscribers.get(method, []).remove(callback)

    # ---- the reader thread ----

    def _read(self):
        # Each byte is copied in and searched once: a large answer (a task.wait or task.list of thousands of
        # tasks, megabytes on one line) comes in many reads, and many short lines in one.
        buffer, scanned = bytearray(), 0  # scanned: where the search for the next newline goes on from
        why = "the daemon closed the connection"
        try:
            while True:
                data = self._stream.recv(1 << 16)
                if not data:
                    break
                buffer += data
                begin = 0
                while (end := buffer.find(b"\n", scanned)) >= 0:
                    line, begin = buffer[begin:end], end + 1
                    scanned = begin
                    if line and not line.isspace():
                        self._dispatch(json.loads(line))
                del buffer[:begin]
                scanned = len(buffer)
        except OSError as error:
            why = f"the connection broke: {error}"
        except ValueError as error:
            why = f"the daemon sent what is not JSON: {error}"
        lost = ConnectionLost(f"{why} ({self.address})")
        with self._calls_lock:
            self._lost = lost
            calls, self._calls = self._calls, {}
        for call in calls.values():
            call.future.set_exception(lost)

    def _dispatch(self, message):
        if "id" not in message:  # a notification: to its subscribers, and every call in flight that takes them
            method, params = message.get("method"), message.get("params")
            with self._calls_lock:
                subscribers = list(self._subscribers.get(method, ()))
                takers = [c.on_notification for c in self._calls.values() if c.on_notification is not None]
            for callback in subscribers:
                callback(params)
            for take in takers:
                take(method, params)
            return
        with self._calls_lock:
            call = self._calls.pop(message["id"], None)
        if call is None:
            return  # an answer with id null (a line the daemon could not read): nothing waits for it
        if "error" in message:
            call.future.set_exception(_error_from(message["error"]))
        else:
            call.future.set_result(message.get("result"))

    # ---- ending ----

    def close(self):
        """Close the connection: calls in flight fail with ConnectionLost (what they hold by connection
        lease is released by the daemon)."""
        if self._tls is not None and self._lost is None:
            self._tls.close_notify()
        try:
            self._sock.shutdown(socket.SHUT_RDWR)
        except OSError as error:
            if error.errno not in (errno.ENOTCONN, errno.EBADF):
                raise
        self._reader.join()
        self._sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *_):
        self.close()
