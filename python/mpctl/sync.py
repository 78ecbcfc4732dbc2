"""filelock's FileLock and threading's Semaphore, BoundedSemaphore, Event and Barrier, across processes, on the
daemon's lock.*, sem.*, event.* and barrier.* methods (proto/PROTOCOL.md, "Leases" to "barrier.list").

    lock = mpctl.FileLock("/var/lock/backup.lock", timeout=10)
    with lock:                              # a flock(2) the daemon holds: flock(1) and filelock see it
        ...
    slots = mpctl.Semaphore(4, name="gpu")  # the name is what makes two processes' semaphores one
    with slots:
        ...

What maps to what:

- FileLock(lock_file, timeout=-1) is filelock.FileLock (the API of Debian's python3-filelock 3.9): acquire()
  with timeout (-1 waits forever, 0 tries once) and blocking, returning a proxy for `with`; release(force);
  is_locked, lock_counter, lock_file, timeout; re-entrant counting (the daemon's lock is taken when the count
  goes 0 -> 1 and released at 1 -> 0); mpctl.sync.Timeout, which says what filelock.Timeout says. The path is
  made absolute when the object is made, since the daemon takes absolute paths only.
- Semaphore(value, *, name) and BoundedSemaphore are threading's: acquire(blocking, timeout) -> bool,
  release(n), `with`. `value` is the daemon semaphore's `limit`.
- Event(name) is threading.Event; Barrier(parties, action, timeout, *, name) is threading.Barrier, with
  BrokenBarrierError a subclass of threading.BrokenBarrierError.

Every grant (a lock, a semaphore unit) is leased to the calling process (the daemon's default lease, from
SO_PEERCRED), so a holder that dies, SIGKILL included, lets go. Grants are released by their fencing token
(FileLock.token, Semaphore.tokens), not as "whatever this process holds", so that one object never gives
back what another one took (the one exception: Semaphore.release() past its units, below).

Each object talks through CLIENT if given, else through default_client(SOCKET): one connection per process
and daemon, shared by every object and thread, made when first needed (a forked child makes its own: the
parent's connection identifies the parent to the daemon). A remote daemon (a CLIENT made with connect=, or
$MPCTL_CONNECT) has no process of this machine to lease to: there grants are leased to the connection
instead (`"lease": "connection"`), which for the default client lives as long as the process.

Where this differs from filelock and threading:

- The daemon sees processes, not threads. Two FileLock objects for one path in one process therefore
  exclude each other here, before the daemon is asked (as filelock's two descriptors would), and a
  Semaphore waits here for the units its own process holds instead of taking the daemon's `deadlock`
  refusal. A wait that would close a cycle between processes raises mpctl.Deadlock instead of hanging; a
  process whose threads both hold and wait may get such a refusal for a cycle its threads would undo.
- As in filelock 3.9, one FileLock object is one lock for all the threads that use it: a second thread's
  acquire() counts up instead of waiting. A FileLock dropped while it is held lets go (as filelock's
  __del__ does), from a thread of this module. A forked child holds none of its parent's grants: its copy
  of a held FileLock is not locked.
- The file is created by the daemon (mode 0666 less the daemon's umask) and never truncated; there is no
  `mode` (filelock 3.9 has none either) and nothing like SoftFileLock.
- A semaphore's value is a fixed limit of 1 to 1,000,000 (no Semaphore(0)), and release() can only give
  back a unit this process holds: past the units this process took through mpctl.sync, Semaphore asks the
  daemon for the oldest unit the process holds otherwise (one `mpctl sem acquire` took for it) and raises
  ValueError when there is none; BoundedSemaphore raises ValueError without asking.
- Barrier runs `action` in the process whose wait() returns index 0 (the first to arrive), after the daemon
  has released every party, not before (nothing can hold the others back); if it raises, only that caller
  sees it. A broken barrier starts afresh at once (the daemon forgets it): `broken` says whether this
  object's last wait() broke, and the next wait() joins a new round. abort() and reset() raise
  NotImplementedError: the protocol has no way to break the waiters of another process.
- An interrupted wait (KeyboardInterrupt in acquire()) gives back what the daemon grants after all; an
  interrupted Barrier.wait() stays counted at the daemon until its connection closes.
- Timeouts past a year (the protocol's largest) wait forever.
"""
import collections, contextlib, os, queue, re, sys, threading, time, warnings, weakref

from mpctl import client as _client

__all__ = ["FileLock", "AcquireReturnProxy", "Timeout", "Semaphore", "BoundedSemaphore", "Event", "Barrier",
           "BrokenBarrierError", "default_client"]

_MAX_SECONDS = 31536000  # the largest timeout the protocol takes
_MAX_COUNT = 1000000  # a semaphore's largest limit, a barrier's most parties
_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")


# ---- the connection, and what a process keeps for itself ----------------------------------------------------

class _ProcessState:
    """What belongs to this process and not to a forked child: the default connections, the local gates
    of file locks, the units of semaphores taken, the releaser thread."""

    def __init__(self):
        self.lock = threading.Lock()
        self.clients = {}  # where the daemon is (see mpctl.client._where) -> Client
        self.gates = weakref.WeakValueDictionary()  # absolute path -> threading.Lock, while a FileLock needs it
        self.semaphores = {}  # (where the daemon is, name) -> _Units
        self.releases = queue.SimpleQueue()  # (client, path, token, gate) of FileLocks dropped while held
        self.releaser = None


_state = _ProcessState()


def _after_fork_in_child():
    # The child has the parent's socket but not its reader thread, and its locks may have been held by a
    # thread that no longer exists in it: start over (the child holds nothing; its grants are the parent's).
    global _state
    _state = _ProcessState()


os.register_at_fork(after_in_child=_after_fork_in_child)


def default_client(socket=None, *, connect=None, fingerprint=None, token=None):
    """The Client the objects of this module share when they are given none: one per process and daemon,
    made when first asked for, and again if its connection was lost. The daemon is the one
    mpctl.Client(socket=SOCKET, connect=CONNECT, fingerprint=FINGERPRINT, token=TOKEN) reaches: by default
    $MPCTL_CONNECT's if set (with $MPCTL_FINGERPRINT and $MPCTL_TOKEN), else the local one at
    mpctl.client.socket_path()."""
    where = _client._where(socket, connect, fingerprint, token)
    key = _client._where_key(where)
    state = _state
    with state.lock:
        found = state.clients.get(key)
        if found is None or found.lost is not None:
            found = state.clients[key] = _client.Client(**where)
        return found


class _Connected:
    """An object that calls the daemon through its CLIENT, else through the default client of SOCKET,
    looked up at every call so that a forked child uses a connection of its own."""

    def __init__(self, client, socket):
        self._explicit_client, self._socket = client, socket

    @property
    def client(self):
        if self._explicit_client is not None:
            return self._explicit_client
        return default_client(self._socket)


def _seconds(timeout):
    """TIMEOUT as the protocol's `timeout`: None (wait forever) past the largest it takes."""
    if timeout is None or timeout > _MAX_SECONDS:
        return None
    return max(0.0, float(timeout))


def _remaining(deadline):
    return None if deadline is None else max(0.0, deadline - time.monotonic())


def _local_acquire(lock, deadline, blocking=True):
    if not blocking:
        return lock.acquire(blocking=False)
    if deadline is None:
        return lock.acquire()
    return lock.acquire(timeout=_remaining(deadline))


def _acquire_grant(client, method, params, release_key):
    """Call METHOD (lock.acquire, sem.acquire) and return its grant. Interrupted while it waits (Ctrl-C), the
    request is still queued at the daemon: whatever it grants later is given back by token. A remote daemon
    leases it to the connection (it has no process of this machine to lease to)."""
    if client.remote and "lease" not in params and "ttl" not in params and "pid" not in params:
        params = {**params, "lease": "connection"}
    future = client.call_async(method, params)
    try:
        return future.result()
    except BaseException:
        if not future.done():
            release = method.split(".")[0] + ".release"
            future.add_done_callback(lambda f: _give_back(client, release, release_key, params[release_key], f))
        raise


def _give_back(client, method, key, value, future):
    # In the reader thread: it must not wait for an answer of its own connection, so it only sends.
    if future.cancelled() or future.exception() is not None:
        return
    try:
        client.call_async(method, {key: value, "token": future.result()["token"]})
    except _client.Error:
        pass  # the connection is gone, and with the daemon (or its restart) the grant's lease


def _check_name(name):
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ValueError(f"name must be 1 to 64 letters, digits, '_', '-' or '.': {name!r}")
    return name


def _check_count(value, what):
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= _MAX_COUNT:
        raise ValueError(f"{what} must be an integer from 1 to {_MAX_COUNT}: {value!r}")
    return value


# ---- FileLock ------------------------------------------------------------------------------------------------

class Timeout(TimeoutError):
    """FileLock.acquire() could not get the lock in time (filelock.Timeout's message and lock_file)."""

    def __init__(self, lock_file):
        super().__init__(lock_file)
        self.lock_file = lock_file

    def __str__(self):
        return f"The file lock '{self.lock_file}' could not be acquired."


class AcquireReturnProxy:
    """What FileLock.acquire() returns: `with lock.acquire():` releases once, on the way out, without
    acquiring a second time as `with lock:` would."""

    def __init__(self, lock):
        self.lock = lock

    def __enter__(self):
        return self.lock

    def __exit__(self, exc_type, exc_value, traceback):
        self.lock.release()


def _releaser_loop(releases):
    while True:
        client, path, token, gate = releases.get()
        try:
            client.call("lock.release", {"path": path, "token": token})
        except _client.Error:
            pass  # released already (its lease ended), or the daemon is gone, and the flock with it
        finally:
            gate.release()  # only now: another FileLock of this path would be refused as a deadlock before


def _start_releaser():
    state = _state
    with state.lock:
        if state.releaser is None:
            state.releaser = threading.Thread(target=_releaser_loop, args=(state.releases,),
                                              name="mpctl-filelock-releaser", daemon=True)
            state.releaser.start()


class FileLock(_Connected, contextlib.ContextDecorator):
    """filelock.FileLock on a flock(2) the daemon takes for this process: flock(1), filelock and fcntl.flock
    see it, and it goes when this process dies. LOCK_FILE: the path (made absolute now); TIMEOUT: the
    default of acquire() (-1: forever). CLIENT, SOCKET: see default_client()."""

    def __init__(self, lock_file, timeout=-1, *, client=None, socket=None):
        super().__init__(client, socket)
        self._lock_file = os.fspath(lock_file)
        self._path = os.fsdecode(os.path.abspath(self._lock_file))
        self._timeout = timeout
        self._thread_lock = threading.Lock()  # the counter and the grant
        self._acquiring = threading.Lock()  # one thread of this object asks the daemon; the others count
        self._lock_counter = 0
        self._grant = None  # lock.acquire's result while held
        self._grant_pid = None  # the process the grant is for: a forked child's copy holds nothing
        self._gate = None  # the process-wide lock of this path while held
        self._grant_client = None  # for __del__, which cannot look up the default client

    @property
    def lock_file(self):
        """The path as given (the daemon has its absolute form)."""
        return self._lock_file

    @property
    def timeout(self):
        """The default timeout of acquire(), in seconds (negative: wait forever)."""
        return self._timeout

    @timeout.setter
    def timeout(self, value):
        self._timeout = float(value)

    def _held(self):
        return self._grant is not None and self._grant_pid == os.getpid()

    @property
    def is_locked(self):
        """Whether this object holds the lock (in this process)."""
        return self._held()

    @property
    def lock_counter(self):
        """How many acquire() calls the next release()s have to match before the lock goes."""
        return self._lock_counter if self._held() else 0

    @property
    def token(self):
        """The fencing token of the grant held, None when not locked: larger than every token the daemon
        granted before it, so a storage that remembers the largest it has seen can refuse a stale holder."""
        return self._grant["token"] if self._held() else None

    def acquire(self, timeout=None, poll_interval=0.05, *, poll_intervall=None, blocking=True):
        """Take the lock, or count one more acquire() if this object holds it. TIMEOUT: None for the object's
        default, negative to wait forever, 0 for one try (as blocking=False). POLL_INTERVAL is accepted for
        filelock's sake and unused: the daemon waits. Raises Timeout; returns a proxy for `with`."""
        if timeout is None:
            timeout = self._timeout
        if poll_intervall is not None:
            warnings.warn("use poll_interval instead of poll_intervall", DeprecationWarning, stacklevel=2)
        if timeout == 0:
            blocking = False
        deadline = None if not blocking or timeout < 0 else time.monotonic() + timeout
        with self._thread_lock:
            if self._held():
                self._lock_counter += 1
                return AcquireReturnProxy(self)
        if not _local_acquire(self._acquiring, deadline, blocking):
            raise Timeout(self._lock_file)
        try:
            with self._thread_lock:
                if self._held():  # another thread of ours got it while we waited our turn
                    self._lock_counter += 1
                    return AcquireReturnProxy(self)
            gate = self._path_gate()
            # The daemon would refuse a process that asks for a lock it holds (a deadlock); two objects
            # of this process are kept apart here, as their two descriptors would be by flock(2).
            if not _local_acquire(gate, deadline, blocking):
                raise Timeout(self._lock_file)
            try:
                client = self.client
                grant = self._ask(client, blocking, deadline)
            except BaseException:
                gate.release()
                raise
            _start_releaser()
            with self._thread_lock:
                self._grant, self._grant_pid, self._gate, self._lock_counter = grant, os.getpid(), gate, 1
                self._grant_client = client
            return AcquireReturnProxy(self)
        finally:
            self._acquiring.release()

    def _path_gate(self):
        state = _state
        with state.lock:
            gate = state.gates.get(self._path)
            if gate is None:
                gate = state.gates[self._path] = threading.Lock()
            return gate

    def _ask(self, client, blocking, deadline):
        params = {"path": self._path}
        wait = _seconds(_remaining(deadline))
        if not blocking or wait == 0:
            params["nonblock"] = True
        elif wait is not None:
            params["timeout"] = wait
        try:
            return _acquire_grant(client, "lock.acquire", params, "path")
        except (_client.Busy, _client.Timeout) as error:
            if "limit" in error.data:  # the daemon's grants are all in use: not this lock's doing
                raise
            raise Timeout(self._lock_file) from None

    def release(self, force=False):
        """Count one release(); the lock goes when the count is back to 0, or at once with FORCE. The lock
        file stays."""
        with self._thread_lock:
            if not self._held():
                return
            self._lock_counter -= 1
            if self._lock_counter > 0 and not force:
                return
            grant, gate = self._grant, self._gate
            self._grant, self._grant_pid, self._gate, self._lock_counter = None, None, None, 0
            self._grant_client = None
            try:
                self.client.call("lock.release", {"path": self._path, "token": grant["token"]})
            except _client.UnknownId:
                pass  # its lease ended it already: it is not held, which is what was asked
            finally:
                gate.release()

    def __enter__(self):
        self.acquire()
        return self

    def __exit__(self, exc_type, exc_value, traceback):
        self.release()

    def __del__(self):
        # As filelock lets go of a lock whose object is dropped. This can run in any thread, the client's
        # reader among them, or while this thread is inside the client: so nothing here waits or takes a
        # lock; a queue.SimpleQueue put is safe anywhere. At exit the lease frees the lock anyway.
        try:
            if sys.is_finalizing() or not self._held():
                return
            _state.releases.put((self._grant_client, self._path, self._grant["token"], self._gate))
        except Exception:
            pass

    def __repr__(self):
        return f"<{type(self).__name__} {self._lock_file!r} {'locked' if self._held() else 'unlocked'}>"


# ---- Semaphore, BoundedSemaphore -----------------------------------------------------------------------------

class _Units:
    """The units of one semaphore this process holds (tokens, oldest first), shared by every object of that
    name, and a condition that says when one of them is given back."""

    def __init__(self):
        self.tokens = collections.deque()
        self.releasing = 0  # units taken off TOKENS whose release the daemon has not answered yet
        self.released = 0  # counts the releases done, for waiters to see that one was
        self.changed = threading.Condition(threading.Lock())


class Semaphore(_Connected):
    """threading.Semaphore across processes: the daemon's semaphore NAME, of VALUE units (1 to 1,000,000),
    each leased to the process that takes it. CLIENT, SOCKET: see default_client()."""

    _bounded = False

    def __init__(self, value=1, *, name, client=None, socket=None):
        super().__init__(client, socket)
        self._value = _check_count(value, "value")
        self.name = _check_name(name)

    @property
    def limit(self):
        return self._value

    def _units(self):
        client = self.client
        key = (client._key, self.name)
        state = _state
        with state.lock:
            units = state.semaphores.get(key)
            if units is None:
                units = state.semaphores[key] = _Units()
            return client, units

    @property
    def tokens(self):
        """The fencing tokens of the units this process holds through mpctl.sync, oldest first."""
        units = self._units()[1]
        with units.changed:
            return tuple(units.tokens)

    def acquire(self, blocking=True, timeout=None):
        """Take a unit: True, or False if BLOCKING is false and none is free, or none was in TIMEOUT seconds."""
        if not blocking and timeout is not None:
            raise ValueError("can't specify timeout for non-blocking acquire")
        if timeout is not None and timeout <= 0:
            blocking = False
        deadline = None if timeout is None or not blocking else time.monotonic() + timeout
        client, units = self._units()
        while True:
            params = {"name": self.name, "limit": self._value}
            wait = _seconds(_remaining(deadline))
            if not blocking or wait == 0:
                params["nonblock"] = True
            elif wait is not None:
                params["timeout"] = wait
            with units.changed:
                seen = units.released
            try:
                grant = _acquire_grant(client, "sem.acquire", params, "name")
            except (_client.Busy, _client.Timeout) as error:
                if "limit" in error.data:
                    raise
                return False
            except _client.Deadlock:
                # The daemon sees one owner per process: when this process holds the units, another of its
                # threads waiting for one looks like a process waiting for itself. Wait here for one of
                # ours to come back, as threading would, and ask again.
                with units.changed:
                    if not units.tokens and not units.releasing and units.released == seen:
                        raise  # not ours to wait for: a cycle through other processes
                    if not units.changed.wait_for(lambda: units.released != seen, _remaining(deadline)):
                        return False
                continue
            with units.changed:
                units.tokens.append(grant["token"])
            return True

    def release(self, n=1):
        """Give back N units this process holds (see the module's notes for a unit it does not hold)."""
        if n < 1:
            raise ValueError("n must be one or more")
        client, units = self._units()
        with units.changed:
            if self._bounded and len(units.tokens) < n:
                raise ValueError(f"Semaphore released too many times: this process holds "
                                 f"{len(units.tokens)} unit(s) of {self.name}")
            tokens = [units.tokens.popleft() for _ in range(min(n, len(units.tokens)))]
            units.releasing += len(tokens)
        try:
            for token in tokens:
                try:
                    client.call("sem.release", {"name": self.name, "token": token})
                except _client.UnknownId:
                    pass  # its lease ended it already
            for _ in range(n - len(tokens)):
                try:
                    client.call("sem.release", {"name": self.name})
                except _client.UnknownId:
                    raise ValueError(f"Semaphore released too many times: this process holds no unit of "
                                     f"{self.name} (its limit of {self._value} is fixed)") from None
        finally:
            with units.changed:
                units.releasing -= len(tokens)
                units.released += 1
                units.changed.notify_all()

    def __enter__(self):
        return self.acquire()

    def __exit__(self, exc_type, exc_value, traceback):
        self.release()

    def __repr__(self):
        return f"<{type(self).__name__} {self.name!r} limit={self._value}>"


class BoundedSemaphore(Semaphore):
    """Semaphore whose release() raises ValueError for a unit this process did not take through it (or an
    object of the same name)."""

    _bounded = True


# ---- Event -----------------------------------------------------------------------------------------------------

class Event(_Connected):
    """threading.Event across processes: the daemon's event NAME. It lives in the daemon's memory: a restarted
    daemon has every event clear. CLIENT, SOCKET: see default_client()."""

    def __init__(self, name, *, client=None, socket=None):
        super().__init__(client, socket)
        self.name = _check_name(name)

    def is_set(self):
        events = self.client.call("event.list", {"name": self.name})["events"]
        return any(e["name"] == self.name and e["set"] for e in events)

    def set(self):
        self.client.call("event.set", {"name": self.name})

    def clear(self):
        self.client.call("event.clear", {"name": self.name})

    def wait(self, timeout=None):
        """Block until the event is set (True), or TIMEOUT seconds have passed (False)."""
        params = {"name": self.name}
        wait = _seconds(timeout)
        if wait is not None:
            params["timeout"] = wait
        try:
            self.client.call("event.wait", params)
        except _client.Timeout:
            return False
        return True

    def __repr__(self):
        return f"<{type(self).__name__} {self.name!r}>"


# ---- Barrier ---------------------------------------------------------------------------------------------------

class BrokenBarrierError(threading.BrokenBarrierError):
    """A wait at a mpctl Barrier timed out, here or in another waiter."""


class Barrier(_Connected):
    """threading.Barrier across processes: the daemon's barrier NAME for PARTIES waiters (1 to 1,000,000).
    ACTION runs in the caller whose wait() returns index 0, after everyone is released; TIMEOUT is the
    default of wait(). CLIENT, SOCKET: see default_client()."""

    def __init__(self, parties, action=None, timeout=None, *, name, client=None, socket=None):
        super().__init__(client, socket)
        self._parties = _check_count(parties, "parties")
        self._action, self._timeout = action, timeout
        self.name = _check_name(name)
        self._broken = False

    @property
    def parties(self):
        return self._parties

    @property
    def n_waiting(self):
        """How many processes' waits are at the barrier now, all objects of its name together."""
        found = self.client.call("barrier.list", {"name": self.name})["barriers"]
        return sum(len(b["waiting"]) for b in found if b["name"] == self.name)

    @property
    def broken(self):
        """Whether the last wait() of this object ended in BrokenBarrierError (the daemon's barrier is whole
        again already: the next wait() starts a new round)."""
        return self._broken

    def wait(self, timeout=None):
        """Wait for all parties: the index of this arrival (0 to parties - 1). A wait whose TIMEOUT (default:
        the barrier's) runs out breaks the barrier: BrokenBarrierError here and in every other waiter."""
        if timeout is None:
            timeout = self._timeout
        params = {"name": self.name, "parties": self._parties}
        wait = _seconds(timeout)
        if wait is not None:
            params["timeout"] = wait
        try:
            index = self.client.call("barrier.wait", params)["index"]
        except _client.Timeout:
            self._broken = True
            raise BrokenBarrierError(f"timed out at barrier {self.name}") from None
        except _client.InvalidState as error:
            if not error.data.get("broken"):
                raise  # another parties count is in use under this name
            self._broken = True
            raise BrokenBarrierError(error.message) from None
        self._broken = False
        if index == 0 and self._action is not None:
            self._action()
        return index

    def abort(self):
        raise NotImplementedError("mpctl.Barrier cannot abort: the protocol has no call that breaks the waits of "
                                  "other processes (a waiter whose timeout runs out is what breaks a barrier)")

    def reset(self):
        raise NotImplementedError("mpctl.Barrier cannot reset: the protocol has no call that breaks the waits of "
                                  "other processes; a broken barrier starts afresh by itself")

    def __repr__(self):
        return f"<{type(self).__name__} {self.name!r} parties={self._parties}>"
