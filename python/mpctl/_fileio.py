"""Whole files and descriptors at the os level, for the executor, its calls and the warm worker: io.open's
objects cost ~45 us a call more. A module of its own, so that the worker imports it without importing
mpctl.call, which its tasks run as __main__."""
import os


def _read_all(fd):
    """What is left to read of FD."""
    chunks = []
    while chunk := os.read(fd, 1 << 20):
        chunks.append(chunk)
    return b"".join(chunks)


def _write_all(fd, data):
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _write_new(path, data):
    """The file at PATH made to hold DATA (replacing one a previous attempt wrote), readable by this user only:
    a pickled call or result may hold secrets."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    try:
        _write_all(fd, data)
    finally:
        os.close(fd)


def _memory_file(data):
    """A descriptor (close-on-exec) of an anonymous memory file holding DATA, at offset 0: a stdin of bytes."""
    fd = os.memfd_create("mpctl-input", os.MFD_CLOEXEC)
    try:
        _write_all(fd, data)
        os.lseek(fd, 0, os.SEEK_SET)
    except BaseException:
        os.close(fd)
        raise
    return fd
