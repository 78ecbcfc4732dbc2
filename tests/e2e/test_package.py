#!/usr/bin/env python3
"""The Debian package (packaging/cpack.cmake): built with CPack from this build into a temporary directory,
its contents and control fields checked with dpkg-deb (files where Debian 12 keeps them, Version what `mpctl
--version` prints, Depends computed), lintian's errors (when lintian is installed), and then, as root with
dpkg and no package mpctl installed, the whole cycle twice: dpkg -i, the group mpctl, the installed mpctl and
mpctld, a task run by the mpctld the installed mpctl starts, `import mpctl` from /, `man -w`, the daemon
stopped by its socket, then dpkg -r (the second time dpkg -P), and nothing of the package left. Whatever
happens, the package is purged at the end, its daemon stopped by its socket, and a group mpctl the test's
install made is deleted. Waits poll against deadlines; nothing sleeps."""
import fcntl, os, shutil, signal, subprocess, sys, tempfile, unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from py_daemon import BIN, until  # noqa: E402

BUILD = os.path.dirname(os.path.abspath(BIN))
SOURCE = os.path.abspath(os.environ.get("MPCTL_TEST_SOURCE_DIR",
                                        os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")))
PACKAGE = "mpctl"

# Where the package puts things: Debian 12's places (system units in /lib/systemd/system as systemd's own
# package has them; user units, sysusers.d and Python packages under /usr/lib).
EXPECTED_FILES = [
    "usr/bin/mpctl", "usr/bin/mpctld", "usr/bin/mpctl-tls", "usr/libexec/mpctl/mpctl-slurm-job",
    "lib/systemd/system/mpctld.service", "lib/systemd/system/mpctld.socket",
    "usr/lib/systemd/user/mpctld.service", "usr/lib/systemd/user/mpctld.socket",
    "usr/lib/sysusers.d/mpctl.conf",
    "usr/share/bash-completion/completions/mpctl", "usr/share/zsh/vendor-completions/_mpctl",
    "usr/share/fish/vendor_completions.d/mpctl.fish",
    "usr/share/man/man1/mpctl.1.gz", "usr/share/man/man8/mpctld.8.gz", "usr/share/man/man1/mpctl-tls.1.gz",
    "usr/share/doc/mpctl/PROTOCOL.md", "usr/share/doc/mpctl/copyright", "usr/share/doc/mpctl/changelog.gz",
    "usr/lib/python3/dist-packages/mpctl/__init__.py",
]
PYTHON_DIR = "/usr/lib/python3/dist-packages/mpctl"
# mpctl-tls is built beside a static mpctl only (a sanitizer build links mpctl dynamically, with TLS in it).
BINARIES = ["mpctl", "mpctld", "mpctl-slurm-job"] + (["mpctl-tls"] if os.path.exists(os.path.join(BIN, "mpctl-tls"))
                                                      else [])
if "mpctl-tls" not in BINARIES:
    EXPECTED_FILES = [path for path in EXPECTED_FILES if "mpctl-tls" not in path]


def installed(name):
    """Where the package puts binary NAME: the commands in /usr/bin, the Slurm jobs' helper in /usr/libexec."""
    return f"usr/libexec/mpctl/{name}" if name == "mpctl-slurm-job" else f"usr/bin/{name}"


def run(argv, timeout=300, **kwargs):
    return subprocess.run(argv, capture_output=True, timeout=timeout, stdin=subprocess.DEVNULL, **kwargs)


def output(done):
    return f"exit {done.returncode}\nstdout: {done.stdout.decode(errors='replace')}\n" \
           f"stderr: {done.stderr.decode(errors='replace')}"


def version_of(binary):
    done = run([binary, "--version"], timeout=60)
    if done.returncode != 0:
        raise AssertionError(f"{binary} --version: {output(done)}")
    words = done.stdout.decode().split()
    if not words:
        raise AssertionError(f"{binary} --version printed nothing")
    return words[-1]


def source_snapshot():
    """What cpack could leave in the source tree: the top level, and everything under packaging/ and python/
    (byte-compiled files aside, which any test's import makes)."""
    seen = set(os.listdir(SOURCE))
    for part in ("packaging", "python"):
        for top, dirs, files in os.walk(os.path.join(SOURCE, part)):
            dirs[:] = [d for d in dirs if d != "__pycache__"]
            seen.update(os.path.relpath(os.path.join(top, name), SOURCE) for name in files + dirs)
    return seen


DEB = None          # the package built by setUpModule
DEB_DIR = None      # its temporary directory
BUILD_ERROR = None  # why it could not be built
SKIP_REASON = None  # the tools to build it are missing
SOURCE_BEFORE = SOURCE_AFTER = None


def setUpModule():
    global DEB, DEB_DIR, BUILD_ERROR, SKIP_REASON, SOURCE_BEFORE, SOURCE_AFTER
    cpack = shutil.which("cpack")
    config = os.path.join(BUILD, "CPackConfig.cmake")
    # dpkg-shlibdeps (dpkg-dev) computes Depends; CPack finds the dynamic binaries to give it with file(1).
    missing = [tool for tool in ("cpack", "dpkg-deb", "dpkg-shlibdeps", "file") if shutil.which(tool) is None]
    if missing:
        SKIP_REASON = f"{', '.join(missing)} not installed (apt-get install cmake dpkg-dev file)"
        return
    if not os.path.exists(config):
        BUILD_ERROR = f"no {config}: run cmake on the build directory"
        return
    DEB_DIR = tempfile.mkdtemp(prefix="mpt-deb-")
    SOURCE_BEFORE = source_snapshot()
    # CPACK_CMAKE_GENERATOR=Ninja: CPack then skips its build of the Makefiles' `preinstall` (that is, `all`):
    # Ninja has no such target. The test packs what the build made, as ctest never builds, and leaves the
    # build tree, which other runs may be building in, alone.
    done = run([cpack, "--config", config, "-B", DEB_DIR, "-G", "DEB", "-D", "CPACK_CMAKE_GENERATOR=Ninja"],
               timeout=600, cwd=DEB_DIR)
    SOURCE_AFTER = source_snapshot()
    debs = [name for name in os.listdir(DEB_DIR) if name.endswith(".deb")]
    if done.returncode != 0 or len(debs) != 1:
        BUILD_ERROR = f"cpack made {debs}: {output(done)}"
        return
    DEB = os.path.join(DEB_DIR, debs[0])


def tearDownModule():
    if DEB_DIR:
        shutil.rmtree(DEB_DIR, ignore_errors=True)


class PackageCase(unittest.TestCase):
    def setUp(self):
        if SKIP_REASON:
            self.skipTest(SKIP_REASON)
        self.assertIsNone(BUILD_ERROR, BUILD_ERROR)

    def control(self):
        done = run(["dpkg-deb", "-f", DEB])
        self.assertEqual(done.returncode, 0, output(done))
        fields, last = {}, None
        for line in done.stdout.decode().splitlines():
            if line.startswith((" ", "\t")) and last:
                fields[last] += "\n" + line
            elif ":" in line:
                last, value = line.split(":", 1)
                fields[last] = value.strip()
        return fields


class Contents(PackageCase):
    def listing(self):
        """{path: (mode string, link target or None)} of the package's files, paths without the leading ./"""
        done = run(["dpkg-deb", "-c", DEB])
        self.assertEqual(done.returncode, 0, output(done))
        entries = {}
        for line in done.stdout.decode().splitlines():
            fields = line.split(None, 5)
            name = fields[5]
            target = None
            if " -> " in name:
                name, target = name.split(" -> ", 1)
            entries[name[2:].rstrip("/") if name.startswith("./") else name] = (fields[0], target)
        return entries

    def extract(self):
        where = tempfile.mkdtemp(prefix="mpt-deb-x-")
        self.addCleanup(shutil.rmtree, where, True)
        done = run(["dpkg-deb", "-x", DEB, where])
        self.assertEqual(done.returncode, 0, output(done))
        return where

    def test_files_are_where_debian_keeps_them(self):
        entries = self.listing()
        missing = [path for path in EXPECTED_FILES if path not in entries]
        self.assertEqual(missing, [], f"not in the package; it has {sorted(entries)}")
        for name in BINARIES:
            self.assertEqual(entries[installed(name)][0], "-rwxr-xr-x", name)
        if "mpctl-tls" in BINARIES:
            self.assertEqual(entries["usr/share/man/man1/mpctl-tls.1.gz"][1], "mpctl.1.gz")
        python_files = sorted(name for name in os.listdir(os.path.join(SOURCE, "python", "mpctl"))
                              if name.endswith(".py"))
        packed = sorted(os.path.basename(p) for p in entries if p.startswith("usr/lib/python3/dist-packages/mpctl/"))
        self.assertEqual(packed, python_files, "the Python package is python/mpctl's modules, no more")
        # Nothing under /usr/lib/systemd/system (the units are in /lib), no /usr/local, no build paths, no
        # uncompressed man pages, no byte-compiled files.
        for path, (mode, _) in entries.items():
            self.assertFalse(path.startswith("usr/lib/systemd/system"), path)
            self.assertFalse(path.startswith("usr/local"), path)
            self.assertNotIn("__pycache__", path)
            if path.startswith("usr/share/man/man") and not mode.startswith("d"):
                self.assertTrue(path.endswith(".gz"), path)
            if mode.startswith("d"):
                self.assertEqual(mode, "drwxr-xr-x", path)

    def test_units_start_the_packaged_daemon(self):
        root = self.extract()
        for unit in ("lib/systemd/system/mpctld.service", "usr/lib/systemd/user/mpctld.service"):
            with open(os.path.join(root, unit)) as f:
                starts = [line for line in f.read().splitlines() if line.startswith("ExecStart=")]
            self.assertEqual(len(starts), 1, unit)
            self.assertTrue(starts[0].startswith("ExecStart=/usr/bin/mpctld "), f"{unit}: {starts[0]}")
        with open(os.path.join(root, "usr/lib/sysusers.d/mpctl.conf")) as f:
            self.assertIn("g mpctl -", f.read())

    def test_binaries_are_stripped_and_the_versions_agree(self):
        root = self.extract()
        readelf = shutil.which("readelf")
        for name in BINARIES:
            binary = os.path.join(root, installed(name))
            if readelf:
                done = run([readelf, "-S", "-W", binary])
                self.assertEqual(done.returncode, 0, output(done))
                sections = done.stdout.decode()
                for section in (".symtab", ".debug_info", ".comment"):
                    self.assertNotIn(f" {section} ", sections, f"{name} keeps {section}")
            if name not in ("mpctl-tls", "mpctl-slurm-job"):  # no --version: the one of mpctl, a job's runner
                self.assertEqual(version_of(binary), version_of(os.path.join(BIN, name)), name)

    def test_control_fields(self):
        fields = self.control()
        self.assertEqual(fields.get("Package"), PACKAGE)
        self.assertEqual(fields.get("Version"), version_of(os.path.join(BIN, "mpctl")),
                         "the package's Version is what `mpctl --version` prints")
        self.assertEqual(fields.get("Version"), version_of(os.path.join(BIN, "mpctld")))
        depends = fields.get("Depends", "")
        self.assertTrue(depends, f"no Depends: {fields}")
        self.assertIn("libc6", depends, "Depends is computed from mpctld's libraries (dpkg-shlibdeps)")
        self.assertIn("python3", fields.get("Depends", "") + fields.get("Recommends", ""))
        self.assertIn(fields.get("Section"), ("admin", "utils"))
        self.assertTrue(fields.get("Maintainer"))
        self.assertIn("\n", fields.get("Description", ""), "a summary and a long description")
        self.assertNotIn("Homepage", fields)
        arch = run(["dpkg", "--print-architecture"]) if shutil.which("dpkg") else None
        if arch is not None and arch.returncode == 0:
            self.assertEqual(fields.get("Architecture"), arch.stdout.decode().strip())

    def test_maintainer_scripts(self):
        where = tempfile.mkdtemp(prefix="mpt-deb-ctl-")
        self.addCleanup(shutil.rmtree, where, True)
        done = run(["dpkg-deb", "-e", DEB, where])
        self.assertEqual(done.returncode, 0, output(done))
        for script in ("postinst", "prerm", "postrm"):
            path = os.path.join(where, script)
            self.assertTrue(os.path.exists(path), f"no {script}")
            self.assertEqual(os.stat(path).st_mode & 0o777, 0o755, script)
            done = run(["sh", "-n", path])
            self.assertEqual(done.returncode, 0, f"{script}: {output(done)}")
        with open(os.path.join(where, "postinst")) as f:
            postinst = f.read()
        self.assertIn("getent group mpctl", postinst)
        self.assertIn("-d /run/systemd/system", postinst, "daemon-reload only where systemd runs")

    def test_lintian_reports_no_errors(self):
        lintian = shutil.which("lintian")
        if lintian is None:
            self.skipTest("lintian is not installed (apt-get install lintian)")
        scratch = tempfile.mkdtemp(prefix="mpt-lintian-")  # lintian leaves files in its TMPDIR
        self.addCleanup(shutil.rmtree, scratch, True)
        done = run([lintian, DEB], timeout=600, env=dict(os.environ, TMPDIR=scratch))
        report = done.stdout.decode(errors="replace")
        errors = [line for line in report.splitlines() if line.startswith("E:")]
        self.assertEqual(errors, [], report + done.stderr.decode(errors="replace"))

    def test_cpack_leaves_the_source_tree_alone(self):
        self.assertEqual(sorted(SOURCE_AFTER - SOURCE_BEFORE), [], "cpack wrote into the source tree")
        for name in SOURCE_AFTER:
            self.assertFalse(name.endswith(".deb") or "_CPack_Packages" in name, name)


def package_state():
    """dpkg's state of the package: 'not-installed', 'installed', 'config-files', ..."""
    done = run(["dpkg-query", "-W", "-f=${db:Status-Status}", PACKAGE], timeout=60)
    return done.stdout.decode().strip() if done.returncode == 0 else "not-installed"


def group_exists():
    return run(["getent", "group", "mpctl"], timeout=60).returncode == 0


class InstallCycle(PackageCase):
    """dpkg -i, use, dpkg -r; again, with dpkg -P. Only as root, with dpkg, on a machine without mpctl."""

    def setUp(self):
        super().setUp()
        if os.geteuid() != 0:
            self.skipTest("installing the package needs root")
        if shutil.which("dpkg") is None or shutil.which("dpkg-query") is None:
            self.skipTest("dpkg is not installed")
        state = package_state()
        if state != "not-installed":
            self.skipTest(f"a package mpctl is already on this machine (dpkg: {state}): it is left alone")
        for path in ("/usr/bin/mpctl", "/usr/bin/mpctld", PYTHON_DIR):
            if os.path.lexists(path):
                self.skipTest(f"{path} exists (not from a package): dpkg -i would overwrite it")
        self.group_was_there = group_exists()
        self.dir = tempfile.mkdtemp(prefix="mpt-deb-run-", dir="/tmp")  # short: the socket's path
        self.env = dict(os.environ, MPCTL_SOCKET=os.path.join(self.dir, "d.sock"),
                        MPCTL_STATE_DIR=os.path.join(self.dir, "state"))
        self.env.pop("MPCTL_NO_AUTOSTART", None)
        self.env.pop("PYTHONPATH", None)
        self.env.pop("MPCTL_CONNECT", None)
        # Cleanups run last first: the daemon is stopped before the package goes, the group after it.
        self.addCleanup(shutil.rmtree, self.dir, True)
        self.addCleanup(self.restore_group)
        self.addCleanup(self.purge)
        self.addCleanup(self.stop_daemon)

    # --- cleanup -------------------------------------------------------------------------------------------

    def lock_path(self):
        return os.path.join(self.env["MPCTL_STATE_DIR"], "mpctld.lock")

    def daemon_running(self):
        """True while some process holds the state dir's lock, as a live mpctld does."""
        try:
            fd = os.open(self.lock_path(), os.O_RDWR)
        except FileNotFoundError:
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return False
        except BlockingIOError:
            return True
        finally:
            os.close(fd)

    def stop_daemon(self, force=True):
        """Stops the daemon by its socket (`mpctl daemon stop`) and waits until it has let go of its state
        dir. Only if it does not, SIGKILL to the pid its lock file records, which must be an mpctld."""
        if not self.daemon_running():
            return
        mpctl = "/usr/bin/mpctl" if os.path.exists("/usr/bin/mpctl") else os.path.join(BIN, "mpctl")
        done = run([mpctl, "--no-autostart", "daemon", "stop"] + (["--now"] if force else []), env=self.env,
                   timeout=120)
        try:
            until(lambda: not self.daemon_running(), "mpctld to exit after daemon stop", seconds=60)
            return
        except TimeoutError:
            if not force:
                raise AssertionError(f"the daemon did not exit after `mpctl daemon stop`: {output(done)}")
        with open(self.lock_path()) as f:
            pid = int(f.readline().strip() or 0)
        try:
            exe = os.readlink(f"/proc/{pid}/exe") if pid > 0 else ""
        except OSError:
            return  # gone by now
        if os.path.basename(exe).startswith("mpctld"):  # "/usr/bin/mpctld (deleted)" after a removal
            os.kill(pid, signal.SIGKILL)
            until(lambda: not self.daemon_running(), "mpctld to exit after SIGKILL", seconds=60)

    def purge(self):
        if package_state() != "not-installed":
            run(["dpkg", "-P", PACKAGE], timeout=300, env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"))

    def restore_group(self):
        if not self.group_was_there and group_exists() and package_state() == "not-installed":
            run(["groupdel", "mpctl"], timeout=60)

    # --- the cycle -----------------------------------------------------------------------------------------

    def dpkg(self, *args):
        done = run(["dpkg", *args], timeout=600, env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"))
        self.assertEqual(done.returncode, 0, f"dpkg {' '.join(args)}: {output(done)}")
        return done

    def installed(self, version):
        self.assertEqual(package_state(), "installed")
        self.assertTrue(group_exists(), "postinst did not make the group mpctl")
        self.assertEqual(version_of("/usr/bin/mpctl"), version)
        self.assertEqual(version_of("/usr/bin/mpctld"), version)

        # A task, run by the mpctld the installed mpctl starts by itself (the one next to it).
        done = run(["/usr/bin/mpctl", "run", "--", "true"], env=self.env, timeout=120, cwd="/")
        self.assertEqual(done.returncode, 0, f"mpctl run -- true: {output(done)}")
        done = run(["/usr/bin/mpctl", "run", "--", "echo", "packaged"], env=self.env, timeout=120, cwd="/")
        self.assertEqual((done.returncode, done.stdout), (0, b"packaged\n"), output(done))
        with open(self.lock_path()) as f:
            pid = int(f.readline().strip())
        self.assertEqual(os.readlink(f"/proc/{pid}/exe"), "/usr/bin/mpctld", "autostarted the packaged mpctld")

        # The Python package, from /, with no PYTHONPATH, in Debian's python3 (not whatever python3 PATH has).
        done = run(["/usr/bin/python3", "-c", "import mpctl, mpctl.futures, mpctl.worker; print(mpctl.__file__)"],
                   env=self.env, cwd="/", timeout=120)
        self.assertEqual(done.returncode, 0, f"import mpctl: {output(done)}")
        self.assertEqual(done.stdout.decode().strip(), os.path.join(PYTHON_DIR, "__init__.py"))

        if shutil.which("man"):
            for page, expected in (("mpctl", "/usr/share/man/man1/mpctl.1.gz"),
                                   ("mpctld", "/usr/share/man/man8/mpctld.8.gz")):
                env = {k: v for k, v in self.env.items() if k != "MANPATH"}
                done = run(["man", "-w", page], env=env, timeout=60)
                self.assertEqual(done.returncode, 0, f"man -w {page}: {output(done)}")
                self.assertEqual(done.stdout.decode().strip(), expected)

        self.stop_daemon(force=False)

    def removed(self, removal):
        done = self.dpkg(removal, PACKAGE)
        said = done.stdout.decode(errors="replace") + done.stderr.decode(errors="replace")
        self.assertNotIn("not empty so not removed", said, "the package left files dpkg does not know")
        for path in ("/usr/bin/mpctl", "/usr/bin/mpctld", "/usr/bin/mpctl-tls", "/usr/libexec/mpctl", PYTHON_DIR,
                     "/lib/systemd/system/mpctld.service", "/usr/share/man/man1/mpctl.1.gz"):
            self.assertFalse(os.path.lexists(path), f"{path} is still there after dpkg {removal}")
        if removal == "-P":
            self.assertEqual(package_state(), "not-installed")
        else:
            self.assertIn(package_state(), ("not-installed", "config-files"))

    def test_install_run_and_remove_twice(self):
        version = self.control()["Version"]
        for removal in ("-r", "-P"):  # the second install follows a removal that left dpkg's record of it
            self.dpkg("-i", DEB)
            self.installed(version)
            self.removed(removal)


if __name__ == "__main__":
    unittest.main()
