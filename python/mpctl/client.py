"""mpctl.Client: the daemon's JSON-RPC protocol (proto/PROTOCOL.md) over its Unix socket, for Python programs.

One connection, shared by every thread: requests are pipelined (each call writes its line under a lock and
waits for the answer with its id), and one reader thread matches answers to calls as they come, in any
order, and hands notifications (task.output, task.completed) to the calls that stream them. A daemon that
is not running is started as the mpctl CLI starts it (`mpctl daemon start`), unless autostart is off.
Errors are raised as subclasses of mpctl.Error that carry the JSON-RPC code and the error's name.
"""
import array, concurrent.futures, errno, itertools, json, os, shutil, socket, subprocess, threading, time

__all__ = ["Client", "Error", "ParseError", "InvalidRequest", "MethodNotFound", "InvalidParams", "InternalError",
           "UnknownId", "UnknownTask", "Busy", "Timeout", "Refused", "InvalidState", "ShuttingDown", "DaemonIOError",
           "Deadlock", "ConnectionLost", "NoDaemon", "RawJSON", "socket_path"]


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
    """No daemon answers at the socket, and none could be started."""
    name = "no_daemon"


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


class Client:
    """A connection to mpctld. SOCKET: see socket_path(). AUTOSTART (default: on unless $MPCTL_NO_AUTOSTART
    is set): start the daemon with `MPCTL_BIN daemon start` when nobody answers (MPCTL_BIN: the mpctl
    argument, else $MPCTL_BIN, else `mpctl` in PATH). Thread-safe; a context manager that closes it."""

    def __init__(self, socket=None, *, autostart=None, mpctl=None):
        self.socket_path = socket_path(socket)
        if autostart is None:
            autostart = os.environ.get("MPCTL_NO_AUTOSTART", "") in ("", "0")
        self._sock = self._connect(autostart, mpctl)
        self._write_lock = threading.Lock()
        self._calls = {}
        self._calls_lock = threading.Lock()
        self._ids = itertools.count(1)
        self._lost = None  # the ConnectionLost every later call gets, once the connection is gone
        self._subscribers = {}  # notification method -> [callback]
        self._reader = threading.Thread(target=self._read, name="mpctl-client-reader", daemon=True)
        self._reader.start()

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
            line = json.dumps({"jsonrpc": "2.0", "id": request_id, "method": method, "params": params},
                              separators=(",", ":")).encode() + b"\n"
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
                    self._sock.sendall(line)
        except OSError as error:
            with self._calls_lock:
                self._calls.pop(request_id, None)
            raise ConnectionLost(f"the connection to {self.socket_path} is gone: {error}") from error
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
        buffer = b""
        why = "the daemon closed the connection"
        try:
            while True:
                data = self._sock.recv(1 << 16)
                if not data:
                    break
                buffer += data
                while True:
                    end = buffer.find(b"\n")
                    if end < 0:
                        break
                    line, buffer = buffer[:end], buffer[end + 1:]
                    if line.strip():
                        self._dispatch(json.loads(line))
        except OSError as error:
            why = f"the connection broke: {error}"
        except ValueError as error:
            why = f"the daemon sent what is not JSON: {error}"
        lost = ConnectionLost(f"{why} ({self.socket_path})")
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
