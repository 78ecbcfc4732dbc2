"""concurrent.futures for commands the daemon runs: every submission is a task of mpctld, a future that
outlives the program and that the shell sees (`mpctl list`, `mpctl wait ID`, `mpctl logs ID`).

    from mpctl.futures import CommandExecutor
    with CommandExecutor(max_workers=4) as ex:
        futures = [ex.submit(["gzip", "-k", path]) for path in paths]
        for f in concurrent.futures.as_completed(futures):
            print(f.task_id, f.result().returncode)

A TaskFuture is a concurrent.futures.Future (wait(), as_completed() and callbacks work on it) whose result
is a subprocess.CompletedProcess, as subprocess.run(capture_output=True) gives: args, returncode (-N for a
task killed by signal N), stdout and stderr bytes. It raises what subprocess.run would: CalledProcessError
with check=True, TimeoutExpired for a task whose own timeout ended it, FileNotFoundError or PermissionError
for a command that could not start; TaskError for the rest (a failed dependency, a task lost with a
crashed daemon). cancel() cancels the daemon's task while it is queued, as Future.cancel() does.
"""
import base64, concurrent.futures, errno, functools, itertools, json, os, pickle, queue, shutil, subprocess, sys
import logging, multiprocessing.process, tempfile, threading, uuid
from concurrent.futures import _base
from concurrent.futures.process import BrokenProcessPool, _chain_from_iterable_of_lists, _get_chunks, _process_chunk

from mpctl._fileio import _memory_file, _read_all, _write_new
from mpctl._jsonline import compact
from mpctl.client import Client, ConnectionLost, Error, RawJSON, _where

_LOGGER = logging.getLogger("concurrent.futures")
INPUT_MAX = 1 << 16  # bytes a task spec's input may carry (PROTOCOL.md): more goes through a file or descriptor
# A ProcessPoolExecutor call goes in its task's spec up to this many bytes, else through a file: the daemon
# keeps a spec as long as its task, and an executor's tasks are many.
CALL_INLINE_MAX = 1 << 12
# What every call runs with, the caller's sys.path and sys.argv, its __main__ and the initializer, goes in the
# call's task environment as this variable (base64 of their pickle), as long as it fits there: the daemon
# keeps one copy of an environment for all the tasks that share it and sends it to a worker once, where
# each call's spec and run carried its own (~0.3 KiB and more: 16-22 us of the daemon's time a call).
CONTEXT_VAR = "MPCTL_CALL_CONTEXT"
# Bytes of that base64 at most: an exec refuses a variable over 128 KiB, which the call's subprocesses get.
CONTEXT_ENV_MAX = 1 << 13
__all__ = ["CommandExecutor", "ProcessPoolExecutor", "TaskFuture", "TaskError", "BrokenProcessPool"]


class TaskError(Error):
    """A task that ended without a status subprocess can say: STATUS is its status object."""
    name = "task_failed"

    def __init__(self, message, status):
        super().__init__(message)
        self.status = status


class TaskFuture(concurrent.futures.Future):
    """A Future of a task of the daemon: task_id is its id (waited for, the moment between submit() and the
    daemon's acknowledgement)."""

    def __init__(self, executor, args, check, timeout):
        super().__init__()
        self._executor, self._args, self._check, self._timeout = executor, args, check, timeout
        self._task_id, self._submitted = None, threading.Event()

    @property
    def task_id(self):
        """The daemon's id of this future's task (None if it was never queued: cancelled first, or refused)."""
        self._submitted.wait()
        return self._task_id

    def _queued(self, task_id):
        self._task_id = task_id
        self._submitted.set()

    def cancel(self):
        """Cancel the task if it has not started (True); a running or finished task is left alone (False),
        as Future.cancel() does."""
        with self._condition:
            if self._state != _base.PENDING:
                return super().cancel()  # already cancelled (True) or done (False)
        if self._executor._unsend(self):
            return self.cancel_here()
        if self.task_id is None:
            return self.cancelled()
        outcome = self._executor._client.call("task.cancel", id=self.task_id)["results"][0]["outcome"]
        return self.cancel_here() if outcome == "cancelled" else False

    def cancel_here(self):
        """Mark this future cancelled (its task is): True unless it is already done."""
        with self._condition:
            if self._state in (_base.CANCELLED, _base.CANCELLED_AND_NOTIFIED):
                return True
            if not super().cancel():
                return False
            self.set_running_or_notify_cancel()  # what wait() and as_completed() are woken by
        return True

    def running(self):
        """Whether the task runs now (asked of the daemon while it is not done)."""
        if self.done() or self.task_id is None:
            return False
        return self._executor._client.call("task.get", id=self.task_id)["state"] == "running"

    def __repr__(self):
        return f"<TaskFuture task {self._task_id} {super().__repr__()[1:-1].split(' ', 1)[1]}>"


class _DaemonExecutor(concurrent.futures.Executor):
    """What both executors share: a client, the daemon's pool their tasks go to, the futures not done yet,
    and two threads. The sender queues what submit() is given in batches: one task.submit_batch (one
    journal transaction, the environment sent once) for whatever was submitted while the previous batch was
    on its way, so that a loop of submits costs a round trip per batch, not per call; then one
    task.as_completed stream for the batch's tasks. The finisher settles each future when its task is done
    (its output read, its callbacks run: in that thread, so that a callback may call the daemon)."""

    _counter = itertools.count(1)
    BATCH = 2000  # tasks in a batch at most
    BATCH_BYTES = 640 << 10  # and their specs' JSON: the request line may be 1 MiB (the environment goes too)
    BRIEF = False  # whether _settle reads only a brief status (PROTOCOL.md, task.as_completed)

    def __init__(self, client, socket, task_options):
        self._client = client or Client(socket)
        self._own_client = client is None
        self._options = task_options
        self._pool = None
        self._lock = threading.Condition()
        # (spec as JSON text, future, variables its env adds) submitted, not sent yet: each spec is encoded once
        self._outbox = []
        self._sending = 0  # batches sent and not acknowledged yet
        self._by_id = {}  # task id -> its future, until it is done
        self._futures = set()  # not done yet
        self._shutdown = self._closed = False
        self._done = queue.SimpleQueue()  # (future, status or exception), then None to stop
        self._client.subscribe("task.completed", self._completed)
        self._sender = threading.Thread(target=self._send, name="mpctl-executor-send", daemon=True)
        self._finisher = threading.Thread(target=self._finish, name="mpctl-executor", daemon=True)
        self._sender.start()
        self._finisher.start()

    @staticmethod
    def _own_pool_name():
        return f"py-{os.getpid()}-{next(_DaemonExecutor._counter)}"

    def _check_open(self):
        with self._lock:
            if self._shutdown:
                raise RuntimeError("cannot schedule new futures after shutdown")

    def _submit_task(self, spec, future, fds=(), env=None):
        """Queue SPEC (completed with this executor's options and pool, and this process's cwd and
        environment, to which ENV adds) for FUTURE; FDS go with a request of its own."""
        spec = {**self._options, **spec}
        spec.setdefault("cwd", os.getcwd())
        if self._pool is not None:
            spec.setdefault("pool", self._pool)
        with self._lock:
            if self._shutdown:
                raise RuntimeError("cannot schedule new futures after shutdown")
            if self._client.lost is not None:
                raise self._client.lost
            self._futures.add(future)
            if not fds:
                self._outbox.append((compact(spec), future, env))
                self._lock.notify_all()
                return future
        spec.setdefault("env", {**_environment(), **(env or {})})
        try:
            status = self._client.call("task.submit", spec, fds=fds)
        except BaseException as error:
            future._queued(None)
            self._done.put((future, error))
            return future
        self._watch([future], [status["id"]])
        return future

    def _unsend(self, future):
        """Take FUTURE out of what is not sent yet: whether it was there."""
        with self._lock:
            for n, (_, queued, _) in enumerate(self._outbox):
                if queued is future:
                    del self._outbox[n]
                    self._futures.discard(future)
                    future._queued(None)
                    return True
        return False

    def _send(self):
        while True:
            with self._lock:
                while not self._outbox and not (self._shutdown and self._sending == 0):
                    self._lock.wait()
                if not self._outbox:
                    return
                # A batch's tasks share its env: one that adds other variables starts the next batch.
                taken, size, env = 0, 0, self._outbox[0][2]
                for text, _, adds in self._outbox[:self.BATCH]:
                    if adds != env or (taken and size + len(text) > self.BATCH_BYTES):
                        break
                    taken, size = taken + 1, size + len(text) + 1
                batch, self._outbox = self._outbox[:taken], self._outbox[taken:]
                self._sending += 1
            try:
                params = RawJSON(f'{{"defaults":{json.dumps({"env": {**_environment(), **(env or {})}})},"tasks":['
                                 f'{",".join(text for text, _, _ in batch)}]}}')
                ids = self._client.call("task.submit_batch", params)["ids"]
            except BaseException as error:  # refused (a spec the daemon will not take), or the daemon gone
                for _, future, _ in batch:
                    future._queued(None)
                    self._done.put((future, error))
            else:
                self._watch([future for _, future, _ in batch], ids)
            with self._lock:
                self._sending -= 1
                self._lock.notify_all()

    def _watch(self, futures, ids):
        """The daemon has queued FUTURES as tasks IDS: their ends come as task.completed notifications."""
        with self._lock:
            for future, task_id in zip(futures, ids):
                self._by_id[task_id] = future
        for future, task_id in zip(futures, ids):
            future._queued(task_id)
        stream = self._client.call_async("task.as_completed", ids=ids, **({"brief": True} if self.BRIEF else {}))
        stream.add_done_callback(lambda s: self._stream_ended(s, ids))

    def _completed(self, params):
        """A task.completed notification (in the client's reader thread): hand its future to the finisher."""
        status = params.get("task") or {}
        with self._lock:
            future = self._by_id.pop(status.get("id"), None)
        if future is not None:
            self._done.put((future, status))

    def _stream_ended(self, stream, ids):
        """An as_completed stream's answer: if it failed (the daemon gone), so do the futures it had left."""
        error = stream.exception()
        if error is None:
            return
        with self._lock:
            left = [self._by_id.pop(i) for i in ids if i in self._by_id]
        for future in left:
            self._done.put((future, error))

    def shutdown(self, wait=True, *, cancel_futures=False):
        with self._lock:
            self._shutdown = True
            self._lock.notify_all()
        if cancel_futures:
            self._cancel_pending()
        if wait:
            self._sender.join()
            with self._lock:
                futures = list(self._futures)
            concurrent.futures.wait(futures)
            self._close()
        else:
            threading.Thread(target=self._close_when_done, daemon=True).start()

    def _close_when_done(self):
        self._sender.join()
        with self._lock:
            futures = list(self._futures)
        concurrent.futures.wait(futures)
        self._close()

    def _cancel_pending(self, error=None):
        """Cancel what has not started: the submissions not sent, the tasks still queued. Their futures are
        cancelled, or fail with ERROR if one is given."""
        with self._lock:
            unsent, self._outbox = self._outbox, []
            for _, future, _ in unsent:
                self._futures.discard(future)
            while self._sending:  # a batch on its way: its tasks are queued once it is acknowledged
                self._lock.wait()
        for _, future, _ in unsent:
            future._queued(None)
        with self._lock:
            sent = {f.task_id: f for f in self._futures if not f.done() and f._submitted.is_set() and f.task_id}
        cancelled = [f for _, f, _ in unsent]
        if sent:
            try:
                results = self._client.call("task.cancel", ids=list(sent))["results"]
            except ConnectionLost:  # the daemon is gone: its futures fail with that on their own
                results = []
            cancelled += [sent[r["id"]] for r in results if r["outcome"] == "cancelled"]
        for future in cancelled:
            if error is None:
                future.cancel_here()
            elif not future.done():
                future.set_exception(error)

    def _close(self):
        with self._lock:
            if self._closed:
                return  # a second shutdown()
            self._closed = True
        self._done.put(None)
        self._finisher.join()
        self._client.unsubscribe("task.completed", self._completed)
        if self._own_client:
            self._client.close()

    def _finish(self):
        while (item := self._done.get()) is not None:
            future, outcome = item
            try:
                if isinstance(outcome, BaseException):
                    if not future.done():
                        future.set_exception(outcome)
                elif outcome["state"] == "cancelled":  # by this program, the shell or a forced cancel: the same
                    future.cancel_here()
                elif not future.done():
                    self._settle(future, outcome)
            except BaseException as error:  # a file gone: the future says so
                if not future.done():
                    future.set_exception(error)
            finally:
                with self._lock:
                    self._futures.discard(future)
                self._forget(future)

    def _settle(self, future, status):
        raise NotImplementedError

    def _forget(self, future):
        """What FUTURE's task left for this executor to clean up, once the future is done."""


class CommandExecutor(_DaemonExecutor):
    """Runs commands as tasks of mpctld. POOL: the daemon's pool to run them in; else, with MAX_WORKERS, a
    pool of that many slots of its own for this executor (transient: its queued tasks are cancelled when
    the executor shuts down or its program ends); else the `default` pool. TASK_OPTIONS are task spec
    members every submission gets (name, labels, retries, priority, nice, ...), which submit() may override.
    CLIENT or SOCKET: the daemon (a Client of its own by default, started if need be)."""

    def __init__(self, pool=None, max_workers=None, *, client=None, socket=None, **task_options):
        if max_workers is not None and max_workers <= 0:
            raise ValueError("max_workers must be greater than 0")
        super().__init__(client, socket, task_options)
        self._pool = pool
        if pool is None and max_workers is not None:
            self._pool = self._own_pool_name()
            self._client.call("pool.set", name=self._pool, workers=max_workers, transient=True)

    def submit(self, args, /, *, check=False, cwd=None, env=None, input=None, timeout=None, after=(), **options):
        """Queue ARGS (a sequence: argv; a string: a shell command line, run by /bin/sh -c) as a task: a
        TaskFuture. CWD and ENV default to this process's. INPUT (bytes) is the task's stdin. TIMEOUT
        (seconds) is the task's own: past it the daemon stops the task and the future raises
        TimeoutExpired. AFTER: futures or task ids to run after (their success). OPTIONS: task spec members."""
        spec = dict(options)
        if isinstance(args, (str, bytes)):
            spec["shell"] = os.fsdecode(args)
        else:
            spec["argv"] = [os.fsdecode(word) for word in args]
        if cwd is not None:
            spec["cwd"] = os.fsdecode(os.path.abspath(cwd))
        if env is not None:
            spec["env"] = {os.fsdecode(k): os.fsdecode(v) for k, v in env.items()}
        if timeout is not None:
            spec["timeout"] = timeout
        if after:
            spec["after"] = [a.task_id if isinstance(a, TaskFuture) else int(a) for a in after]
        future = TaskFuture(self, args, check, timeout)
        if input is None:
            return self._submit_task(spec, future)
        if len(input) <= INPUT_MAX:  # in the spec: batched with the others, journaled with the task
            spec["input"] = base64.b64encode(input).decode("ascii")
            return self._submit_task(spec, future)
        fd = _memory_file(input)
        try:
            spec["stdin_fd"] = True
            return self._submit_task(spec, future, fds=(fd,))
        finally:
            os.close(fd)  # the daemon holds its own copy

    def map(self, commands, *, timeout=None, **options):
        """The results (CompletedProcess) of COMMANDS, each as submit() takes it with OPTIONS, in their order;
        all are submitted first. TIMEOUT as Executor.map's: seconds from this call for the whole; the tasks
        not done when the results are left early are cancelled."""
        futures = [self.submit(command, **options) for command in commands]

        def results():
            try:
                for future in futures:
                    yield future.result(timeout)
            finally:
                for future in futures:
                    future.cancel()
        return results()

    def _settle(self, future, status):
        stdout, stderr = self._output(status)
        reason, args = status["reason"], future._args
        if reason == "timeout":
            future.set_exception(subprocess.TimeoutExpired(args, future._timeout, stdout, stderr))
        elif reason == "spawn":
            code = status["exit_code"]
            cls = FileNotFoundError if code == 127 else PermissionError if code == 126 else OSError
            number = errno.ENOENT if code == 127 else errno.EACCES if code == 126 else errno.EIO
            future.set_exception(cls(number, status["error"] or "could not start", _first_word(args)))
        elif reason in ("dependency", "lost"):
            future.set_exception(TaskError(f"task {future.task_id}: {status['error']}", status))
        else:
            code = -status["signal"] if status["signal"] is not None else status["exit_code"]
            if future._check and code != 0:
                future.set_exception(subprocess.CalledProcessError(code, args, stdout, stderr))
            else:
                future.set_result(subprocess.CompletedProcess(args, code, stdout, stderr))

    def _output(self, status):
        """The task's last attempt's stdout and stderr: from its files, else (a daemon on another machine,
        files this process may not read) through task.logs."""
        try:
            return tuple(_read(status[f"{stream}_path"]) for stream in ("stdout", "stderr"))
        except OSError:
            pass
        chunks = {"stdout": [], "stderr": []}

        def take(method, params):
            if method == "task.output" and params.get("id") == status["id"]:
                chunks[params["stream"]].append(base64.b64decode(params["data"]))
        self._client.call("task.logs", id=status["id"], stream="both", attempt=max(1, status["attempts"]),
                          on_notification=take)
        return b"".join(chunks["stdout"]), b"".join(chunks["stderr"])


class ProcessPoolExecutor(_DaemonExecutor):
    """concurrent.futures.ProcessPoolExecutor whose calls are tasks of mpctld, run by a warm pool of
    `python3 -m mpctl.worker --in-process` workers (MAX_WORKERS of them, default os.cpu_count(); each
    replaced after MAX_TASKS_PER_CHILD calls) that the executor makes for itself and that ends with it (a
    transient pool: gone with the executor's connection, whatever ends the program). POOL names a warm pool
    of mpctl.worker to use instead. Each call is pickled with the caller's sys.path and runs in the caller's
    cwd and environment; its result or exception (with the remote traceback, as the standard executor keeps
    it) comes back pickled. INITIALIZER(*INITARGS) runs once in each worker before its first call; if it
    raises, the executor is broken (BrokenProcessPool), as the standard one is. A worker that dies during
    a call (a signal, os._exit) fails that call with BrokenProcessPool; the daemon replaces the worker and
    the other calls go on. MP_CONTEXT is accepted and ignored: the daemon's workers are what it would choose.
    Every call is visible in `mpctl list` as `-m mpctl.call`, its output in `mpctl logs`."""

    BRIEF = True  # _settle reads a status's id, state, reason, error and result

    def __init__(self, max_workers=None, mp_context=None, initializer=None, initargs=(), max_tasks_per_child=None,
                 *, pool=None, client=None, socket=None, **task_options):
        if max_workers is None:
            max_workers = os.cpu_count() or 1
        elif max_workers <= 0:
            raise ValueError("max_workers must be greater than 0")
        if initializer is not None and not callable(initializer):
            raise TypeError("initializer must be a callable")
        if max_tasks_per_child is not None:
            if not isinstance(max_tasks_per_child, int):
                raise TypeError("max_tasks_per_child must be an integer")
            if max_tasks_per_child <= 0:
                raise ValueError("max_tasks_per_child must be >= 1")
        if client.remote if client is not None else "connect" in _where(socket):
            raise ValueError("ProcessPoolExecutor needs the daemon of this machine: its calls go through files "
                             "here (use CommandExecutor with a remote daemon)")
        self._max_workers = max_workers
        self._init = None if initializer is None else (uuid.uuid4().hex, pickle.dumps((initializer, initargs)))
        self._broken = False
        self._main = _main_module()
        self._context = (None, None)  # (sys.path and sys.argv as tuples, CONTEXT_VAR's text or None) of late
        super().__init__(client, socket, task_options)
        self._spool = tempfile.mkdtemp(prefix="mpctl-calls-", dir=_spool_parent())
        self._calls = itertools.count(1)
        self._pool = pool
        if pool is None:
            self._pool = self._own_pool_name()
            package_dir = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
            params = {"name": self._pool, "workers": max_workers, "transient": True,
                      "worker": ["env", f"PYTHONPATH={package_dir}", sys.executable, "-m", "mpctl.worker",
                                 "--in-process"]}
            if max_tasks_per_child is not None:
                params["max_tasks_per_worker"] = max_tasks_per_child
            self._client.call("pool.set", params)

    def submit(self, fn, /, *args, **kwargs):
        if self._broken:
            raise BrokenProcessPool(self._broken)
        self._check_open()
        number = next(self._calls)
        future = TaskFuture(self, None, False, None)
        result = os.path.join(self._spool, f"{number}.out")
        future._files = [result]
        try:
            payload, context = pickle.dumps((fn, args, kwargs)), self._call_context()
            if context is not None:  # in the task's environment
                call = pickle.dumps((CONTEXT_VAR, payload))
            else:
                call = pickle.dumps((list(sys.path), list(sys.argv), self._main, self._init, payload))
        except BaseException as error:  # the standard executor fails the future with it, not submit()
            future.set_exception(error)
            return future
        spec = {"argv": ["-m", "mpctl.call", result]}
        if len(call) <= CALL_INLINE_MAX:  # the call in its task's spec: no file to write, read and remove
            spec["input"] = base64.b64encode(call).decode("ascii")
        else:
            future._files.append(os.path.join(self._spool, f"{number}.in"))
            _write_new(future._files[1], call)
            spec["stdin"] = future._files[1]
        return self._submit_task(spec, future, env=None if context is None else {CONTEXT_VAR: context})

    def _call_context(self):
        """The text of CONTEXT_VAR for a call submitted now (None: too large for an environment). Made again
        only when sys.path or sys.argv changed since the last call; one tuple, for submits from threads."""
        key = (tuple(sys.path), tuple(sys.argv))
        last = self._context
        if last[0] != key:
            text = base64.b64encode(pickle.dumps((list(sys.path), list(sys.argv), self._main, self._init)))
            last = self._context = (key, text.decode("ascii") if len(text) <= CONTEXT_ENV_MAX else None)
        return last[1]

    def map(self, fn, *iterables, timeout=None, chunksize=1):
        """As the standard executor's: CHUNKSIZE items a call."""
        if chunksize < 1:
            raise ValueError("chunksize must be >= 1.")
        results = super().map(functools.partial(_process_chunk, fn), _get_chunks(*iterables, chunksize=chunksize),
                              timeout=timeout)
        return _chain_from_iterable_of_lists(results)

    def _close(self):
        super()._close()
        shutil.rmtree(self._spool, ignore_errors=True)  # with wait=False too, once the calls are done

    def _settle(self, future, status):
        if status["state"] != "succeeded":  # the worker died during the call, or could not start
            why = "A process in the process pool was terminated abruptly while the future was running or pending."
            if status["reason"] not in ("exit", "signal"):
                why = f"the call's task {future.task_id} failed: {status['error']}"
            future.set_exception(BrokenProcessPool(why))
            return
        inline = status.get("result")  # from the worker's done, kept with the task; else in the file
        if inline is not None:
            future._files = future._files[1:]
        try:
            kind, value = pickle.loads(base64.b64decode(inline) if inline is not None else _read(future._files[0]))
        except BaseException as error:  # what the standard executor's result handler dies of
            broken = BrokenProcessPool("A result of the process pool could not be unpickled")
            broken.__cause__ = error
            future.set_exception(broken)
            return
        if kind == "ok":
            future.set_result(value)
        elif kind == "error":
            future.set_exception(value)
        elif kind == "lost":
            broken = BrokenProcessPool("A call could not be unpickled in its worker")
            broken.__cause__ = value
            future.set_exception(broken)
        else:  # the initializer failed: broken from now on, as the standard executor is
            _LOGGER.critical("Exception in initializer:\n%s", value)  # where a thread pool's would be
            self._broken = ("A child process terminated abruptly, the process pool is not usable anymore "
                            "(its initializer failed)")
            future.set_exception(BrokenProcessPool(self._broken))
            self._cancel_pending(BrokenProcessPool(self._broken))

    def _forget(self, future):
        for path in getattr(future, "_files", ()):
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass


def _main_module():
    """Where this program's __main__ comes from, for a worker to run it as __mp_main__ (as
    multiprocessing.spawn.get_preparation_data finds it): ("name", module) for `python3 -m module`,
    ("path", file) for a script, None for an interactive session or -c."""
    main = sys.modules.get("__main__")
    name = getattr(getattr(main, "__spec__", None), "name", None)
    if name is not None:
        return ("name", name)
    path = getattr(main, "__file__", None)
    if path is not None and not sys.flags.interactive and not path.endswith(("ipython", "<stdin>")):
        return ("path", os.path.normpath(os.path.join(multiprocessing.process.ORIGINAL_DIR or os.getcwd(), path)))
    return None


def _spool_parent():
    """Where the calls' files go: memory (a file created and removed on a disk's file system cost ~1 ms a
    call, seen on ext4): $XDG_RUNTIME_DIR, else /dev/shm, else the temporary directory."""
    for directory in (os.environ.get("XDG_RUNTIME_DIR"), "/dev/shm"):
        if directory and os.path.isdir(directory) and os.access(directory, os.W_OK | os.X_OK):
            return directory
    return None


def _environment():
    """This process's environment, as a task spec's env, less MPCTL_TOKEN (as mpctl leaves it out): a remote
    daemon's secret, which the daemon would journal and hand to the task."""
    return {os.fsdecode(k): os.fsdecode(v) for k, v in os.environ.items() if k != "MPCTL_TOKEN"}


def _read(path):
    """The bytes of the file at PATH (none for None). os-level: an io.open and its close cost ~45 us a call
    more, paid twice for every call of a ProcessPoolExecutor."""
    if path is None:
        return b""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        return _read_all(fd)
    finally:
        os.close(fd)


def _first_word(args):
    if isinstance(args, (str, bytes)):
        return os.fsdecode(args).split(" ", 1)[0]
    return os.fsdecode(args[0]) if args else ""
