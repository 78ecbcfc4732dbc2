"""`python3 -m mpctl.call RESULT`: one call of mpctl.futures.ProcessPoolExecutor, as a task of mpctld.

The task's stdin holds the call (an --in-process warm worker hands it over as bytes instead, from its run's
input): a pickle of (sys_path, sys_argv, main, init, payload), or of (VARIABLE, payload) when the first four
are in the task's environment variable VARIABLE (MPCTL_CALL_CONTEXT) as base64 of their pickle (the executor
puts them there while they fit: calls mostly share them), only built-in types at its top, so that it can be
read before anything is imported. SYS_PATH and SYS_ARGV are the caller's
sys.path and sys.argv, in place while the call runs (as a spawned worker has its parent's); MAIN says where the caller's __main__
module comes from, ("name", module) or ("path", file) or None, so that functions defined there can be found:
it is run as __mp_main__, as multiprocessing's spawn does, once per process; INIT is None or (token, pickled
(initializer, initargs)); PAYLOAD is the pickled (function, args, kwargs). The outcome is pickled into the file RESULT:
("ok", value), ("error", exception with its remote traceback, as concurrent.futures.process sends it),
("lost", the same) when the call itself could not be unpickled (the standard executor's worker dies of that)
or ("broken", traceback text) when the executor's initializer failed. In an --in-process warm worker an outcome
of at most 4 KiB goes back in the worker's done message instead (the task's result, which the daemon keeps
with it), and the file RESULT is not made. The exit status is 0 whenever an outcome
was written: a task that fails otherwise (a signal, os._exit) is a worker that died during the call.

What the call prints goes to the task's stdout and stderr, so `mpctl logs ID` shows it. In a warm worker
run with --in-process (what the executor starts) this module stays imported between calls, so the
initializer runs once per worker, as Pool's does; anywhere else, once per call.
"""
import base64, multiprocessing.spawn, os, pickle, sys, traceback
from concurrent.futures.process import _ExceptionWithTraceback

from mpctl._fileio import _read_all, _write_new

# Bytes of a pickled outcome that go back in the done message (PROTOCOL.md allows 16 KiB): the daemon keeps
# a task's result as long as the task, and an executor's tasks are many; more goes through the file.
INLINE_MAX = 1 << 12
inline = None  # a list, while a warm worker that runs calls in its own process takes the outcome: see main
_initialized = set()  # the executors' tokens whose initializer has run in this process
_mains = {}  # the callers' __main__ modules this process has run, by where they came from
_context = (None, None)  # (the text of the calls' context variable last read, the context it holds)


def main(argv=None, call=None):
    """The call is CALL (bytes: a warm worker hands over its run's input), else read from stdin."""
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print("usage: python3 -m mpctl.call RESULT < CALL", file=sys.stderr)
        return 2
    sys_path, sys_argv, main, init, payload = _unpack(pickle.loads(_read_all(0) if call is None else call))
    sys.path[:], sys.argv[:] = sys_path, sys_argv
    outcome = _main(main) or _initialize(init)
    if outcome is None:
        try:
            function, args, kwargs = pickle.loads(payload)
        except BaseException as error:  # the standard executor's worker dies of it: the call is lost
            outcome = ("lost", _ExceptionWithTraceback(error, error.__traceback__))
    if outcome is None:
        try:
            outcome = ("ok", function(*args, **kwargs))
        except BaseException as error:
            outcome = ("error", _ExceptionWithTraceback(error, error.__traceback__))
    try:
        data = pickle.dumps(outcome, pickle.HIGHEST_PROTOCOL)
    except BaseException as error:  # a result that cannot be pickled: said as concurrent.futures says it
        data = pickle.dumps(("error", _ExceptionWithTraceback(error, error.__traceback__)), pickle.HIGHEST_PROTOCOL)
    if inline is not None and len(data) <= INLINE_MAX:
        inline.append(data)
    else:
        _write_new(argv[0], data)
    return 0


def _unpack(call):
    """CALL as (sys_path, sys_argv, main, init, payload): itself, or (VARIABLE, payload), whose first four are
    in the environment variable VARIABLE (base64 of their pickle), read again only when it changed."""
    global _context
    if len(call) == 5:
        return call
    variable, payload = call
    text = os.environ.get(variable)
    if text is None:
        raise RuntimeError(f"mpctl.call: the call's sys.path, argv and main were to be in ${variable}, not set")
    if text != _context[0]:
        _context = (text, pickle.loads(base64.b64decode(text)))
    return (*_context[1], payload)


def _main(main):
    """The caller's __main__ as this process's __main__ and __mp_main__ (run once per process, as a spawned
    multiprocessing child runs it): None, or the "error" outcome it failed with."""
    if main is None:
        return None
    module = _mains.get(main)
    if module is None:
        try:
            if main[0] == "name":
                multiprocessing.spawn._fixup_main_from_name(main[1])
            else:
                multiprocessing.spawn._fixup_main_from_path(main[1])
        except BaseException as error:
            return ("error", _ExceptionWithTraceback(error, error.__traceback__))
        module = _mains[main] = sys.modules["__main__"]
    sys.modules["__main__"] = sys.modules["__mp_main__"] = module
    return None


def _initialize(init):
    """Run the executor's initializer if this process has not: None, or the "broken" outcome it failed with."""
    if init is None or init[0] in _initialized:
        return None
    token, pickled = init
    try:
        initializer, initargs = pickle.loads(pickled)
        initializer(*initargs)
    except BaseException:
        # As ProcessPoolExecutor's worker, which logs it and exits: the executor is broken from then on.
        print("Exception in initializer:", file=sys.stderr)
        traceback.print_exc()
        return ("broken", traceback.format_exc())
    _initialized.add(token)
    return None


if __name__ == "__main__":
    # Run as __main__, this is a fresh module each call: its state is kept in the imported one.
    import mpctl.call
    sys.exit(mpctl.call.main())
