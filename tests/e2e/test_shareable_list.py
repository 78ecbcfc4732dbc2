#!/usr/bin/env python3
"""ShareableLists (issue "shared memory", second slice) against CPython's own
multiprocessing.shared_memory.ShareableList, both ways: for ASCII data the segment `mpctl shm list-create`
makes is byte for byte the one `ShareableList([...])` makes; Python reads a list mpctl made (int64 extremes,
floats, bools, None, bytes with NULs inside, empty and non-ASCII strings) and assigns to it, and mpctl sees
what it assigned; mpctl reads a list Python made (not registered with the daemon), by index too, and
`mpctl shm list-set` changes it as ShareableList.__setitem__ would: the same bytes as Python's own assignment
on a twin list, and a str or bytes that does not fit its slot changes nothing. VALUE words are JSON when
they read as JSON, else strings; bad values create nothing. Leases as for `mpctl shm create`: a list goes
when its owner is SIGKILLed, and a --persist one outlives `mpctl daemon stop`.

Every segment a test makes has a name of its own (this process's pid and a counter) and is unlinked on
cleanup, pass or fail. Every helper process runs in a session of its own and is killed with its whole group
on cleanup. Nothing sleeps a fixed time: waits poll a condition against a generous deadline."""
import base64, json, os, stat, subprocess, sys, time, unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from py_case import SHM_DIR, DaemonCase, lease_owner, shm_path, unlink_quietly  # noqa: E402
from py_daemon import until  # noqa: E402

PYTHON = "/usr/bin/python3"  # the system Python (3.11 on Debian 12): its ShareableList is the reference

# ShareableList in a Python of its own: `LIST_TOOL ACTION NAME`, stdin a Python literal (ast.literal_eval).
#   make       ShareableList(LITERAL, name=NAME): a list mpctl did not make (nor registered)
#   show       attach ShareableList(name=NAME)
#   set        attach, then sl[INDEX] = VALUE for each (INDEX, VALUE) pair of LITERAL, in order
# Each prints repr(list(sl)) after it, then sl.format (the items' struct formats).
LIST_TOOL = r"""
import ast, sys
from multiprocessing import resource_tracker
from multiprocessing.shared_memory import ShareableList
action, name = sys.argv[1], sys.argv[2]
literal = ast.literal_eval(sys.stdin.read() or "None")
if action == "make":
    sl = ShareableList(literal, name=name)
else:
    sl = ShareableList(name=name)
# CPython 3.8-3.12 registers every segment a process creates OR attaches to with the process's resource
# tracker, which unlinks them all once the process exits, as "leaked". Unregistering the segment right after
# attaching is the documented workaround (CPython issue bpo-38119 / gh-82300; 3.13 adds
# SharedMemory(track=False) for it). Without it a list the daemon made, or one this process means to leave
# behind, would vanish shortly after this process exits.
resource_tracker.unregister(sl.shm._name, "shared_memory")
if action == "set":
    for index, value in literal:
        sl[index] = value
elif action not in ("make", "show"):
    sys.exit("unknown action " + action)
print(repr(list(sl)))
print(sl.format)
sl.shm.close()
"""

INT64_MAX, INT64_MIN = 2**63 - 1, -2**63




def to_json(value):
    """A Python item as mpctl takes and gives it: bytes as {"base64": ...}."""
    if isinstance(value, bytes):
        return {"base64": base64.b64encode(value).decode()}
    return value


def from_json(value):
    if isinstance(value, dict):
        return base64.b64decode(value["base64"], validate=True)
    return value


def read_back(value):
    """What reading an item gives: as in CPython, trailing NUL bytes of a str or bytes are stripped."""
    if isinstance(value, bytes):
        return value.rstrip(b"\0")
    if isinstance(value, str):
        return value.rstrip("\0")
    return value


def exact(values):
    """repr tells True from 1, 1.0 from 1, -0.0 from 0.0 and b'' from '': what == does not."""
    return repr(list(values))


def split_options(args):
    """ARGS of `mpctl shm list-create` as (its options, its VALUE words): options go before NAME."""
    options, values, i = [], [], 0
    while i < len(args):
        if args[i] in ("--values", "--mode", "--ttl", "--owner-pid"):
            options += args[i:i + 2]
            i += 2
        elif args[i] in ("--persist", "--json"):
            options.append(args[i])
            i += 1
        else:
            values.append(args[i])
            i += 1
    return options, values


class ShareableListInterop(DaemonCase):
    # --- helpers -----------------------------------------------------------------------------------------

    def list_create(self, name, values, *options):
        """`mpctl shm list-create --values JSON OPTIONS --json NAME`: what it printed."""
        made = json.loads(self.mpctl_ok(["shm", "list-create", "--values",
                                         json.dumps([to_json(v) for v in values]), *options, "--json", name]))
        self.assertEqual((made["name"], made["path"], made["items"]), (name, shm_path(name), len(values)), made)
        return made

    def list_get(self, name, *index):
        """`mpctl shm list-get NAME [INDEX] --json`, as Python values."""
        got = json.loads(self.mpctl_ok(["shm", "list-get", name, *map(str, index), "--json"]))
        return from_json(got) if index else [from_json(v) for v in got]

    def listed_all(self):
        out = self.mpctl_ok(["shm", "list", "--all", "--json"]).decode()
        return {json.loads(line)["name"] for line in out.splitlines() if line.strip()}

    def python(self, action, name, literal=None):
        """LIST_TOOL ACTION NAME in /usr/bin/python3, LITERAL's repr on its stdin: (repr of the list, format)."""
        done = subprocess.run([PYTHON, "-c", LIST_TOOL, action, name],
                              input=b"" if literal is None else repr(literal).encode(), capture_output=True,
                              timeout=300)
        self.assertEqual(done.returncode, 0, f"python LIST_TOOL {action} {name}: {done.stderr.decode()}")
        shown, fmt = done.stdout.decode().split("\n")[:2]
        return shown, fmt

    def python_sees(self, name, values, what=""):
        """Python's ShareableList(name=NAME) reads VALUES (as read back), with their types."""
        shown, _ = self.python("show", name)
        self.assertEqual(shown, exact(map(read_back, values)), f"python reads {name} {what}")

    def image(self, name):
        with open(shm_path(name), "rb") as f:
            return f.read()

    # --- 1. byte for byte ---------------------------------------------------------------------------------

    def test_a_list_mpctl_creates_is_byte_for_byte_the_one_cpython_creates(self):
        cases = {
            "mixed": [42, -1.5, True, None, "hello", "", b"\x00\x01", INT64_MAX, INT64_MIN, "abcdefgh"],
            "empty": [],
            "slot-edges": ["x" * 7, "x" * 8, "x" * 16],
            "bytes": [b"", b"\x00" * 5 + b"z"],
            "floats": [0.0, -0.0, 5e-324, 2.2250738585072014e-308, -2.5, 1.0, 0.1, 1e18],
            # JSON has no inf or nan: only finite floats. 1e308 and 1e20 are floats in JSON as in Python.
            "large-floats": [1e308, 1.7976931348623157e308, -1e300, 1e20, 9.223372036854776e18],
            "bools-and-nones": [True, False, None, None],
            "ints": [0, 1, -1, 255, 256, 2**31, -2**31 - 1, 2**53 + 1],
            "one-string": ["the quick brown fox jumps over the lazy dog"],
        }
        for tag, values in cases.items():
            with self.subTest(tag):
                mine, theirs = self.segment("mpctl-" + tag), self.segment("cpython-" + tag)
                self.python("make", theirs, values)
                made = self.list_create(mine, values)
                self.assertEqual(made["size"], len(self.image(theirs)), f"{tag}: size of {values!r}")
                self.assertEqual(self.image(mine).hex(" ", 8), self.image(theirs).hex(" ", 8),
                                 f"{tag}: the segment of {values!r} (left mpctl's, right CPython's)")
                self.assertEqual(self.mpctl_ok(["shm", "read", mine]), self.image(theirs))
                # Both read back the same, in Python and in mpctl.
                self.python_sees(mine, values)
                self.assertEqual(exact(self.list_get(mine)), exact(map(read_back, values)))
                self.assertEqual(exact(self.list_get(theirs)), exact(map(read_back, values)))

    # --- 2. made by mpctl, read and changed by Python ----------------------------------------------------

    def test_python_reads_a_list_mpctl_made_and_mpctl_sees_what_python_assigns(self):
        name = self.segment("mpctl-made")
        unicode = "héllo wörld ✓ 日本"
        self.assertEqual((len(unicode), len(unicode.encode())), (16, 24))
        values = [INT64_MAX, INT64_MIN, 0, 1.5, -0.0, 5e-324, True, False, None, b"\x00a\x00\x00b\x00", b"",
                  "", unicode, "replace-me", "abcdefgh", "x"]
        made = self.list_create(name, values)
        self.assertEqual(made["registered"], True)
        self.assertEqual(made["lease"], {"kind": "process", "pid": os.getpid()})
        self.python_sees(name, values)
        shown, fmt = self.python("show", name)
        # A non-ASCII string's slot is sized by its UTF-8 length (24 bytes: a 32-byte slot), ints and floats
        # take 8 bytes, None and bools are padded to 8.
        self.assertEqual(fmt, "qqqddd" + "xxxxxxx?" * 2 + "xxxxxx?x" + "8s8s8s32s16s16s8s")

        # Python assigns: an int over a str slot, a shorter (non-ASCII) str, a float over an int, None over a
        # float, a bool over None, a str into an int's slot, bytes over a str, a str filling its slot.
        changes = [(13, 12345), (12, "short ✓"), (0, 2.25), (3, None), (8, True), (2, "ab"), (11, b"\x01\x00\x02"),
                   (15, "yyyyyyy"), (-2, "12345678" * 2), (7, False), (-16, -7)]
        expected = list(values)
        for index, value in changes:
            expected[index] = value
        shown, _ = self.python("set", name, changes)
        self.assertEqual(shown, exact(map(read_back, expected)), "python's own view after assigning")
        self.assertEqual(exact(self.list_get(name)), exact(map(read_back, expected)), "mpctl list-get --json")
        for index in (0, 2, 3, 8, 11, 12, 13, -2, -1):
            self.assertEqual(exact([self.list_get(name, index)]), exact([read_back(expected[index])]), f"item {index}")

        # The slot of item 13 (a str of 10 bytes: 16) now holds an int: a str of 16 bytes still fits, 17 not.
        self.mpctl_ok(["shm", "list-set", name, "13", "0123456789abcdef"])
        expected[13] = "0123456789abcdef"
        self.python_sees(name, expected, "after list-set of a str that fills the slot of a str an int replaced")
        before = self.image(name)
        done = self.mpctl(["shm", "list-set", name, "13", "0123456789abcdefg"])
        self.assertEqual(done.returncode, 6, done.stderr.decode())
        self.assertIn(b"does not fit", done.stderr)
        # The non-ASCII string's slot is 32 bytes: 11 three-byte characters (33 bytes) do not fit, 10 do.
        done = self.mpctl(["shm", "list-set", name, "12", "日" * 11])
        self.assertEqual(done.returncode, 6, done.stderr.decode())
        self.assertIn(b"does not fit", done.stderr)
        self.assertEqual(self.image(name), before, "a list-set that does not fit changed the segment")
        self.mpctl_ok(["shm", "list-set", name, "12", "日" * 10])
        expected[12] = "日" * 10
        self.python_sees(name, expected, "after list-set of 30 bytes of UTF-8 in a 32-byte slot")
        self.assertEqual(exact(self.list_get(name)), exact(map(read_back, expected)))

    # --- 3. made by Python, read and changed by mpctl ----------------------------------------------------

    def test_mpctl_reads_and_sets_a_list_python_made_as_python_would(self):
        values = [42, -1, INT64_MAX, INT64_MIN, 3.25, -0.0, True, False, None, "hello", "", "abcdefgh",
                  b"\x00\x01\x00", b"", "x" * 20]
        name, twin = self.segment("python-made"), self.segment("python-twin")
        self.python("make", name, values)
        self.python("make", twin, values)
        self.assertNotIn(name, self.mpctl_ok(["shm", "list"]).decode(), "a list Python made is registered")
        self.assertIn(name, self.listed_all())

        expected = [read_back(v) for v in values]
        self.assertEqual(exact(self.list_get(name)), exact(expected))
        n = len(values)
        for index in (0, 2, 3, 5, 6, 8, 10, 12, 13, n - 1, -1, -2, -6, -n):
            self.assertEqual(exact([self.list_get(name, index)]), exact([expected[index]]), f"item {index}")
        for index in (n, -n - 1, 1000):
            done = self.mpctl(["shm", "list-get", name, str(index), "--json"])
            self.assertEqual(done.returncode, 6, f"list-get index {index}: {done.stderr.decode()}")

        # Without --json: one item a line, strings as they are, the rest as JSON.
        plain = self.mpctl_ok(["shm", "list-get", name]).decode().split("\n")
        self.assertEqual(plain[-1], "")
        self.assertEqual(len(plain) - 1, n, plain)
        for line, value in zip(plain, expected):
            if isinstance(value, str):
                self.assertEqual(line, value)
            else:
                self.assertEqual(exact([from_json(json.loads(line))]), exact([value]), f"line {line!r}")
        self.assertEqual(self.mpctl_ok(["shm", "list-get", name, "9"]), b"hello\n")
        self.assertEqual(self.mpctl_ok(["shm", "list-get", name, "-7"]), b"null\n")

        # mpctl list-set on the list, Python's __setitem__ on its twin: the same bytes after each.
        changes = [("9", "bye", "bye"), ("0", "-7.5", -7.5), ("14", "12", 12), ("8", "false", False),
                   ("4", "null", None), ("13", '{"base64":"AP8A"}', b"\x00\xff\x00"), ("1", '"12345678"', "12345678"),
                   ("-3", "short", "short"), ("2", str(INT64_MIN), INT64_MIN), ("3", str(INT64_MAX), INT64_MAX),
                   ("14", "twenty-four bytes, full!", "twenty-four bytes, full!"), ("6", "true", True),
                   ("7", "0.5", 0.5), ("10", '""', ""), ("-15", "yes", "yes")]
        for index, text, value in changes:
            self.mpctl_ok(["shm", "list-set", name, index, text])
            self.python("set", twin, [(int(index), value)])
            expected[int(index)] = read_back(value)
            self.assertEqual(self.image(name).hex(" ", 8), self.image(twin).hex(" ", 8),
                             f"after list-set {index} {text!r} (left mpctl's, right Python's assignment)")
        self.python_sees(name, expected, "after mpctl's list-sets")
        self.assertEqual(exact(self.list_get(name)), exact(expected))

        # A str or bytes that does not fit its slot: exit 6, nothing changes. An index out of range: exit 6.
        before = self.image(name)
        for index, text in (("11", "y" * 17), ("9", "abcdefghi"), ("13", '{"base64":"' + "A" * 12 + '"}'),
                            ("14", "z" * 25), ("-1", "z" * 25), (str(n), "1"), (str(-n - 1), "1"), ("99", "x")):
            done = self.mpctl(["shm", "list-set", name, index, text])
            self.assertEqual(done.returncode, 6, f"list-set {index} {text!r}: {done.stderr.decode()}")
            self.assertTrue(done.stderr, f"list-set {index} {text!r} said nothing")
            if int(index) < n and int(index) >= -n:
                self.assertIn(b"does not fit", done.stderr)
            self.assertEqual(self.image(name), before, f"list-set {index} {text!r} changed the segment")
        self.python_sees(name, expected, "after list-sets that were refused")

        # An empty list Python made.
        empty = self.segment("python-empty")
        self.python("make", empty, [])
        self.assertEqual(self.list_get(empty), [])
        self.assertEqual(self.mpctl_ok(["shm", "list-get", empty]), b"")
        self.assertEqual(self.mpctl(["shm", "list-get", empty, "0"]).returncode, 6)
        self.assertEqual(self.mpctl(["shm", "list-set", empty, "0", "1"]).returncode, 6)

        # A segment that holds no list (its item count is -1): exit 1, nothing changes.
        junk = self.segment("no-list")
        self.mpctl_ok(["shm", "create", junk, "--size", "64"])
        self.mpctl_ok(["shm", "write", junk], input=b"\xff" * 64)
        done = self.mpctl(["shm", "list-set", junk, "0", "1"])
        self.assertEqual(done.returncode, 1, done.stderr.decode())
        self.assertTrue(done.stderr)
        self.assertNotEqual(self.mpctl(["shm", "list-get", junk]).returncode, 0)
        self.assertEqual(self.image(junk), b"\xff" * 64)

    # --- 4. value words ----------------------------------------------------------------------------------

    def test_value_words_are_json_when_they_read_as_json_and_bad_values_create_nothing(self):
        name = self.segment("words")
        made = json.loads(self.mpctl_ok(["shm", "list-create", "--mode", "640", "--json", name, "42", "-1.5", "true",
                                         "null", "hello", '"42"', '{"base64":"AAE="}', "two words", "3.0", "false"]))
        self.assertEqual(set(made), {"name", "path", "size", "mode", "created_at", "registered", "persist",
                                     "lease", "items"}, made)
        self.assertEqual((made["name"], made["items"], made["mode"], made["persist"]), (name, 10, "0640", False))
        self.assertEqual(stat.S_IMODE(os.stat(shm_path(name)).st_mode), 0o640)
        self.assertEqual(made["size"], os.stat(shm_path(name)).st_size)
        self.python_sees(name, [42, -1.5, True, None, "hello", "42", b"\x00\x01", "two words", 3.0, False])

        listed = self.segment("values")
        made = json.loads(self.mpctl_ok(["shm", "list-create", "--values", '[1, "a", null]', "--json", listed]))
        self.assertEqual(made["items"], 3)
        self.python_sees(listed, [1, "a", None])
        self.assertEqual(self.mpctl_ok(["shm", "list-get", listed]), b"1\na\nnull\n")

        # No value at all: an empty list.
        empty = self.segment("no-words")
        self.assertEqual(json.loads(self.mpctl_ok(["shm", "list-create", "--json", empty]))["items"], 0)
        self.python_sees(empty, [])

        with self.subTest("an integer past int64 is kept as a float (ShareableList cannot hold such an int)"):
            big = self.segment("big")
            self.mpctl_ok(["shm", "list-create", big, "9223372036854775808", "-9223372036854775809"])
            self.python_sees(big, [9223372036854775808.0, -9223372036854775809.0])

        with self.subTest("a word in brackets that is not JSON is a string, as it is"):
            brackets = self.segment("brackets")
            self.mpctl_ok(["shm", "list-create", brackets, "[x]", "[a, b]", "a,b"])
            self.python_sees(brackets, ["[x]", "[a, b]", "a,b"])

        stem = self.segment("bad")  # never created; what is tried below all starts with it
        self.addCleanup(lambda: [unlink_quietly(e) for e in os.listdir(SHM_DIR) if e.startswith(stem)])
        bad = [["[1]"], ["5", '[1, 2]', "7"], ['{"x":1}'], ["{}"], ['{"base64":"AAE=","x":1}'], ['{"base64":"!!"}'],
               ['"a\\u0000b"'],
               ["--values", "[[1]]"], ["--values", '[{"x":1}]'], 
               ["--values", '{"a":1}'], ["--values", "nope"], ["--values", "[1]", "2"],
               ["1", "--persist", "--ttl", "5"]]
        with self.subTest("options go before NAME: one after it is refused, not taken for a value"):
            target = f"{stem}-late-option"
            done = self.mpctl(["shm", "list-create", target, "1", "--persist"])
            self.assertEqual(done.returncode, 2, done.stderr.decode())
            self.assertIn(b"options go before NAME", done.stderr)
            self.assertFalse(os.path.exists(shm_path(target)))
        for i, args in enumerate(bad):
            with self.subTest(f"bad values {args}"):
                target = f"{stem}-{i}"
                options, values = split_options(args)
                done = self.mpctl(["shm", "list-create", *options, target, *values])
                self.assertIn(done.returncode, (2, 6), f"list-create {args}: {done.stderr.decode()}")
                self.assertTrue(done.stderr, f"list-create {args} said nothing")
                self.assertFalse(os.path.exists(shm_path(target)), f"list-create {args} created {target}")
                self.assertNotIn(target, self.listed_all())

        # list-set takes the same words; bad ones change nothing.
        before = self.image(name)
        for word in ("[1]", '{"x":1}'):
            done = self.mpctl(["shm", "list-set", name, "0", word])
            self.assertIn(done.returncode, (2, 6), f"list-set {word}: {done.stderr.decode()}")
            self.assertTrue(done.stderr)
        self.assertEqual(self.image(name), before)

    # --- 5. leases ---------------------------------------------------------------------------------------

    def test_a_list_goes_with_its_owner_or_ttl_and_a_persistent_one_outlives_the_daemon(self):
        # The owner is the Python process that ran mpctl; SIGKILLed.
        name = self.segment("owner")
        grant_file = self.path("owner.grant")
        owner = self.spawn(lease_owner(PYTHON, grant_file, "shm", "list-create", "--json", name, "1", "two"),
                           "python owner")
        self.wait_for(lambda: os.path.exists(grant_file), f"the owner to create {name}", alive=[owner])
        with open(grant_file) as f:
            grant = json.load(f)
        self.assertEqual((grant["name"], grant["items"], grant["lease"]),
                         (name, 2, {"kind": "process", "pid": owner.pid}))
        self.python_sees(name, [1, "two"])
        killed = time.monotonic()
        owner.kill()  # SIGKILL
        owner.wait(60)
        until(lambda: not os.path.exists(shm_path(name)), f"{name} to be unlinked after its owner was killed", 30)
        print(f"\n  list of a SIGKILLed owner unlinked {(time.monotonic() - killed) * 1000:.0f} ms after SIGKILL",
              file=sys.stderr)
        self.assertNotIn(name, self.listed_all())

        # --owner-pid: a process that did not run mpctl.
        name = self.segment("owner-pid")
        helper = self.spawn(["sleep", "600"], "--owner-pid helper")
        made = self.list_create(name, ["a"], "--owner-pid", str(helper.pid))
        self.assertEqual(made["lease"], {"kind": "process", "pid": helper.pid})
        helper.kill()
        helper.wait(60)
        until(lambda: not os.path.exists(shm_path(name)), f"{name} to be unlinked after its --owner-pid died", 30)

        # --ttl 0.3: gone after its time, not before.
        name = self.segment("ttl")
        asked = time.monotonic()
        made = self.list_create(name, [1.5], "--ttl", "0.3")
        self.assertEqual(made["lease"]["kind"], "ttl", made)
        until(lambda: not os.path.exists(shm_path(name)), f"{name} to be unlinked after --ttl 0.3", 30)
        self.assertGreaterEqual(time.monotonic() - asked, 0.29, "a list made with --ttl 0.3 went before its time")

        # `mpctl daemon stop`: a leased list goes, a --persist one stays, readable, until unlinked.
        leased, kept = self.segment("leased"), self.segment("persist")
        helper = self.spawn(["sleep", "600"], "lease owner")
        self.list_create(leased, [1, 2], "--owner-pid", str(helper.pid))
        kept_values = [INT64_MIN, "kept", b"\x00kept\x00", None, True, -0.0]
        made = self.list_create(kept, kept_values, "--persist")
        self.assertEqual((made["persist"], made["lease"]), (True, None))
        done = self.mpctl(["daemon", "stop"])
        self.assertEqual(done.returncode, 0, done.stderr.decode())
        self.daemon.wait_exit()
        self.assertIsNone(helper.poll(), "the lease owner died, so this test proves nothing")
        self.assertFalse(os.path.exists(shm_path(leased)), "mpctl daemon stop: the leased list is still there")
        self.assertTrue(os.path.exists(shm_path(kept)), "mpctl daemon stop: the --persist list is gone")
        self.python_sees(kept, kept_values, "after the daemon stopped")

        # Its data is readable by a daemon started again (not registered with it), then unlinked.
        self.daemon.start()
        self.assertEqual(exact(self.list_get(kept)), exact(map(read_back, kept_values)))
        self.mpctl_ok(["shm", "unlink", kept])
        self.assertFalse(os.path.exists(shm_path(kept)))


if __name__ == "__main__":
    unittest.main(verbosity=2)
