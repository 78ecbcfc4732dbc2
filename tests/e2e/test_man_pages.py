#!/usr/bin/env python3
"""Man pages (issue "man pages"): mpctl(1) from `mpctl __man` and mpctld(8) from `mpctld --help-man`, the
commands and flags taken from the programs' own CLI11 definitions. Each page is rendered as a reader would
see it (`man -l`, or groff where man is missing) and checked for groff warnings, its NAME line, every
command `mpctl --help` lists (and each group's subcommands), the exit status table, the environment, and
mpctld's flags. The pages the build wrote (build/man) must be what the binaries print now."""
import os, re, shutil, subprocess, tempfile, unittest

BIN = os.environ["MPCTL_TEST_BIN_DIR"]
MPCTL = os.path.join(BIN, "mpctl")
MPCTLD = os.path.join(BIN, "mpctld")
BUILT_MAN_DIR = os.path.join(os.path.dirname(os.path.abspath(BIN)), "man")

MAN = shutil.which("man")
GROFF = shutil.which("groff")
SECTIONS_1 = ["NAME", "SYNOPSIS", "DESCRIPTION", "COMMANDS", "OPTIONS", "EXIT STATUS", "ENVIRONMENT",
              "FILES", "EXAMPLES", "SEE ALSO"]


def run(argv, **kw):
    return subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60, **kw)


def plain(text):
    """Rendered text without overstriking, SGR escapes or typographic dashes."""
    text = re.sub(r".\x08", "", text)
    text = re.sub(r"\x1b\[[0-9;]*m", "", text)
    return text.replace("\u2212", "-").replace("\u2010", "-").replace("\u2011", "-")


def sections(text):
    """{heading: body} of a rendered page: headings are the unindented all-capitals lines."""
    out, current = {}, None
    for line in text.splitlines():
        if line and not line[0].isspace() and re.fullmatch(r"[A-Z][A-Z ]*", line.strip()):
            current = line.strip()
            out[current] = []
        elif current is not None:
            out[current].append(line)
    return {k: "\n".join(v) for k, v in out.items()}


def subcommands(help_text):
    """The words of the "Subcommands:" list of a --help."""
    words, inside = [], False
    for line in help_text.splitlines():
        if line.startswith("Subcommands:"):
            inside = True
        elif inside and line.startswith("  ") and line.strip():
            words.append(line.split()[0])
        elif inside and line.strip():
            inside = False
    return words


class ManPages(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="mpctl-man-")
        cls.pages = {}
        for name, argv in (("mpctl.1", [MPCTL, "__man"]), ("mpctld.8", [MPCTLD, "--help-man"])):
            p = run(argv)
            if p.returncode != 0:
                raise AssertionError("%s exited %d: %s" % (argv, p.returncode, p.stderr.decode()))
            path = os.path.join(cls.tmp, name)
            with open(path, "wb") as f:
                f.write(p.stdout)
            cls.pages[name] = path

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def render(self, name):
        """The page as `man -l` shows it, 80 columns wide (groff's own rendering where man is missing)."""
        path = self.pages[name]
        env = dict(os.environ, MANWIDTH="80", LANG="C.UTF-8", LC_ALL="C.UTF-8")
        env.pop("MAN_KEEP_FORMATTING", None)
        if MAN:
            p = run([MAN, "-P", "cat", "-l", path], env=env)
        elif GROFF:
            p = run([GROFF, "-man", "-Tutf8", "-rLL=80n", "-P-c", "-P-b", "-P-u", path], env=env)
        else:
            self.skipTest("neither man nor groff is installed (apt-get install man-db groff-base)")
        self.assertEqual(p.returncode, 0, p.stderr.decode())
        self.assertEqual(p.stderr.decode(), "", "rendering %s printed warnings" % name)
        return plain(p.stdout.decode())

    def test_groff_finds_nothing_to_warn_about(self):
        if not GROFF:
            self.skipTest("groff is not installed (apt-get install groff-base): no warnings check")
        for name, path in self.pages.items():
            p = run([GROFF, "-ww", "-z", "-man", path])
            self.assertEqual(p.returncode, 0, p.stderr.decode())
            self.assertEqual(p.stderr.decode(), "", "groff -ww warns about %s" % name)

    def test_the_pages_the_build_wrote_are_current(self):
        for name, path in self.pages.items():
            built = os.path.join(BUILT_MAN_DIR, name)
            if not os.path.exists(built):
                self.skipTest("%s was not built (the man_pages target)" % built)
            with open(built, "rb") as a, open(path, "rb") as b:
                self.assertEqual(a.read(), b.read(), "%s is not what the binary prints now" % built)

    def test_mpctl_1_has_its_sections_in_order_and_its_name_line(self):
        text = self.render("mpctl.1")
        found = sections(text)
        self.assertEqual([s for s in found if s in SECTIONS_1], SECTIONS_1, list(found))
        name = " ".join(found["NAME"].split())
        self.assertTrue(name.startswith("mpctl - worker pools, futures"), name)
        self.assertIn("mpctl [OPTIONS] COMMAND [ARGS]", " ".join(found["SYNOPSIS"].split()))

    def test_mpctl_1_documents_every_command_and_subcommand_help_lists(self):
        top = run([MPCTL, "--help"])
        self.assertEqual(top.returncode, 0, top.stderr.decode())
        words = subcommands(top.stdout.decode())
        self.assertGreater(len(words), 20, top.stdout.decode())
        commands = sections(self.render("mpctl.1"))["COMMANDS"]
        headings = {line.strip() for line in commands.splitlines() if re.match(r"^ {3}\S", line)}
        for word in words:
            self.assertIn("mpctl " + word, headings, "no subsection for mpctl %s" % word)
            group = run([MPCTL, word, "--help"])
            for sub in subcommands(group.stdout.decode()):
                self.assertIn("mpctl %s %s" % (word, sub), headings, "no subsection for mpctl %s %s" % (word, sub))
        self.assertFalse([h for h in headings if "__" in h], "a hidden command is documented")
        # A command's options and their help, from the same definitions as its --help.
        self.assertRegex(commands, r"-s, --shared\n\s+A shared \(read\) lock")
        self.assertIn("--timeout", commands)

    def test_mpctl_1_exit_status_table(self):
        status = sections(self.render("mpctl.1"))["EXIT STATUS"]
        for code, meaning in (("0", "success"), ("1", "any other failure"), ("2", "usage error"),
                              ("3", "no daemon reachable"), ("4", "unknown id"), ("5", "resource busy"),
                              ("6", "the daemon refused"), ("124", "expired"), ("125", "cancelled"),
                              ("126", "could not be executed"), ("127", "not found"),
                              ("128+N", "signal N")):
            self.assertRegex(status, r"(?m)^\s+%s\s+.*%s" % (re.escape(code), meaning), code)

    def test_mpctl_1_environment_files_and_global_options(self):
        found = sections(self.render("mpctl.1"))
        env = found["ENVIRONMENT"]
        for var in ("MPCTL_SOCKET", "MPCTL_STATE_DIR", "MPCTL_NO_AUTOSTART", "MPCTL_CONNECT",
                    "MPCTL_FINGERPRINT", "MPCTL_TOKEN"):
            self.assertRegex(env, r"(?m)^\s+%s$" % var)
        self.assertIn("mpctld.sock", found["FILES"])
        for flag in ("--socket", "--state-dir", "--json", "--no-autostart", "--connect", "--fingerprint"):
            self.assertRegex(found["OPTIONS"], r"(?m)^\s+%s\b" % flag)
        self.assertIn("mpctld(8)", found["SEE ALSO"])

    def test_mpctld_8_lists_its_flags_signals_and_config_keys(self):
        found = sections(self.render("mpctld.8"))
        name = " ".join(found["NAME"].split())
        self.assertTrue(name.startswith("mpctld - the mpctl daemon"), name)
        options = found["OPTIONS"]
        for flag in ("--listen", "--workers", "--socket", "--state-dir", "--config", "--recover",
                     "--print-fingerprint"):
            self.assertRegex(options, r"(?m)^\s+%s\b" % flag)
        self.assertNotIn("--help-man", options)
        self.assertNotIn("--exit-with-parent", options)
        for sig in ("SIGTERM", "SIGINT", "SIGHUP"):
            self.assertIn(sig, found["SIGNALS"])
        for key in ("workers", "log_level", "durability", "keep_finished", "listen"):
            self.assertRegex(found["CONFIGURATION FILE"], r"(?m)^\s+%s = " % key)
        self.assertIn("MPCTL_SOCKET", found["ENVIRONMENT"])
        self.assertIn("mpctld.db", found["FILES"])
        self.assertIn("mpctl(1)", found["SEE ALSO"])


if __name__ == "__main__":
    unittest.main()
