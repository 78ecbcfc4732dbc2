"""multiprocessing.shared_memory on the daemon's registry of segments (proto/PROTOCOL.md, "shm.create" to
"shm.list_set"): the segments this module creates are made by the daemon, so they are leased (unlinked when
the process that created them dies, SIGKILL included), listed by `mpctl shm list`, and never unlinked behind
the registry's back by CPython's resource tracker.

    from mpctl.shared_memory import SharedMemory, ShareableList
    shm = SharedMemory(create=True, size=4096)      # /dev/shm/psm_xxxxxxxx, leased to this process
    shm.buf[:5] = b"hello"
    other = SharedMemory(shm.name)                  # in any process: attaches, as CPython's does
    sl = ShareableList([1, 2.5, "three", None])     # CPython's ShareableList, on a leased segment

What maps to what:

- SharedMemory(name=None, create=False, size=0) is multiprocessing.shared_memory.SharedMemory (and a
  subclass of it): name, size, buf, close(), unlink(), repr, pickling by name (the other side attaches).
  Attaching opens /dev/shm/NAME and maps it, as CPython does (shm_open is that open on Linux); creating asks
  the daemon (shm.create) for the segment, then attaches to it. Without a name a random one like CPython's
  (psm_ and 8 hex digits) is chosen, and another one while the daemon says it exists. size is the file's
  size, as CPython reports it on Linux (not rounded to pages); as in CPython, it is ignored when attaching.
  Errors are CPython's: FileNotFoundError for a missing name, FileExistsError for a name that exists
  (the daemon's invalid_state), ValueError for a size of 0 and for no name without create.
- ShareableList(sequence=None, *, name=None) is multiprocessing.shared_memory.ShareableList (a subclass
  of it), in its byte layout: every CPython from 3.9 reads and changes a list made here, and the other way
  round; for ASCII strings (and everything that is not a string) the segment holds exactly the bytes
  CPython's own ShareableList makes for the same values. Its `shm` is a SharedMemory of this module.

Keyword-only additions: persist=True (SharedMemory, ShareableList) creates a segment with no lease, which
stays until unlink(); mode (SharedMemory, octal text or an int, default "600" as CPython's 0o600) is the
segment's mode; client (an mpctl.Client) or socket (its path) says which daemon to ask, else
mpctl.sync.default_client(): one connection per process, shared with mpctl.sync, a forked child's own.
track (3.13's) is taken and ignored: this module never tracks anything.

Where this differs from multiprocessing.shared_memory:

- Nothing is ever registered with multiprocessing's resource tracker. CPython 3.8-3.12 registers every
  segment a process creates or even only attaches to, and unlinks them all when that process exits: a
  process that attached with CPython's class and exits takes the segment away from every other process.
  Attaching here leaves the segment alone; what unlinks a segment made here is unlink(), or the end of its
  lease (its creator's death), or the daemon stopping (unless persist). Do not call
  resource_tracker.unregister() on these objects (the tracker, which never saw them, complains).
- A segment is leased to the process that calls the constructor (its pid is passed, so a Client shared
  with a forked child leases to the child that creates), not left behind when the creator exits: a
  segment meant to outlive its creator takes persist=True. CPython's creator leaves it to its resource
  tracker, which unlinks it when the creator exits unless unlink() or unregister was called.
- unlink() asks the daemon (shm.unlink), which unlinks any segment, registered or not, and forgets it;
  FileNotFoundError when there is none, as CPython's. It needs a daemon (a Client may start one).
- Names: leading '/' are dropped, as glibc's shm_open drops them; a '/' further on is OSError EINVAL, as in
  CPython. Creating also refuses '.', '..' and names past 255 bytes with ValueError (mpctl.InvalidParams),
  as it does a size past the daemon's shm_max_size (16 GiB by default).
- A failure after creating unlinks the segment, as CPython does; a failure to attach (an empty file cannot
  be mapped) leaves the segment alone, where CPython 3.8-3.12 unlinks what it could not attach to.
- Pickling carries the socket of the daemon when one was given, so that unlink() in the other process asks
  the same daemon.
- ShareableList sizes a str's slot by its UTF-8 bytes, not its characters (as the daemon's shm.list_create
  does, and as the fix of CPython's gh-88336 does). CPython 3.9 to 3.13.0 size it by len(str): a non-ASCII
  string is cut to its slot, silently (what is read back is shorter) or into a UnicodeDecodeError on every
  read. Only such strings get a bigger slot than CPython would give them; CPython reads the list all the
  same (a reader follows the offsets stored in the segment), and __setitem__ is CPython's own code.
- ShareableList checks its values (types, int64 range, encodable str, slots of 8-character formats)
  before the daemon creates anything: a bad value creates no segment. As in CPython, a list created under
  a NAME is visible before its image is written (a process attaching that early sees zeros).
- POSIX (/dev/shm) only.
"""
import errno, functools, mmap, os, secrets, struct

from multiprocessing import shared_memory as _cpython

from mpctl import client as _client
from mpctl.sync import default_client

__all__ = ["SharedMemory", "ShareableList"]

SHM_DIR = "/dev/shm"
_ENCODING = "utf-8"  # CPython's ShareableList encodes str as "utf8"
_CREATE_TRIES = 1000  # random names tried before giving up (each is 32 bits: a clash is rare)


def _random_name():
    """A name as CPython's _make_filename() makes them, without its leading '/': psm_ and 8 hex digits."""
    return "psm_" + secrets.token_hex(4)


def _file_name(name):
    """NAME as the file under /dev/shm, as glibc's shm_open finds it: leading '/' dropped, no other '/'."""
    if not isinstance(name, str):
        raise TypeError(f"a shared memory name is a str, not {type(name).__name__}")
    file = name.lstrip("/")
    if not file or "/" in file:
        raise OSError(errno.EINVAL, os.strerror(errno.EINVAL), "/" + name)
    return file


def _mode_text(mode):
    if isinstance(mode, int) and not isinstance(mode, bool):
        return format(mode, "o")
    if isinstance(mode, str):
        return mode
    raise TypeError(f"mode is octal text (\"640\") or an int (0o640), not {mode!r}")


def _socket_of(client, socket):
    """What a pickled object needs to find the same daemon: the socket path, or None for the default."""
    return client.socket_path if client is not None else socket


class SharedMemory(_cpython.SharedMemory):
    """multiprocessing.shared_memory.SharedMemory whose segments the daemon creates (leased to the calling
    process, or with PERSIST none) and unlinks, and which never registers anything with the resource tracker.
    MODE: the new segment's mode. CLIENT, SOCKET: the daemon to ask (else mpctl.sync.default_client()).
    TRACK is accepted for 3.13's signature and means nothing here."""

    # close(), name, size, buf, __repr__ and __del__ are CPython's, on the attributes __init__ sets as CPython's
    # does: _name ("/" + the name), _fd, _mmap, _buf and _size.

    def __init__(self, name=None, create=False, size=0, *, persist=False, mode="600", track=True, client=None,
                 socket=None):
        if not size >= 0:
            raise ValueError("'size' must be a positive integer")
        if create and size == 0:
            raise ValueError("'size' must be a positive number different from zero")
        if name is None and not create:
            raise ValueError("'name' can only be None if create=True")
        self._client, self._socket = client, socket
        if create:
            file = self._create(name, size, persist, _mode_text(mode))
        else:
            file = _file_name(name)
        self._attach(name if name is not None else file, file, created=create)

    @property
    def client(self):
        """The mpctl.Client this object asks the daemon through."""
        client = self._client if self._client is not None else default_client(self._socket)
        if client.remote:  # its segments are files of its machine, which this process cannot map
            raise ValueError(f"shared memory needs the daemon of this machine, not a remote one ({client.address})")
        return client

    def _create(self, name, size, persist, mode):
        """Have the daemon create the segment: its name (the file under /dev/shm)."""
        params = {"size": size, "mode": mode}
        if persist:
            params["persist"] = True
        else:
            # The calling process, whichever process opened the connection (a Client may have been made
            # before a fork); the daemon watches it and unlinks the segment when it exits.
            params["pid"] = os.getpid()
        client = self.client
        for _ in range(_CREATE_TRIES if name is None else 1):
            file = _random_name() if name is None else _file_name(name)
            try:
                return client.call("shm.create", params, name=file)["name"]
            except _client.InvalidState:  # the name exists
                if name is not None:
                    raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), "/" + name) from None
        raise FileExistsError(errno.EEXIST, f"{_CREATE_TRIES} random names all exist")

    def _attach(self, name, file, created):
        # As CPython: _name is "/" + the name asked for (its name property drops the '/'); the descriptor stays
        # open until close(); the size is the file's. shm_open is open(2) of /dev/shm/NAME with O_NOFOLLOW
        # (and O_CLOEXEC, which os.open sets).
        self._name = "/" + name
        try:
            try:
                self._fd = os.open(os.path.join(SHM_DIR, file), os.O_RDWR | os.O_NOFOLLOW)
            except OSError as error:  # named as CPython names it: "/NAME", not the path
                raise OSError(error.errno, error.strerror, self._name) from None
            size = os.fstat(self._fd).st_size
            self._mmap = mmap.mmap(self._fd, size)
        except BaseException:
            self.close()
            if created:
                try:
                    self.unlink()
                except (OSError, _client.Error):
                    pass  # the error that matters is the one raised
            raise
        self._size = size
        self._buf = memoryview(self._mmap)

    def unlink(self):
        """Have the daemon unlink the segment (registered or not) and forget it. Processes that map it keep
        their mapping. FileNotFoundError when no segment has the name."""
        if not self._name:
            return
        try:
            self.client.call("shm.unlink", name=_file_name(self._name))
        except _client.UnknownId:
            raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), self._name) from None

    def __reduce__(self):
        # As CPython's, (class, (name, False, size)): the other side attaches by name. A socket given goes
        # along, for unlink() there (a Client cannot be pickled: its socket's path can).
        socket = _socket_of(self._client, self._socket)
        if socket is None:
            return (self.__class__, (self.name, False, self.size))
        return (functools.partial(self.__class__, socket=socket), (self.name, False, self.size))


class ShareableList(_cpython.ShareableList):
    """multiprocessing.shared_memory.ShareableList on a SharedMemory of this module: made through the daemon
    (leased to the calling process, or with PERSIST none), in CPython's layout (str slots sized by UTF-8
    bytes: see the module's notes). CLIENT, SOCKET: the daemon to ask (else mpctl.sync.default_client())."""

    # CPython's __init__ makes its segment with the module global `SharedMemory` of multiprocessing.shared_memory
    # (the class that registers with the resource tracker), so it cannot be called here: swapping that global,
    # even for a moment, would hand this module's class to every other thread's CPython ShareableList. So this
    # __init__ does what CPython's does, in CPython's terms: it builds the image with CPython's own tables
    # (_types_mapping, _alignment, _extract_recreation_code) and layout properties (_offset_data_start and the
    # rest, which read _list_len and _allocated_offsets), the same four struct.pack_into calls at the same
    # offsets, into local memory first; then has the daemon create a segment of that size and copies the image
    # in. The one departure, on purpose, is the slot of a str (see _slot). Every other method (__getitem__,
    # __setitem__, format, count, index, __repr__) is CPython's, reading the two attributes set at the end as
    # CPython's __init__ sets them, from the segment, whoever made it (3.9 to 3.13 alike).

    def __init__(self, sequence=None, *, name=None, client=None, socket=None, persist=False):
        self._socket = _socket_of(client, socket)
        if name is None or sequence is not None:
            image = self._image(tuple(sequence or ()))
            self.shm = SharedMemory(name, create=True, size=len(image), persist=persist, client=client,
                                    socket=socket)
            self.shm.buf[:len(image)] = image
        else:
            self.shm = SharedMemory(name, client=client, socket=socket)
        self._list_len = len(self)  # the count at offset 0
        self._allocated_offsets = list(struct.unpack_from(self._format_size_metainfo, self.shm.buf, 1 * 8))

    def _slot(self, item):
        """The struct format of ITEM's slot, as CPython's: a str or bytes gets the multiple of 8 bytes past its
        length, where a str's length is that of its UTF-8 (CPython counts characters, too few for non-ASCII
        text, which it then cuts: gh-88336); anything else its fixed format. A type CPython's ShareableList
        does not take is its KeyError."""
        fmt = self._types_mapping[type(item)]
        if isinstance(item, (str, bytes)):
            length = len(item.encode(_ENCODING) if isinstance(item, str) else item)
            fmt %= self._alignment * (length // self._alignment + 1)
        return fmt

    def _image(self, items):
        """The segment's bytes for ITEMS, in CPython's layout (see ShareableList's comment in CPython): the
        count, N + 1 offsets, the data area, N formats of 8 bytes, N back-transform codes."""
        formats = [self._slot(item) for item in items]
        if any(len(fmt) > 8 for fmt in formats):  # CPython asserts it: a format is stored in 8 bytes
            raise ValueError("a str or bytes item of 9,999,992 bytes or more does not fit a ShareableList")
        self._list_len = len(formats)
        self._allocated_offsets = [0]
        for fmt in formats:
            self._allocated_offsets.append(self._allocated_offsets[-1] +
                                           (self._alignment if fmt[-1] != "s" else int(fmt[:-1])))
        image = bytearray(struct.calcsize("q" + self._format_size_metainfo + "".join(formats) +
                                          self._format_packing_metainfo + self._format_back_transform_codes))
        struct.pack_into("q" + self._format_size_metainfo, image, 0, self._list_len, *self._allocated_offsets)
        struct.pack_into("".join(formats), image, self._offset_data_start,
                         *(v.encode(_ENCODING) if isinstance(v, str) else v for v in items))
        struct.pack_into(self._format_packing_metainfo, image, self._offset_packing_formats,
                         *(fmt.encode(_ENCODING) for fmt in formats))
        struct.pack_into(self._format_back_transform_codes, image, self._offset_back_transform_codes,
                         *(self._extract_recreation_code(v) for v in items))
        return image

    def __reduce__(self):
        # As CPython's: attach by name on the other side; with the daemon's socket when one was given.
        if self._socket is None:
            return functools.partial(self.__class__, name=self.shm.name), ()
        return functools.partial(self.__class__, name=self.shm.name, socket=self._socket), ()
