"""multiprocessing.Manager's Queue and dict, kept by the daemon: named FIFO queues (queue.*) and named dicts
(kv.*) that every process of the machine shares, durable across daemon restarts (proto/PROTOCOL.md, "Queues
and dicts" to "kv.watch").

    jobs = mpctl.Queue("jobs", maxsize=100)         # queue.Queue's API: put, get, Full, Empty...
    jobs.put({"path": "a.txt"})                     # any process, any time, even from a shell:
    item = jobs.get(timeout=10)                     #   mpctl queue put jobs '{"path": "b.txt"}'
    stats = mpctl.Dict("stats")                     # a MutableMapping, str keys
    stats.compare_and_set("n", 0, 1)                # atomic; setdefault and pop are too

What maps to what:

- Queue(name, maxsize=0, *, memory=False) is queue.Queue (and multiprocessing's Queue): put(item, block,
  timeout), put_nowait, get(block, timeout), get_nowait, qsize, empty, full, maxsize, raising queue.Full and
  queue.Empty as queue.Queue does (a maxsize of 0 or less is unbounded). put_many(items) puts them all at
  once, in order, nothing between them (at most 10,000 and one 1 MiB request); get_many(n, block, timeout)
  takes n at once (1 to 10,000), or nothing. delete() drops the queue and its values. The queue is made by
  its first put, with that put's maxsize and memory (memory=True: never written to disk, gone when the
  daemon stops); every put names this object's maxsize and memory, and the daemon refuses a put whose
  maxsize or memory is not the queue's: ValueError. A get of a queue nobody has put to yet waits for it.
- Dict(name) is a collections.abc.MutableMapping (a dict's API, as a Manager().dict() proxy): d[key],
  d[key] = value, del d[key], in, len, iteration, get, setdefault, pop, popitem, update, clear, copy() (a
  plain dict), keys() / values() / items() (lists, of one snapshot each, as a DictProxy's). setdefault, pop
  and popitem are atomic (compare-and-set in the daemon); clear() and update() are one key at a time.
  Keys are str only (another type is TypeError), of 1 to 4,096 characters, without NUL or surrogates (a
  write of another str is ValueError; a read finds nothing). Additions: compare_and_set(key, expect, new)
  -> bool, with ABSENT (Dict.ABSENT) as EXPECT for "the key must not exist" and as NEW for "delete it";
  version(key) (which change of the dict last set it; version() the dict's last); watch(key, timeout,
  current) an iterator of changes, in order, each a dict {"name", "key", "value", "deleted", "version"}.

Values. What JSON says exactly goes as JSON, readable by `mpctl queue get` and `mpctl kv get` in a shell and
by any client: None, bool, int (int64), float (finite), str, and lists and dicts (str keys) made of those, up to
60 levels deep. bytes go as {"base64": "..."} (the protocol's convention: `mpctl queue put q
'{"base64":"aGk="}'` is b"hi" here). Anything else is pickled and goes as {"pickle": "<base64 of the
pickle>"}: tuples, sets, bytearrays, custom objects, ints past int64, NaN and infinities, subclasses of the
JSON types (an IntEnum, a str subclass), dicts with a key that is not a str, strings with surrogates (which
the protocol takes for bytes that are not UTF-8, see PROTOCOL.md, "Bytes in strings"), and a dict whose only
key is "base64" or "pickle" (which would read back as something else). Those are readable from Python only (a
shell sees the {"pickle": ...} object), by processes that can import the pickled classes. A dict value comes
back equal, its keys in sorted order (the daemon keeps JSON values, not the order of their members). Only
processes of the daemon's user (and root) can reach it, so unpickling what they put is as safe as the
processes themselves. A value that cannot be read back here (a pickled class this process cannot import,
malformed base64 put by a shell) raises DecodeError, which carries the values as the daemon gave them: a get
has taken them from the queue already, and they are not lost with the exception.

Connections. Calls that answer at once go through the connection mpctl.sync.default_client() shares in the
process (or CLIENT; SOCKET, or CONNECT and FINGERPRINT for a remote daemon, choose the default client of
another daemon). A call that may wait (get with block, put with block to a queue with a maxsize, watch)
takes a connection of its own, kept for the next such call of the process once answered: the shared one
is never parked behind a wait, and a wait interrupted here (Ctrl-C) closes its connection, which makes the
daemon withdraw it: the get takes nothing (unless its answer had already arrived: at most once, as the
daemon says), the put puts nothing. Those connections go to the daemon of the object's client, the same way:
a remote daemon's over TLS with the client's fingerprint and token. A pickled Queue or Dict carries where its
daemon is (a socket's path, or a remote daemon's address and fingerprint: never a token, which the process
that unpickles it takes from its own $MPCTL_TOKEN), or nothing when it uses the default one.

What cannot be here:

- task_done() and join() raise NotImplementedError: the daemon counts no unfinished tasks of a queue (as
  with multiprocessing.Queue, which has neither; use a Dict counter or an mpctl.Barrier).
- No close(), join_thread() or cancel_join_thread() (multiprocessing.Queue's feeder thread): a put is
  answered once the value is queued (and, for a durable queue, committed to disk).
- qsize(), empty() and full() are true when asked, as queue.Queue's, and may be stale a moment later.
- Values are compared (compare_and_set, setdefault, pop) as the daemon compares JSON values: 1 equals 1.0,
  dicts whatever their key order; pickled values compare by their pickle (equal objects usually, not always,
  pickle the same: sets with another history of hashes may not).
- A pickled value is read back from its pickle, so what it refers to is a copy, as with any Manager.
"""
import base64, binascii, collections.abc, concurrent.futures, functools, math, os, pickle, queue, re, threading

from mpctl import client as _client
from mpctl.sync import default_client

__all__ = ["Queue", "Dict", "Watch", "ABSENT", "DecodeError", "encode_value", "decode_value"]

_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")
_MAX_SECONDS = 31536000  # the largest timeout the protocol takes
_MAX_VALUES = 10000  # values in one queue.put or queue.get
_MAX_QUEUE_SIZE = 1000000000
_MAX_KEY = 4096  # characters in a dict's key
# Containers an item may nest: a request is at most 64 levels deep, and a queue.put's values sit at the
# third (the request, its params, the array): 60 leaves one to spare. (The daemon would answer a deeper
# request with id null, which no call could be matched with.)
_MAX_DEPTH = 60
_INT64 = (-(1 << 63), (1 << 63) - 1)
# Surrogates: the protocol takes \udc80-\udcff for bytes (so "\udcc3\udca9" comes back as "é") and refuses
# the others. A str with one may not come back as it went.
_SURROGATES = re.compile("[\ud800-\udfff]")
_NOT_KEY_TEXT = re.compile("[\0\ud800-\udfff]")  # and NUL, which the daemon refuses in a key
_IDLE_WAITERS = 8  # connections for waits a process keeps per daemon between waits


# ---- values ------------------------------------------------------------------------------------------------

class DecodeError(ValueError):
    """A value the daemon gave cannot be read back here. VALUE: the one that failed, as the daemon gave it
    (JSON); VALUES: every value the call got, so that those a get took from its queue are not lost."""

    def __init__(self, message, value, values=None):
        super().__init__(message)
        self.value = value
        self.values = [value] if values is None else values


def _is_json(obj, depth=0):
    """Whether OBJ goes through JSON and comes back equal and of the same types."""
    kind = type(obj)
    if obj is None or kind is bool:
        return True
    if kind is int:
        return _INT64[0] <= obj <= _INT64[1]
    if kind is float:
        return math.isfinite(obj)
    if kind is str:
        return not _SURROGATES.search(obj)
    if depth >= _MAX_DEPTH:
        return False
    if kind is list:
        return all(_is_json(item, depth + 1) for item in obj)
    if kind is dict:
        return all(type(k) is str and not _SURROGATES.search(k) and _is_json(v, depth + 1)
                   for k, v in obj.items())
    return False


def encode_value(obj):
    """OBJ as the JSON value that goes to the daemon: itself when JSON holds it exactly, bytes as
    {"base64": ...}, anything else {"pickle": ...} (see the module's notes). What pickle cannot take raises
    what pickle raises (TypeError, AttributeError, pickle.PicklingError)."""
    if type(obj) is bytes:
        return {"base64": base64.b64encode(obj).decode("ascii")}
    if _is_json(obj) and not (type(obj) is dict and len(obj) == 1 and ("base64" in obj or "pickle" in obj)):
        return obj
    return {"pickle": base64.b64encode(pickle.dumps(obj)).decode("ascii")}


def decode_value(value):
    """What encode_value() made, from the JSON value the daemon gives back (or any client put: a JSON value
    is itself, {"base64": "..."} is bytes). DecodeError when its base64 or pickle cannot be read."""
    if type(value) is dict and len(value) == 1:
        for form in ("base64", "pickle"):
            text = value.get(form)
            if type(text) is str:
                try:
                    data = base64.b64decode(text.encode("ascii"), validate=True)
                    return data if form == "base64" else pickle.loads(data)
                except (UnicodeEncodeError, binascii.Error) as error:
                    raise DecodeError(f"a {{{form!r}: ...}} value whose text is not base64: {error}",
                                      value) from error
                except Exception as error:
                    raise DecodeError(f"a pickled value that cannot be unpickled here: "
                                      f"{type(error).__name__}: {error}", value) from error
    return value


def _decode_all(values):
    decoded = []
    for value in values:
        try:
            decoded.append(decode_value(value))
        except DecodeError as error:
            raise DecodeError(str(error), value, list(values)) from error.__cause__
    return decoded


# ---- connections -------------------------------------------------------------------------------------------

class _Waiters:
    """The connections this process keeps for calls that wait, per daemon (a forked child starts with none:
    the parent's identify the parent)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.idle = {}  # where the daemon is (Client._key) -> [Client]


_waiters = _Waiters()


def _after_fork_in_child():
    global _waiters
    _waiters = _Waiters()


os.register_at_fork(after_in_child=_after_fork_in_child)


def _connect_like(client):
    """Another connection to CLIENT's daemon, reached as CLIENT reaches it. The shared connection was made
    first (autostart is its business): this one only connects."""
    return _client.Client(**client.options(), autostart=False)


def _take_waiter(client):
    waiters = _waiters
    with waiters.lock:
        idle = waiters.idle.setdefault(client._key, [])
        while idle:
            found = idle.pop()
            if found.lost is None:
                return found
    return _connect_like(client)


def _keep_waiter(key, connection):
    waiters = _waiters
    with waiters.lock:
        idle = waiters.idle.setdefault(key, [])
        if connection.lost is None and len(idle) < _IDLE_WAITERS:
            idle.append(connection)
            return
    connection.close()


def _seconds(timeout):
    """TIMEOUT as the protocol's: None (wait forever) past the largest it takes."""
    if timeout is None or timeout > _MAX_SECONDS:
        return None
    return max(0.0, float(timeout))


def _check_name(name, what):
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ValueError(f"a {what} name is 1 to 64 letters, digits, '_', '-' or '.': {name!r}")
    return name


class _Named:
    """An object that calls the daemon through CLIENT, else through the default client of SOCKET (or of the
    remote daemon CONNECT with FINGERPRINT), looked up at every call (a forked child uses a connection of
    its own)."""

    def __init__(self, client, socket, connect, fingerprint):
        if socket is not None and connect is not None:
            raise ValueError("socket (a Unix socket's path) or connect (tcp://HOST:PORT): one or the other")
        self._explicit_client, self._socket = client, socket
        self._where = {name: value for name, value in (("socket", socket), ("connect", connect),
                                                        ("fingerprint", fingerprint)) if value is not None}

    @property
    def client(self):
        if self._explicit_client is not None:
            return self._explicit_client
        return default_client(**self._where)

    def _where_for_pickle(self):
        # A Client cannot be pickled: where its daemon is can (never its token: the other process has its own).
        if self._explicit_client is None:
            return self._where
        where = self._explicit_client.options()
        where.pop("token", None)
        return where

    def _wait_call(self, method, params):
        """METHOD on a connection of its own (see the module's notes): its result, or its error raised."""
        client = self.client
        key = client._key
        connection = _take_waiter(client)
        try:
            future = connection.call_async(method, params)
        except _client.ConnectionLost:  # a kept one the daemon closed meanwhile (a restart): a new one
            connection = _connect_like(client)
            future = connection.call_async(method, params)
        try:
            result = future.result()
        except _client.Error:
            _keep_waiter(key, connection)  # the daemon answered (or the connection is gone: dropped)
            raise
        except BaseException:
            # Interrupted while the daemon waits: closing the connection withdraws the request.
            connection.close()
            raise
        _keep_waiter(key, connection)
        return result


# ---- Queue -------------------------------------------------------------------------------------------------

class Queue(_Named):
    """queue.Queue on the daemon's queue NAME (1-64 letters, digits, '_', '-', '.'), shared by every process.
    MAXSIZE (0 or less: unbounded, up to 1,000,000,000) and MEMORY (never journaled) are the queue's, set by
    its first put: a put through an object that says otherwise is ValueError. CLIENT, SOCKET, CONNECT,
    FINGERPRINT: see mpctl.sync.default_client(). Picklable: the copy names the same queue, of the same
    daemon."""

    def __init__(self, name, maxsize=0, *, memory=False, client=None, socket=None, connect=None, fingerprint=None):
        super().__init__(client, socket, connect, fingerprint)
        self.name = _check_name(name, "queue")
        if isinstance(maxsize, bool) or not isinstance(maxsize, int):
            raise TypeError(f"maxsize is an int, not {type(maxsize).__name__}")
        if maxsize > _MAX_QUEUE_SIZE:
            raise ValueError(f"maxsize is at most {_MAX_QUEUE_SIZE:,}: {maxsize}")
        self.maxsize = max(0, maxsize)
        self.memory = bool(memory)

    # -- putting --

    def put(self, item, block=True, timeout=None):
        """Put ITEM at the tail. With BLOCK, wait (up to TIMEOUT seconds, None: forever) while a bounded queue
        is full, then queue.Full; without, queue.Full at once."""
        self._put([encode_value(item)], block, timeout)

    def put_nowait(self, item):
        self.put(item, block=False)

    def put_many(self, items, block=True, timeout=None):
        """Put ITEMS (at most 10,000, in one request of at most 1 MiB) at the tail, in order, all at once:
        nothing another process puts comes between them. A bounded queue waits (as put()) for room for all
        of them; more items than its maxsize is ValueError."""
        values = [encode_value(item) for item in items]
        if not values:
            return
        if len(values) > _MAX_VALUES:
            raise ValueError(f"put_many() takes at most {_MAX_VALUES:,} items at once: {len(values):,}")
        if self.maxsize and len(values) > self.maxsize:
            raise ValueError(f"{len(values)} items can never fit in queue {self.name!r} of maxsize {self.maxsize}")
        self._put(values, block, timeout)

    def _put(self, values, block, timeout):
        params = {"name": self.name, "values": values, "maxsize": self.maxsize, "memory": self.memory}
        waits = self._wait_params(params, block, timeout)
        try:
            if waits and self.maxsize:
                self._wait_call("queue.put", params)
            else:  # an unbounded queue never waits: the shared connection answers at once
                self.client.call("queue.put", params)
        except (_client.Busy, _client.Timeout) as error:
            if "limit" in error.data:  # the daemon's room for all values is used up: not this queue's doing
                raise
            raise queue.Full from None
        except _client.InvalidState as error:
            raise ValueError(self._mismatch(error)) from None

    def _mismatch(self, error):
        said = f"this Queue has maxsize={self.maxsize}, memory={self.memory}"
        try:
            info = self.client.call("queue.info", {"name": self.name})
            said += f"; the queue has maxsize={info['maxsize']}, memory={not info['durable']}"
        except _client.Error:
            pass
        return (f"queue {self.name!r} exists with another maxsize or memory than this Queue's ({said}): "
                f"make the Queue with the queue's own ({error.message})")

    # -- getting --

    def get(self, block=True, timeout=None):
        """Take the item at the head. With BLOCK, wait for one (up to TIMEOUT seconds, None: forever), then
        queue.Empty; without, queue.Empty at once."""
        return self._get(1, block, timeout)[0]

    def get_nowait(self):
        return self.get(block=False)

    def get_many(self, n, block=True, timeout=None):
        """Take N items (1 to 10,000) from the head, all at once: a list. With BLOCK, wait until there are N
        (up to TIMEOUT seconds), then queue.Empty; without, queue.Empty at once if there are fewer. Either
        way it takes N or nothing."""
        if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= _MAX_VALUES:
            raise ValueError(f"n is an int from 1 to {_MAX_VALUES:,}: {n!r}")
        return self._get(n, block, timeout)

    def _get(self, count, block, timeout):
        params = {"name": self.name}
        if count != 1:
            params["count"] = count
        waits = self._wait_params(params, block, timeout)
        try:
            if waits:
                got = self._wait_call("queue.get", params)
            else:
                got = self.client.call("queue.get", params)
        except (_client.Busy, _client.Timeout):
            raise queue.Empty from None
        return _decode_all(got["values"])

    @staticmethod
    def _wait_params(params, block, timeout):
        """BLOCK and TIMEOUT as queue.Queue takes them, into PARAMS: whether the call may wait."""
        if block and timeout is not None:
            if timeout < 0:
                raise ValueError("'timeout' must be a non-negative number")
            if timeout == 0:
                block = False  # as queue.Queue: Full or Empty unless it can be done at once
        if not block:
            params["nonblock"] = True
            return False
        wait = _seconds(timeout)
        if wait is not None:
            params["timeout"] = wait
        return True

    # -- asking --

    def _info(self):
        try:
            return self.client.call("queue.info", {"name": self.name})
        except _client.UnknownId:
            return None

    def qsize(self):
        """How many items the queue holds now (0 for one that does not exist)."""
        info = self._info()
        return info["length"] if info else 0

    def empty(self):
        return self.qsize() == 0

    def full(self):
        """Whether the queue is bounded and holds its maxsize (the daemon's maxsize of the queue)."""
        info = self._info()
        return bool(info) and 0 < info["maxsize"] <= info["length"]

    def info(self):
        """The daemon's queue.info of it: {"name", "length", "bytes", "maxsize", "durable", "getters",
        "putters", "created_at"}; None when there is no such queue."""
        return self._info()

    def delete(self):
        """Delete the queue and its items (getters and putters waiting at it get mpctl.UnknownId): how many
        items it held, 0 when there was no such queue."""
        try:
            return self.client.call("queue.delete", {"name": self.name})["deleted"]
        except _client.UnknownId:
            return 0

    def task_done(self):
        raise NotImplementedError("mpctl.Queue has no task_done(): the daemon counts no unfinished items of a "
                                  "queue across processes (multiprocessing.Queue has none either; a JoinableQueue "
                                  "can be built from a Dict counter)")

    def join(self):
        raise NotImplementedError("mpctl.Queue has no join(): the daemon counts no unfinished items of a queue "
                                  "across processes (multiprocessing.Queue has none either)")

    def __reduce__(self):
        return (functools.partial(Queue, memory=self.memory, **self._where_for_pickle()),
                (self.name, self.maxsize))

    def __repr__(self):
        return (f"<{type(self).__name__} {self.name!r} maxsize={self.maxsize}"
                f"{' memory' if self.memory else ''}>")


# ---- Dict --------------------------------------------------------------------------------------------------

class _Absent:
    """ABSENT: as compare_and_set()'s EXPECT, the key must not exist; as its NEW, delete the key."""
    _instance = None

    def __new__(cls):
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __reduce__(self):
        return (_Absent, ())

    def __repr__(self):
        return "mpctl.Dict.ABSENT"


ABSENT = _Absent()
_MISSING = object()


def _key_ok(key):
    """Whether KEY can be a key of a daemon's dict (TypeError when it is not a str at all)."""
    if not isinstance(key, str):
        raise TypeError(f"mpctl.Dict keys are str, not {type(key).__name__}")
    return 1 <= len(key) <= _MAX_KEY and not _NOT_KEY_TEXT.search(key)


def _writable_key(key):
    if not _key_ok(key):
        raise ValueError(f"an mpctl.Dict key is a str of 1 to {_MAX_KEY:,} characters without NUL or "
                         f"surrogates: {key[:80]!r}")
    return str(key)


def _change(params):
    """A kv.changed notification as Watch yields it."""
    change = {"name": params["name"], "key": params["key"], "version": params["version"],
              "deleted": bool(params.get("deleted")), "value": None}
    if not change["deleted"]:
        value = params.get("value")
        try:
            change["value"] = decode_value(value)
        except DecodeError as error:
            raise DecodeError(f"key {params['key']!r}: {error}", value) from error.__cause__
    return change


class Dict(_Named, collections.abc.MutableMapping):
    """A dict on the daemon's dict NAME (1-64 letters, digits, '_', '-', '.'), shared by every process and kept
    across restarts: collections.abc.MutableMapping with str keys. CLIENT, SOCKET, CONNECT, FINGERPRINT:
    see mpctl.sync.default_client(). Picklable: the copy names the same dict, of the same daemon."""

    ABSENT = ABSENT

    def __init__(self, name, *, client=None, socket=None, connect=None, fingerprint=None):
        super().__init__(client, socket, connect, fingerprint)
        self.name = _check_name(name, "dict")

    def _call(self, method, params):
        return self.client.call(method, {"name": self.name, **params})

    def _entries(self):
        return self._call("kv.list", {})["entries"]

    def _lookup(self, key):
        """kv.get of KEY: its answer, None when it is not there."""
        if not _key_ok(key):
            return None
        try:
            return self._call("kv.get", {"key": key})
        except _client.UnknownId:
            return None

    # -- the mapping --

    def __getitem__(self, key):
        got = self._lookup(key)
        if got is None:
            raise KeyError(key)
        return decode_value(got["value"])

    def __setitem__(self, key, value):
        self._call("kv.set", {"key": _writable_key(key), "value": encode_value(value)})

    def __delitem__(self, key):
        if not _key_ok(key):
            raise KeyError(key)
        try:
            self._call("kv.del", {"key": key})
        except _client.UnknownId:
            raise KeyError(key) from None

    def __contains__(self, key):
        return self._lookup(key) is not None

    def __iter__(self):
        return iter([entry["key"] for entry in self._entries()])

    def __len__(self):
        return len(self._entries())

    def keys(self):
        """The keys, in the daemon's order (by key), as a list: one snapshot."""
        return [entry["key"] for entry in self._entries()]

    def values(self):
        """The values, as a list of one snapshot (in keys' order)."""
        return _decode_all([entry["value"] for entry in self._entries()])

    def items(self):
        """(key, value) pairs, as a list of one snapshot: consistent with each other, as a DictProxy's."""
        entries = self._entries()
        return list(zip([e["key"] for e in entries], _decode_all([e["value"] for e in entries])))

    def copy(self):
        """A plain dict of one snapshot."""
        return dict(self.items())

    def get(self, key, default=None):
        got = self._lookup(key)
        return default if got is None else decode_value(got["value"])

    # -- atomic changes --

    def compare_and_set(self, key, expect, new):
        """Set KEY to NEW if it holds EXPECT (compared as JSON values: see the module's notes), in one step:
        True if it did, False if the key held something else. EXPECT=ABSENT: only if the key does not exist;
        NEW=ABSENT: delete the key."""
        params = {"key": _writable_key(key)}
        if expect is ABSENT and new is ABSENT:
            raise ValueError("compare_and_set(key, ABSENT, ABSENT) would delete a key that does not exist")
        if expect is ABSENT:
            params["absent"] = True
        else:
            params["expect"] = encode_value(expect)
        if new is ABSENT:
            params["delete"] = True
        else:
            params["value"] = encode_value(new)
        try:
            self._call("kv.cas", params)
        except _client.Busy as error:
            if "limit" in error.data:
                raise
            return False
        return True

    def setdefault(self, key, default=None):
        """D[key] if KEY is there, else set it to DEFAULT and return DEFAULT: atomic (no other process's
        value is overwritten)."""
        params = {"key": _writable_key(key), "absent": True, "value": encode_value(default)}
        while True:
            try:
                self._call("kv.cas", params)
                return default
            except _client.Busy as error:
                if "limit" in error.data:
                    raise
                if "value" in error.data:
                    return decode_value(error.data["value"])
            got = self._lookup(key)  # the refusal did not say what is there: ask
            if got is not None:
                return decode_value(got["value"])

    def pop(self, key, default=_MISSING):
        """Remove KEY and return its value (the value removed, whatever another process set meanwhile); if it
        is not there, DEFAULT or KeyError."""
        got = self._lookup(key)
        while got is not None:
            value = got["value"]
            try:
                self._call("kv.cas", {"key": key, "expect": value, "delete": True})
                return decode_value(value)
            except _client.Busy as error:  # changed since: take what it holds now
                if "limit" in error.data:
                    raise
                if error.data.get("absent"):
                    break
                got = {"value": error.data["value"]} if "value" in error.data else self._lookup(key)
        if default is _MISSING:
            raise KeyError(key)
        return default

    def popitem(self):
        """Remove and return a (key, value) pair (the first by key, not the last set, as dict's would):
        atomic. KeyError when the dict is empty."""
        while True:
            keys = self.keys()
            if not keys:
                raise KeyError("popitem(): dictionary is empty")
            for key in keys:
                value = self.pop(key, _MISSING_POP)
                if value is not _MISSING_POP:
                    return key, value

    def clear(self):
        """Delete every key (one at a time: keys set meanwhile may stay)."""
        for key in self.keys():
            try:
                del self[key]
            except KeyError:
                pass

    # -- versions and watches --

    def version(self, key=None):
        """The version (the dict's change count, across restarts) of KEY's last set, KeyError if it is not
        there; without KEY, the dict's last version (0 for a dict never set)."""
        if key is None:
            return self._call("kv.list", {})["version"]
        got = self._lookup(key)
        if got is None:
            raise KeyError(key)
        return got["version"]

    def watch(self, key=None, timeout=None, current=False):
        """An iterator of the changes of the dict (of KEY only, if given), in version order: every change
        made after watch() returns; with CURRENT, every entry there is first, as sets. Each change is a dict
        {"name", "key", "value", "deleted", "version"} ("value" None when deleted). It ends when TIMEOUT
        seconds have passed (None: never) or it is closed (close(), `with`, or dropping it). It has a
        connection of its own."""
        return Watch(self, key, timeout, current)

    def __reduce__(self):
        return (functools.partial(Dict, **self._where_for_pickle()), (self.name,))

    def __repr__(self):
        return f"<{type(self).__name__} {self.name!r}>"


_MISSING_POP = object()
_END = object()


def _take_change(changes, method, params):
    # In the connection's reader thread: only hands the notification over.
    if method == "kv.changed":
        changes.put(params)


class Watch:
    """The changes of a Dict, from Dict.watch(): an iterator (and a context manager that closes it)."""

    def __init__(self, dict_, key, timeout, current):
        params = {"name": dict_.name}
        if key is not None:
            if not _key_ok(key):
                raise ValueError(f"no key {key[:80]!r} can be in a dict")
            params["key"] = key
        if current:
            params["current"] = True
        wait = _seconds(timeout)
        if wait is not None:
            params["timeout"] = wait
        self.name, self.key = dict_.name, key
        self._changes = queue.SimpleQueue()
        self._closed, self._connection = False, None
        # Not a kept connection: a watch ends only by its timeout or by the connection's close.
        self._connection = _connect_like(dict_.client)
        changes = self._changes  # the callbacks hold the queue, not the Watch: a Watch dropped is closed
        try:
            self._future = self._connection.call_async("kv.watch", params,
                                                       on_notification=functools.partial(_take_change, changes))
            self._future.add_done_callback(lambda _: changes.put(_END))
            # Requests of a connection are taken in order: once a later one is answered, the watch is in
            # place, and every change made from now on is streamed to it.
            placed = self._connection.call_async("daemon.methods", {})
            concurrent.futures.wait([placed, self._future], return_when=concurrent.futures.FIRST_COMPLETED)
            if self._future.done() and not isinstance(self._future.exception(), _client.Timeout):
                self._future.result()  # refused (invalid params, a daemon without kv.watch): raised here
        except BaseException:
            self.close()
            raise

    def __iter__(self):
        return self

    def __next__(self):
        if self._closed:
            raise StopIteration
        params = self._changes.get()
        if params is _END:
            self._changes.put(_END)  # for a later next()
            error = self._future.exception()
            if error is None or isinstance(error, _client.Timeout):
                raise StopIteration
            if isinstance(error, _client.ConnectionLost) and self._closed:
                raise StopIteration
            raise error
        return _change(params)

    def close(self):
        """End the watch (the daemon drops it with the connection)."""
        if not self._closed:
            self._closed = True
            if self._connection is not None:
                self._connection.close()

    def __enter__(self):
        return self

    def __exit__(self, *_):
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass

    def __repr__(self):
        what = f" key={self.key!r}" if self.key is not None else ""
        return f"<{type(self).__name__} of {self.name!r}{what}{' closed' if self._closed else ''}>"
