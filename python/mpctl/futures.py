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
import base64, concurrent.futures, errno, os, queue, subprocess, threading

from concurrent.futures import _base

from mpctl.client import Client, Error

__all__ = ["CommandExecutor", "TaskFuture", "TaskError"]


class TaskError(Error):
    """A task that ended without a status subprocess can say: STATUS is its status object."""
    name = "task_failed"

    def __init__(self, message, status):
        super().__init__(message)
        self.status = status


class TaskFuture(concurrent.futures.Future):
    """A Future of the daemon's task TASK_ID."""

    def __init__(self, executor, task_id, args, check, timeout):
        super().__init__()
        self.task_id, self._executor, self._args, self._check, self._timeout = task_id, executor, args, check, timeout

    def cancel(self):
        """Cancel the task if it has not started (True); a running or finished task is left alone (False),
        as Future.cancel() does."""
        with self._condition:
            if self._state != _base.PENDING:
                return super().cancel()  # already cancelled (True) or done (False)
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
        if self.done():
            return False
        return self._executor._client.call("task.get", id=self.task_id)["state"] == "running"

    def __repr__(self):
        return f"<TaskFuture task {self.task_id} {super().__repr__()[1:-1].split(' ', 1)[1]}>"


class CommandExecutor(concurrent.futures.Executor):
    """Runs commands as tasks of mpctld. POOL: the daemon's pool to run them in; else, with MAX_WORKERS, a
    pool of that many slots of its own for this executor (transient: its queued tasks are cancelled when
    the executor shuts down or its program ends); else the `default` pool. TASK_OPTIONS are task spec
    members every submission gets (name, labels, retries, priority, nice, ...), which submit() may override.
    CLIENT or SOCKET: the daemon (a Client of its own by default, started if need be)."""

    _counter = 0
    _counter_lock = threading.Lock()

    def __init__(self, pool=None, max_workers=None, *, client=None, socket=None, **task_options):
        if max_workers is not None and max_workers <= 0:
            raise ValueError("max_workers must be greater than 0")
        self._client = client or Client(socket)
        self._own_client = client is None
        self._options = task_options
        self._pool = pool
        if pool is None and max_workers is not None:
            with CommandExecutor._counter_lock:
                CommandExecutor._counter += 1
                number = CommandExecutor._counter
            self._pool = f"py-{os.getpid()}-{number}"
            self._client.call("pool.set", name=self._pool, workers=max_workers, transient=True)
        self._futures = set()
        self._lock = threading.Lock()
        self._shutdown = False
        # Answers come in the client's reader thread; results are read, and callbacks run, in this one, so
        # that a callback may call the daemon.
        self._done = queue.SimpleQueue()
        self._finisher = threading.Thread(target=self._finish, name="mpctl-executor", daemon=True)
        self._finisher.start()

    def submit(self, args, /, *, check=False, cwd=None, env=None, input=None, timeout=None, after=(), **options):
        """Queue ARGS (a sequence: argv; a string: a shell command line, run by /bin/sh -c) as a task: a
        TaskFuture. CWD and ENV default to this process's. INPUT (bytes) is the task's stdin. TIMEOUT
        (seconds) is the task's own: past it the daemon stops the task and the future raises
        TimeoutExpired. AFTER: futures or task ids to run after (their success). OPTIONS: task spec members."""
        with self._lock:
            if self._shutdown:
                raise RuntimeError("cannot schedule new futures after shutdown")
        spec = {**self._options, **options}
        if isinstance(args, (str, bytes)):
            spec["shell"] = os.fsdecode(args)
        else:
            spec["argv"] = [os.fsdecode(word) for word in args]
        spec["cwd"] = os.fsdecode(os.path.abspath(cwd if cwd is not None else os.getcwd()))
        spec["env"] = {os.fsdecode(k): os.fsdecode(v) for k, v in (os.environ if env is None else env).items()}
        if timeout is not None:
            spec["timeout"] = timeout
        if self._pool is not None and "pool" not in options:
            spec["pool"] = self._pool
        if after:
            spec["after"] = [a.task_id if isinstance(a, TaskFuture) else int(a) for a in after]
        if input is not None:
            fd = os.memfd_create("mpctl-input", os.MFD_CLOEXEC)
            try:
                view = memoryview(input)
                while view:
                    view = view[os.write(fd, view):]
                os.lseek(fd, 0, os.SEEK_SET)
                spec["stdin_fd"] = True
                status = self._client.call("task.submit", spec, fds=(fd,))
            finally:
                os.close(fd)  # the daemon holds its own copy
        else:
            status = self._client.call("task.submit", spec)
        future = TaskFuture(self, status["id"], args, check, timeout)
        with self._lock:
            self._futures.add(future)
        waited = self._client.call_async("task.wait", id=future.task_id)
        waited.add_done_callback(lambda w: self._done.put((future, w)))
        return future

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

    def shutdown(self, wait=True, *, cancel_futures=False):
        with self._lock:
            self._shutdown = True
            futures = list(self._futures)
        if cancel_futures:
            pending = [f.task_id for f in futures if not f.done()]
            if pending:
                for result in self._client.call("task.cancel", ids=pending)["results"]:
                    if result["outcome"] == "cancelled":
                        next(f for f in futures if f.task_id == result["id"]).cancel_here()
        if wait:
            concurrent.futures.wait(futures)
            self._close()
        else:
            threading.Thread(target=lambda: (concurrent.futures.wait(futures), self._close()), daemon=True).start()

    def _close(self):
        self._done.put(None)
        if self._own_client:
            self._client.close()

    # ---- results ----

    def _finish(self):
        while (item := self._done.get()) is not None:
            future, waited = item
            with self._lock:
                self._futures.discard(future)
            try:
                status = waited.result()["tasks"][0]
                self._settle(future, status)
            except BaseException as error:  # the connection lost, a file gone: the future says so
                if not future.done():
                    future.set_exception(error)

    def _settle(self, future, status):
        state = status["state"]
        if state == "cancelled":  # by this program, the shell or a forced cancel while it ran: all the same
            future.cancel_here()
            return
        if future.done():
            return
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


def _read(path):
    if path is None:
        return b""
    with open(path, "rb") as f:
        return f.read()


def _first_word(args):
    if isinstance(args, (str, bytes)):
        return os.fsdecode(args).split(" ", 1)[0]
    return os.fsdecode(args[0]) if args else ""
