"""mpctl from Python: the daemon's futures, locks and pools for Python programs, standard library only.

mpctl.Client          the protocol (proto/PROTOCOL.md): one thread-safe connection, errors as mpctl.Error; to
                      a remote daemon over TLS with connect=, fingerprint=, token= (or $MPCTL_CONNECT...)
mpctl.FileLock        filelock.FileLock's API on the daemon's leased file locks (flock(1) sees them)
mpctl.Semaphore, Event, Barrier
                      threading's signatures, across processes
mpctl.futures         ProcessPoolExecutor, CommandExecutor: concurrent.futures whose calls are daemon tasks
mpctl.shared_memory   SharedMemory, ShareableList on the daemon's leased segment registry
mpctl.Queue, Dict     multiprocessing.Manager's Queue and dict: the daemon's durable named queues and dicts
mpctl.worker          the warm worker of a warm pool (`python3 -m mpctl.worker`, see PROTOCOL.md, "Warm workers")

Names are imported when first used, so that `python3 -m mpctl.worker` loads only what it needs.
"""
import importlib

_WHERE = {
    "Client": "client", "Error": "client", "ParseError": "client", "InvalidRequest": "client",
    "MethodNotFound": "client", "InvalidParams": "client", "InternalError": "client", "UnknownId": "client",
    "UnknownTask": "client", "Busy": "client", "Timeout": "client", "Refused": "client", "InvalidState": "client",
    "ShuttingDown": "client", "DaemonIOError": "client", "Deadlock": "client", "ConnectionLost": "client",
    "NoDaemon": "client", "FingerprintMismatch": "client",
    "FileLock": "sync", "Semaphore": "sync", "BoundedSemaphore": "sync", "Event": "sync", "Barrier": "sync",
    "BrokenBarrierError": "sync",
    "Queue": "manager", "Dict": "manager",
}
__all__ = sorted(_WHERE)


def __getattr__(name):
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'mpctl' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"mpctl.{module}"), name)
    globals()[name] = value
    return value
