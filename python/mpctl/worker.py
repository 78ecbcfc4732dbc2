"""The warm worker of an mpctl warm pool:
`python3 -m mpctl.worker [--preload MOD,MOD...] [--init MOD:FUNC] [--in-process]`.

mpctld starts it once per slot of a warm pool (`pool.set` with `worker`) and hands it tasks over the connected
Unix socket at descriptor $MPCTL_WORKER_FD (3), as proto/PROTOCOL.md, "Warm workers", says. The worker imports
the --preload modules and calls the --init function once, says hello, and then, for each task, forks a child
of this already initialised interpreter (the forkserver model: the set-up is paid once, each task runs in a
process of its own) that runs the task's command line as `python3 ARGV...` would: the same sys.argv,
sys.path, __main__, output, traceback and exit status. With --in-process, each task runs in the worker's own
process instead (see InProcess). The worker exits when the daemon closes the socket.

Differences from a fresh python3 that a task can see: the modules the worker imported are already imported
(that is the point; --init's effects are visible), the interpreter's start-up settings are the worker's
(hash seed, locale and stdio encoding, PYTHON* variables other than PYTHONPATH and PYTHONUNBUFFERED, which
are taken from the task's environment), python3's own options other than -c, -m and -u are refused, and the
exit handlers registered during the worker's set-up do not run at a task's end (they belong to the worker,
whose connections and files the task's process shares).
"""
import argparse, array, atexit, base64, builtins, collections, fcntl, gc, importlib, importlib.machinery, io, json, os
import pkgutil, re, resource, runpy, signal, socket, sys, threading, traceback, types

from mpctl._jsonline import compact

MAX_LINE = 1 << 20  # bytes in a message line, either way
MAX_FDS = 64  # descriptors one recvmsg can take; a run brings 3, more than this breaks the protocol
MSG_CTRUNC = int(socket.MSG_CTRUNC)  # the enum's own & is Python code, run for every message
PYTHON_NAME = re.compile(r"python(3(\.\d+)?)?")  # an argv[0] that names the interpreter: skipped
BASE_PATH = sys.path[1:]  # the installation's entries of sys.path, which every task has (main() sets it)


class ProtocolError(Exception):
    """The daemon sent what the protocol does not allow: the worker cannot go on."""


class Channel:
    """The socket to the daemon: JSON lines out; JSON lines in, and the descriptors that came with them."""

    def __init__(self, sock):
        self.sock, self.buffer, self.fds = sock, bytearray(), collections.deque()

    def send(self, message):
        self.sock.sendall(compact(message).encode() + b"\n")  # one sendall per line

    def receive(self):
        """The next message (a dict), or None at end of file."""
        while (end := self.buffer.find(b"\n")) < 0:
            if len(self.buffer) > MAX_LINE:
                raise ProtocolError("a line over 1 MiB")
            # Descriptors ride on bytes, which may share a recvmsg with the end of one line or the start of
            # the next: they are queued in the order they come, and each run line takes the next three.
            data, ancillary, flags, _ = self.sock.recvmsg(65536, socket.CMSG_SPACE(MAX_FDS * 4),
                                                          socket.MSG_CMSG_CLOEXEC)
            for level, kind, payload in ancillary:
                if (level, kind) == (socket.SOL_SOCKET, socket.SCM_RIGHTS):
                    fds = array.array("i")
                    fds.frombytes(payload[:len(payload) - len(payload) % fds.itemsize])
                    self.fds.extend(fds)
            if flags & MSG_CTRUNC:
                raise ProtocolError(f"more than {MAX_FDS} descriptors in one message")
            if not data:
                return None
            self.buffer += data
        line = bytes(self.buffer[:end])
        del self.buffer[:end + 1]
        if len(line) > MAX_LINE:
            raise ProtocolError("a line over 1 MiB")
        try:
            message = json.loads(line)
        except ValueError:
            message = None
        if not isinstance(message, dict):
            raise ProtocolError(f"a line that is not a JSON object: {line[:200]!r}")
        return message

    def close(self):
        self.sock.close()
        while self.fds:
            os.close(self.fds.popleft())


# ---- in the worker ----

def main(argv=None):
    parser = argparse.ArgumentParser(prog="python3 -m mpctl.worker", description=__doc__.split("\n\n")[0])
    parser.add_argument("--preload", action="append", default=[], metavar="MOD,MOD...",
                        help="import these modules once, before the first task")
    parser.add_argument("--init", metavar="MOD:FUNC", help="import MOD and call FUNC() once, before the first task")
    parser.add_argument("--in-process", action="store_true",
                        help="run each task in the worker's own process rather than in a forked child: faster, "
                             "but what a task leaves in the process stays for the next (as in Pool)")
    args = parser.parse_args(argv)
    if args.init is not None and not re.fullmatch(r"[\w.]+:\w+", args.init):
        parser.error(f"--init: expected MOD:FUNC, not {args.init!r}")

    sock = socket.socket(fileno=int(os.environ.get("MPCTL_WORKER_FD", "3")))
    sock.set_inheritable(False)  # nothing the set-up or a task starts should hold the daemon's socket
    # sys.path as the worker's own start made it, less what is not a task's: its path[0] and its $PYTHONPATH
    # (a task gets its own of both). Taken before the set-up, which may add entries of its own.
    own_pythonpath = set(_pythonpath(os.environ))
    global BASE_PATH
    BASE_PATH = [entry for entry in sys.path[1:] if entry not in own_pythonpath]

    for modules in args.preload:
        for name in filter(None, modules.split(",")):
            importlib.import_module(name)
    if args.init is not None:
        module, function = args.init.split(":")
        getattr(importlib.import_module(module), function)()

    channel = Channel(sock)
    run_task = InProcess() if args.in_process else _fork
    try:
        # "input": a task's input may come in its run (base64) rather than as a memory file on descriptor 0.
        # "keeps_env": a run without an env has the env of the last run that had one.
        channel.send({"hello": {"protocol": 1, "pid": os.getpid(), "features": ["input", "keeps_env"]}})
        env = []
        while (message := channel.receive()) is not None:
            run = message.get("run")
            if run is None:
                continue  # a message this worker does not know: ignored, as unknown members are
            if not isinstance(run, dict):
                raise ProtocolError("a run that is not a JSON object")
            env = run.setdefault("env", env)
            wanted = 4 if run.get("cgroup") is True else 3  # the fourth: the cgroup.procs to join
            if len(channel.fds) < wanted:
                raise ProtocolError(f"a run came with {len(channel.fds)} descriptor(s), not {wanted}")
            stdio = [channel.fds.popleft() for _ in range(wanted)]
            _take_input(run, stdio, args.in_process)
            kind = run.get("kind")
            handler = KINDS.get(kind) if isinstance(kind, str) else None
            status = run_task(handler, run, stdio, channel) if handler else _refuse(run, stdio)
            channel.send({"done": {"task": run.get("task"), **status}})
    except ProtocolError as error:
        print(f"mpctl.worker: protocol broken: {error}", file=sys.stderr)
        return 1
    except ConnectionError:
        pass  # the daemon has gone: as at end of file
    return 0


def _take_input(run, stdio, in_process):
    """A run's input (base64), decoded into run["input"]. It becomes the task's stdin, a memory file in
    place of the /dev/null descriptor 0 the run came with, unless the task is a call that this worker runs in
    its own process: mpctl.call takes the bytes as they are (see run_call)."""
    text = run.get("input")
    if text is None:
        return
    try:
        run["input"] = data = base64.b64decode(text, validate=True)
    except (TypeError, ValueError):
        raise ProtocolError("an input that is not base64") from None
    if in_process and _is_call(run.get("argv")):
        return
    from mpctl._fileio import _memory_file  # this worker's own package
    fd = _memory_file(data)
    os.close(stdio[0])
    stdio[0] = fd


def _refuse(run, stdio):
    """A run of a kind this worker does not know: said on the task's stderr, exit status 2."""
    message = f"mpctl.worker: unknown task kind {run.get('kind')!r}\n"
    try:
        os.write(stdio[2], message.encode("utf-8", "surrogateescape"))
    except OSError:
        pass
    for fd in stdio:
        os.close(fd)
    return {"exit_code": 2}


def _fork(handler, run, stdio, channel):
    """Run the task in a child of this interpreter; its status for the done message."""
    # Output still buffered here would be written again by the child.
    for stream in (sys.stdout, sys.stderr):
        if stream is not None:
            stream.flush()
    gc.freeze()  # the set-up's objects out of the collector's reach: fewer pages copied into each child
    pid = os.fork()
    if pid == 0:
        _child(handler, run, stdio, channel)  # never returns
    for fd in stdio:
        os.close(fd)
    status = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
    return {"exit_code": status} if status >= 0 else {"signal": -status}


# ---- becoming the task, in a forked child or (--in-process) in the worker itself ----

def _enter(run, fds, in_process=False, call=False, keep_stdin=False):
    """Make this process the task's: its descriptors 0-2 (FDS, and the cgroup.procs to join, if a fourth),
    its cgroup, resource limits, niceness and umask, environment and cwd. False (said on the task's stderr)
    if one cannot be had. A CALL (see run_call) imports by name, as the standard executor's worker does,
    which never drops the import system's caches of directories (they see a directory's new time anyway).
    KEEP_STDIN: descriptor 0 stays the worker's own, /dev/null as the daemon starts it, which the run's
    (/dev/null too) would only replace: FDS[0] is closed instead (two system calls fewer a call)."""
    first = 1 if keep_stdin else 0
    if keep_stdin:
        os.close(fds[0])
    fds = fds[first:]
    # Moved above 2 first, so that no dup2 below lands on one of the three before it is placed (they come
    # above 2 when the worker's own 0-2 are open, as they are: then there is nothing to move).
    moved = list(fds)
    if min(fds) <= 2:
        moved = [fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 3) for fd in fds]
        for fd in fds:
            os.close(fd)
    for target, fd in enumerate(moved[:3 - first], start=first):
        os.dup2(fd, target)
        os.close(fd)
    cgroup = moved[3 - first] if len(moved) > 3 - first else None
    try:
        problem = _limit(run, cgroup, in_process)
    finally:
        if cgroup is not None:
            os.close(cgroup)
    if problem is not None:
        os.write(2, f"mpctl.worker: {problem}\n".encode("utf-8", "surrogateescape"))
        return False
    _replace_environ(run.get("env", []))
    try:
        os.chdir(run["cwd"])
    except OSError as error:  # as the daemon reports a task whose cwd it cannot enter
        os.write(2, f"mpctl.worker: cannot enter {run['cwd']!r}: {error.strerror}\n".encode())
        return False
    if not call:
        importlib.invalidate_caches()  # directories may have changed since the worker's imports listed them
    return True


def _limit(run, cgroup, in_process):
    """What the daemon applies to a task's own process, applied to this one, in its order: the cgroup (what
    follows is in it), the resource limits, the niceness, the umask. None, or what could not be applied."""
    if in_process and (cgroup is not None or "nice" in run or "rlimits" in run):
        # The worker's process is not the task's alone: it could not have them back for the next task.
        return "a task's nice, rlimits and cgroup need a worker that forks a process per task (not --in-process)"
    try:
        if cgroup is not None:
            os.write(cgroup, b"0")  # moves the writer
        for name, value in run.get("rlimits", {}).items():
            limit = resource.RLIM_INFINITY if value == "unlimited" else value
            resource.setrlimit(getattr(resource, f"RLIMIT_{name.upper()}"), (limit, limit))
        if "nice" in run:
            os.setpriority(os.PRIO_PROCESS, 0, run["nice"])
    except (OSError, ValueError, AttributeError, TypeError) as error:
        return f"cannot apply the task's limits: {error}"
    if "umask" in run:
        os.umask(run["umask"])
    return None


def _flush_stdio(status):
    """Flush the task's stdout and stderr as python3 does at its end: exit status 120 if that fails."""
    for stream in (sys.stdout, sys.stderr):
        try:
            if stream is not None and not stream.closed:
                stream.flush()
        except Exception as error:
            if stream is sys.stdout:
                print(f"Exception ignored in: {stream!r}", file=sys.stderr)
                traceback.print_exception(type(error), error, None)
            status = 120
    return status


def _die_of(signum):
    """End this process by SIGNUM, as python3 does after a KeyboardInterrupt nobody caught."""
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)


def _child(handler, run, stdio, channel):
    """Become the task's process, run the task, exit. Never returns into the worker's loop."""
    status = 1
    try:
        channel.close()
        if not _enter(run, stdio):
            os._exit(126)
        atexit._clear()  # the set-up's exit handlers are the worker's; a task runs only those it registers
        status = handler(run)
        # What python3 does once its main program is over (Py_FinalizeEx): wait for the threads left
        # running, run the exit handlers, flush stdout and stderr.
        threading._shutdown()
        atexit._run_exitfuncs()
        status = _flush_stdio(status)
        if status < 0:
            _die_of(-status)
            status = 128 - status
    except BaseException:
        traceback.print_exc()  # the worker's fault, not the task's
    finally:
        try:
            sys.stderr.flush()
        finally:
            os._exit(status)


class InProcess:
    """--in-process: each task runs in the worker's own process, one after another, as Pool and
    ProcessPoolExecutor run their calls. No fork: the fastest a task can start, but what a task leaves in the
    process is there for the next: the modules it imported (and what it changed in them), threads it left
    running as daemons, signal handlers, descriptors it left open. What is put back after each task:
    descriptors 0-2, the cwd, the umask, sys.argv, sys.path, __main__ and the sys.std* streams (and the
    environment is the next task's, whole); the exit handlers a task registers run at its end, as python3's would. A task with a nice,
    rlimits or a cgroup is refused (exit status 126): they could not be taken back."""

    def __init__(self):
        # The worker's own descriptors 0-2, kept above 2 to be put back after each task.
        self.stdio = [fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 3) for fd in range(3)]
        global CODE_CACHE
        CODE_CACHE = {}

    def __call__(self, handler, run, stdio, channel):
        call = handler is run_argv and _is_call(run.get("argv"))
        outcome = []  # a call's pickled outcome, when small enough to go back in the done message
        if call:
            import mpctl.call  # this worker's own package
            handler, mpctl.call.inline = run_call, outcome
        # sys's own dict, which its attributes are (getattr and setattr on the module cost twice as much)
        sys_dict = sys.__dict__
        saved_sys = [sys_dict.get(name, _MISSING) for name in SAVED_SYS]
        saved_umask = os.umask(0o22) if "umask" in run else None  # read by setting: put back below
        saved_main, saved_path = sys.modules["__main__"], sys.path[:]
        threads, exits = set(threading.enumerate()), TaskExitHandlers()
        status = 126
        # A call whose bytes came in its run has /dev/null for stdin (the run's): the worker's own is that.
        keep_stdin = call and isinstance(run.get("input"), bytes)
        try:
            if _enter(run, stdio, in_process=True, call=call, keep_stdin=keep_stdin):
                with exits:
                    status = handler(run)
                # What python3 does once its main program is over: wait for the non-daemon threads the
                # task started, run its exit handlers, flush stdout and stderr.
                for thread in threading.enumerate():
                    if thread not in threads and not thread.daemon:
                        thread.join()
                exits.run()
                status = _flush_stdio(status)
        finally:
            for target, fd in enumerate(self.stdio):
                if target or not keep_stdin:
                    os.dup2(fd, target)  # closes the task's: its output files are let go
            for name, value in zip(SAVED_SYS, saved_sys):
                if value is not _MISSING:
                    sys_dict[name] = value
                else:
                    sys_dict.pop(name, None)
            sys.modules["__main__"], sys.path[:] = saved_main, saved_path
            # The environment stays the task's: the worker reads nothing of it, and the next task's replaces
            # it whole (when both have the same names, as a pool's tasks mostly do, only changed values).
            os.chdir("/")
            if saved_umask is not None:
                os.umask(saved_umask)
            if call:
                mpctl.call.inline = None
        if status < 0:  # the task dies of a signal: so does its process, the worker, and the daemon replaces it
            _die_of(-status)
        if status == 0 and outcome:  # the task's result, which the daemon keeps with it
            return {"exit_code": 0, "result": base64.b64encode(outcome[0]).decode("ascii")}
        return {"exit_code": status}


class TaskExitHandlers:
    """While a task runs in the worker's process (with), atexit.register and unregister keep the task's exit
    handlers apart from the worker's own, so that run() calls them at the task's end, as python3 would at its
    exit, and the worker's run at the worker's."""

    def __init__(self):
        self.handlers, self.saved = [], None

    def __enter__(self):
        self.saved = atexit.register, atexit.unregister
        atexit.register, atexit.unregister = self.register, self.unregister

    def __exit__(self, *_):
        atexit.register, atexit.unregister = self.saved

    def register(self, function, *args, **kwargs):
        self.handlers.append((function, args, kwargs))
        return function

    def unregister(self, function):
        self.handlers = [entry for entry in self.handlers if entry[0] != function]

    def run(self):
        while self.handlers:  # last registered first; one that raises is reported as atexit does
            function, args, kwargs = self.handlers.pop()
            try:
                function(*args, **kwargs)
            except BaseException:
                print(f"Exception ignored in atexit callback: {function!r}", file=sys.stderr)
                traceback.print_exc()


_MISSING = object()
# What a task may replace in sys and the worker puts back (--in-process).
SAVED_SYS = ("argv", "orig_argv", "stdin", "stdout", "stderr", "__stdin__", "__stdout__", "__stderr__",
             "last_type", "last_value", "last_traceback")


_LAST_ENVIRON = None  # (entries, os.environ._data) as the last _replace_environ left them


def _replace_environ(entries):
    """Make the C environment, and os.environ above it, ENTRIES ("NAME=VALUE" strings; the first of a name
    wins, as in python3's os.environ). This works on os.environ's own store (CPython's os._Environ._data, there since 3.2), under its mapping methods:
    their clear() pops one item at a time, each from a fresh iterator, and every access encodes the name
    in Python code, which cost half a millisecond a task for ~40 names. Only what differs is changed when
    the names are the same; otherwise the whole is rebuilt, in their order, as python3 would have it from
    its exec."""
    global _LAST_ENVIRON
    data = os.environ._data
    if _LAST_ENVIRON is not None and _LAST_ENVIRON[0] == entries and _LAST_ENVIRON[1] == data:
        return  # the last task's environment, which it left as it was: a pool's tasks mostly share one
    encoding, new = sys.getfilesystemencoding(), {}
    for entry in entries:
        name, equals, value = entry.encode(encoding, "surrogateescape").partition(b"=")
        if equals and name:
            new.setdefault(name, value)
    if data.keys() == new.keys():
        for key, value in new.items():
            if data[key] != value:
                os.putenv(key, value)
                data[key] = value
    else:
        for key in data:
            os.unsetenv(key)
        data.clear()
        for key, value in new.items():
            os.putenv(key, value)
            data[key] = value
    _LAST_ENVIRON = (list(entries), dict(data))


def run_argv(run):
    """Kind "argv": run["argv"] as `python3 ARGV...` runs it; returns the exit status python3 would have
    (negative: a signal it kills itself with). argv[0] may name python3 or be left out."""
    argv, program = list(run["argv"]), "python3"
    if argv and PYTHON_NAME.fullmatch(os.path.basename(argv[0])):
        program = argv.pop(0)
    sys.orig_argv = [program, *argv]
    try:
        unbuffered, how, what, argv = _python_options(argv)
    except ValueError as refusal:
        _open_stdio(bool(os.environ.get("PYTHONUNBUFFERED")))
        print(refusal, file=sys.stderr)
        return 2
    _open_stdio(unbuffered or bool(os.environ.get("PYTHONUNBUFFERED")))

    main = types.ModuleType("__main__")  # as python3's start makes it (add_main_module, pylifecycle.c)
    main.__annotations__, main.__builtins__ = {}, builtins
    main.__loader__ = importlib.machinery.BuiltinImporter
    sys.modules["__main__"] = main
    if how == "-c":
        sys.argv = ["-c", *argv]
        _set_sys_path("")
        return _run_main(_run_source, main, what, "<string>")
    if how == "-m":
        sys.argv = ["-m", *argv]  # runpy puts the module's file in argv[0]
        _set_sys_path(os.getcwd())
        return _run_main(_run_module_as_main, what)
    sys.argv = [what, *argv]
    if what in ("", "-"):  # the program on stdin
        _set_sys_path("")
        source = b"".join(iter(lambda: os.read(0, 1 << 16), b""))
        return _run_main(_run_source, main, source, "<stdin>", True)
    filename = os.path.join(os.getcwd(), what)  # python3 makes it absolute, and does not normalise it
    try:
        with open(filename, "rb") as file:
            source = file.read()
    except IsADirectoryError:
        source = None
    except OSError as error:
        print(f"{program}: can't open file {filename!r}: [Errno {error.errno}] {error.strerror}", file=sys.stderr)
        return 2
    # A directory or a zip file runs its __main__ module. Only a file that holds a zip's end record can be
    # one: asking the import system of every script (it tries each as a zip) cost a fifth of a millisecond.
    if (source is None or b"PK\x05\x06" in source[-65557:]) and pkgutil.get_importer(filename) is not None:
        _set_sys_path(filename)
        return _run_main(runpy._run_module_as_main, "__main__", False)
    if source is None:
        print(f"{program}: can't open file {filename!r}: [Errno 21] Is a directory", file=sys.stderr)
        return 2
    _set_sys_path(os.path.dirname(os.path.realpath(what)))
    main.__loader__ = importlib.machinery.SourceFileLoader("__main__", filename)
    return _run_main(_run_source, main, source, filename, True)


def _python_options(argv):
    """python3's own options at the front of ARGV: (unbuffered, how, what, args), HOW being "-c", "-m" or
    "file" (WHAT "" or "-": the program on stdin). ValueError for what a warm worker cannot do."""
    unbuffered = False
    while argv:
        option, argv = argv[0], argv[1:]
        if option == "-u":
            unbuffered = True
        elif option[:2] in ("-c", "-m"):
            if len(option) > 2:
                return unbuffered, option[:2], option[2:], argv
            if not argv:
                raise ValueError(f"Argument expected for the {option} option")
            return unbuffered, option, argv[0], argv[1:]
        elif option.startswith("-") and option != "-":
            raise ValueError(f"mpctl.worker: the python3 option {option} is not supported in a warm worker "
                             "(-c, -m and -u are)")
        else:
            return unbuffered, "file", option, argv
    return unbuffered, "file", "", []


def _is_call(argv):
    """Whether ARGV is a call as mpctl.futures.ProcessPoolExecutor submits it: `-m mpctl.call RESULT`."""
    return isinstance(argv, list) and len(argv) == 3 and argv[:2] == ["-m", "mpctl.call"] and isinstance(argv[2], str)


_CALL_MAIN = None  # the empty __main__ a call without one of its caller's runs beside, as python3 makes it
_CALL_STDIO = None  # (stdin, stdout, stderr) of the calls, made once: see run_call


def run_call(run):
    """A call of mpctl.futures.ProcessPoolExecutor in a worker that runs tasks in its own process: what
    run_argv would do for `-m mpctl.call RESULT`, less what the call does not need of python3's start. The
    module is not found and run again each time (mpctl.call's main is called), and the call's sys.std*
    streams are made once and kept (stdout and stderr write to descriptors 1 and 2, the call's files,
    flushed at its end; stdin reads /dev/null, as multiprocessing's children have it). The call is the run's
    input, handed to mpctl.call as bytes, or, when it came through a file, on descriptor 0, which mpctl.call
    reads. A call costs the worker a fifth less than through run_argv."""
    global _CALL_MAIN, _CALL_STDIO
    import mpctl.call  # imported already by InProcess, which hands it where a small outcome goes
    argv = run["argv"]
    sys.orig_argv = ["python3", *argv]
    sys.argv = list(argv)  # a list of its own: mpctl.call replaces its items with the caller's
    if _CALL_MAIN is None:
        _CALL_MAIN = types.ModuleType("__main__")
        _CALL_MAIN.__builtins__ = builtins
    sys.modules["__main__"] = _CALL_MAIN  # until mpctl.call puts its caller's there
    if _CALL_STDIO is None or any(stream.closed for stream in _CALL_STDIO):  # a call may close them
        old = sys.__stdout__  # the worker's own, put back after each task
        encoding, errors = getattr(old, "encoding", None), getattr(old, "errors", None)
        _CALL_STDIO = (open(os.devnull, encoding=encoding, errors=errors),
                       *(io.TextIOWrapper(io.open(fd, "wb", closefd=False), encoding=encoding, errors=errors,
                                          newline="\n", line_buffering=fd == 2) for fd in (1, 2)))
    for name, stream in zip(("stdin", "stdout", "stderr"), _CALL_STDIO):
        setattr(sys, name, stream)
        setattr(sys, f"__{name}__", stream)
    return _run_main(_call_main, mpctl.call.main, argv[2:], run.get("input"))


def _call_main(main, argv, call):
    sys.exit(main(argv, call))


# How each kind of run message is run in the task's process: a function of the run message that returns the
# exit status. Another kind (a pickled callable, for an executor) is another entry.
KINDS = {"argv": run_argv}


def _run_source(main, source, filename, as_file=False):
    """Run SOURCE in MAIN's namespace as python3 runs -c code (AS_FILE false) or a file."""
    if as_file:  # python3 sets these for a file or stdin, and takes them away once it has run
        main.__file__, main.__cached__ = filename, None
    try:
        exec(_compile(source, filename), vars(main))
    finally:
        if as_file:
            vars(main).pop("__file__", None)
            vars(main).pop("__cached__", None)


# Compiled code kept between tasks, in a worker that runs tasks in its own process (--in-process sets it):
# a small script or module costs more to compile (~0.3 ms for mpctl.call without a .pyc) than to run.
CODE_CACHE = None  # {key: code}, or None to keep nothing
CODE_CACHE_SIZE = 64


def _cache(key, make):
    if CODE_CACHE is None:
        return make()
    code = CODE_CACHE.get(key)
    if code is None:
        if len(CODE_CACHE) >= CODE_CACHE_SIZE:
            CODE_CACHE.pop(next(iter(CODE_CACHE)))  # the oldest
        code = CODE_CACHE[key] = make()
    return code


def _compile(source, filename):
    """compile() of a task's program, as python3 compiles it; the same source of the same name is compiled
    once (the key holds the whole source: no file that changed can be taken for the one compiled)."""
    return _cache(("source", filename, source), lambda: compile(source, filename, "exec", dont_inherit=True))


def _run_module_as_main(name):
    """What python3 -m NAME calls (runpy._run_module_as_main, so that a traceback shows python3's frames),
    with the module's spec and code kept for the next task that names it with the same sys.path while its
    file's size and time are the same: runpy's finder is wrapped for the while."""
    if CODE_CACHE is None:
        return runpy._run_module_as_main(name, True)
    find = runpy._get_module_details

    def cached(mod_name, error=ImportError):
        key = ("module", mod_name, tuple(sys.path))
        hit = CODE_CACHE.get(key)
        if hit is not None:
            if hit[1] == _file_key(hit[0][1].origin):
                return hit[0]
            del CODE_CACHE[key]  # the file changed since
        found = find(mod_name, error)
        _cache(key, lambda: (found, _file_key(found[1].origin)))
        return found
    runpy._get_module_details = cached
    try:
        return runpy._run_module_as_main(name, True)
    finally:
        runpy._get_module_details = find


def _file_key(path):
    try:
        stat = os.stat(path)
    except (OSError, TypeError, ValueError):
        return None
    return stat.st_mtime_ns, stat.st_size, stat.st_ino


def _run_main(function, *args):
    """Call FUNCTION(*ARGS) as python3 runs its main program, and handle what it raises as python3 does;
    returns the exit status."""
    try:
        function(*args)
        return 0
    except SystemExit as exit:
        code = exit.code
        if code is None:
            return 0
        if isinstance(code, int):
            return code & 0xFF if -2**63 <= code < 2**63 else 255  # exit() of a C long, as python3
        if sys.stderr is not None:
            print(code, file=sys.stderr)
        return 1
    except BaseException as error:
        # The traceback without this module's frames starts where python3's would: at the task's code, or
        # at runpy's for -m (whose frames python3 shows too).
        tb = error.__traceback__
        while tb is not None and tb.tb_frame.f_globals is globals():
            tb = tb.tb_next
        sys.last_type, sys.last_value, sys.last_traceback = type(error), error, tb
        sys.excepthook(type(error), error.with_traceback(tb), tb)
        return -signal.SIGINT if isinstance(error, KeyboardInterrupt) else 1


def _open_stdio(unbuffered):
    """sys.stdin, stdout and stderr for descriptors 0-2 as python3 makes them at its start (create_stdio,
    pylifecycle.c). The worker's own were made for its descriptors (a log file), so their line buffering
    (a terminal's), seekability and -u may not be the task's."""
    for fd, name in enumerate(("stdin", "stdout", "stderr")):
        old, write = getattr(sys, f"__{name}__"), fd > 0
        binary = io.open(fd, "wb" if write else "rb", buffering=0 if unbuffered and write else -1, closefd=False)
        (binary if isinstance(binary, io.FileIO) else binary.raw).name = f"<{name}>"
        stream = io.TextIOWrapper(binary, encoding=getattr(old, "encoding", None), errors=getattr(old, "errors", None),
                                  newline="\n", line_buffering=not unbuffered and (fd == 2 or binary.isatty()),
                                  write_through=unbuffered)
        stream.mode = "w" if write else "r"
        setattr(sys, name, stream)
        setattr(sys, f"__{name}__", stream)


def _pythonpath(environ):
    """The entries python3 puts in sys.path for $PYTHONPATH in ENVIRON (made absolute against the cwd)."""
    value = "" if sys.flags.ignore_environment else environ.get("PYTHONPATH", "")
    return [os.path.abspath(entry) for entry in value.split(os.pathsep)] if value else []


def _set_sys_path(path0):
    """sys.path as python3 would make it for this task: PATH0, the task's $PYTHONPATH, then the installation's
    own entries; without repeats after PATH0 (site.removeduppaths)."""
    sys.path[:] = [path0, *dict.fromkeys(_pythonpath(os.environ) + BASE_PATH)]


if __name__ == "__main__":
    sys.exit(main())
