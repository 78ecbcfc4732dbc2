#!/usr/bin/env python3
"""Shell completions (issue 19): the scripts `mpctl completion bash|zsh|fish` writes from mpctl's own command
table, each run by its real shell. In a real bash (--norc), the generated script is sourced and its
completion function called the way readline calls it (COMP_WORDS, COMP_CWORD, COMP_LINE, COMP_POINT). A real
interactive zsh (no rc files, compinit, _mpctl on fpath) is typed the line and Tab in a pseudo-terminal
(zsh/zpty), and what it lists is read back. A real fish (no config) sources the script and says what it
offers (complete -C). In each: `mpctl su` gives submit, options complete, and with a real daemon `mpctl cancel `
offers the ids of pending tasks (and not of finished ones), `--pool` the pools, `queue get` the queues.
Without a daemon the values are quietly none, and none is started. zsh and fish tests are skipped where those
shells are not installed (apt-get install zsh fish). The files the build wrote (build/completions) are what
`mpctl completion` prints, and `cmake --install` puts them where bash-completion, zsh and fish look."""
import os, re, shlex, shutil, subprocess, sys, tempfile, unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from py_case import MPCTL, DaemonCase  # noqa: E402
from py_daemon import BIN  # noqa: E402

BASH = shutil.which("bash") or "/bin/bash"
ZSH = shutil.which("zsh")
FISH = shutil.which("fish")
NO_ZSH = "zsh is not installed (apt-get install zsh): its completion is not tried"
NO_FISH = "fish is not installed (apt-get install fish): its completion is not tried"

# Sources the script $1, then completes the words after it as readline would, the cursor at the end of the
# last one; prints COMPREPLY, one a line. The function is the one `complete -p mpctl` names.
COMPLETE = r"""
source "$1" || exit 99
shift
COMP_WORDS=("$@")
COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
COMP_LINE="$*"
COMP_POINT=${#COMP_LINE}
spec=$(complete -p mpctl) || exit 98
fn=${spec##*-F }
fn=${fn%% *}
"$fn" mpctl "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"
printf '%s\n' "${COMPREPLY[@]}"
"""

# zsh as someone types at it: an interactive zsh (no rc files) in a pseudo-terminal of zsh/zpty sources
# ZSH_SETUP ($1), is typed the line $2 and Tab, then Ctrl-T, which prints the line as Tab left it between
# <BUFFER> and </BUFFER>. What it printed meanwhile is written out: the list of matches Tab showed. Every
# read waits for its marker (the prompt, then </BUFFER>): no fixed sleeps; the caller's timeout bounds it.
ZSH_DRIVE = r"""
zmodload zsh/zpty || exit 97
export PS1='<PROMPT>' RPS1= PROMPT_EOL_MARK=
zpty mpctl_pty zsh -f -i || exit 96
zpty -r mpctl_pty out '*<PROMPT>*' || exit 95
zpty -w mpctl_pty "source ${(q)1}"
zpty -r mpctl_pty out '*<PROMPT>*' || exit 94
zpty -w -n mpctl_pty "$2"$'\t\x14'
zpty -r mpctl_pty out '*</BUFFER>*' || exit 93
print -rn -- "$out"
zpty -d mpctl_pty
"""

# The completion system loaded as a user's .zshrc does (compinit; _mpctl found on fpath, or sourced after
# it), and matches listed between \x01 and \x04 (list-colors), every time (even when Tab inserted a prefix
# they share), all of them, on a screen that holds them.
ZSH_SETUP = r"""
fpath=(%(fpath)s $fpath)
autoload -Uz compinit
compinit -u -D
%(source)s
unsetopt list_ambiguous
stty rows 10000 cols 1000
LINES=10000 COLUMNS=1000 LISTMAX=1000000
zstyle ':completion:*' list-colors $'no=\x01' $'fi=\x01' $'di=\x01' $'ln=\x01' $'ex=\x01' $'pi=\x01' \
    $'so=\x01' $'bd=\x01' $'cd=\x01' $'or=\x01' $'mi=\x01' $'su=\x01' $'sg=\x01' $'tw=\x01' $'ow=\x01' \
    $'st=\x01' lc= rc= $'ec=\x04' sp=
zstyle ':completion:*' force-list always
zstyle ':completion:*' list-separator '<DESCRIPTION>'
_mpctl_test_line() { zle -I; print -r -- "<BUFFER>$BUFFER</BUFFER>"; }
zle -N _mpctl_test_line
bindkey '^T' _mpctl_test_line
"""

# fish (no config files): the script sourced ($1), then what fish offers for the line $2, the cursor at its
# end: "word\tdescription" a line. Other commands complete as fish's own completions have them.
FISH_COMPLETE = """
set -g fish_complete_path $__fish_data_dir/completions
source $argv[1]; or exit 99
complete -C $argv[2]
"""


def generate(shell, env=None):
    done = subprocess.run([MPCTL, "completion", shell], env=env, capture_output=True, timeout=60)
    if done.returncode != 0:
        raise AssertionError(f"mpctl completion {shell}: exit {done.returncode}: {done.stderr.decode()}")
    return done.stdout


def run(argv, env, words):
    done = subprocess.run(argv, env=env, capture_output=True, timeout=120, stdin=subprocess.DEVNULL)
    if done.returncode != 0:
        raise AssertionError(f"completing {words}: exit {done.returncode}: {done.stderr.decode()}")
    return done.stdout.decode(errors="replace")


class Completion:
    """The script of SHELL written to a directory, and the words a real SHELL offers from it, under an
    environment, for `mpctl WORDS...` with the cursor at the end of the last word."""
    shell = "bash"

    def setup_script(self, directory):
        self.dir = directory
        if self.shell == "zsh":
            # As installed: _mpctl in a directory on fpath, found by compinit.
            functions = os.path.join(directory, "zsh-functions")
            os.mkdir(functions)
            self.script = os.path.join(functions, "_mpctl")
            self.zsh_setup = os.path.join(directory, "zsh-setup.zsh")
            self.zsh_load(sourced=False)
        else:
            self.script = os.path.join(directory, "mpctl." + self.shell)
        with open(self.script, "wb") as f:
            f.write(generate(self.shell))

    def zsh_load(self, sourced):
        """_mpctl autoloaded from fpath (as installed), or SOURCED as `source <(mpctl completion zsh)` does."""
        functions = os.path.dirname(self.script)
        with open(self.zsh_setup, "w") as f:
            f.write(ZSH_SETUP % {"fpath": "" if sourced else shlex.quote(functions),
                                 "source": "source " + shlex.quote(self.script) if sourced else ""})

    def complete(self, env, *words):
        # mpctl itself comes from PATH, as in a shell where it is installed.
        env = dict(env, PATH=BIN + os.pathsep + env.get("PATH", "/usr/bin:/bin"))
        line = " ".join(("mpctl",) + words)
        if self.shell == "bash":
            out = run([BASH, "--norc", "--noprofile", "-c", COMPLETE, "bash", self.script, "mpctl", *words],
                      env, words)
            return [w for w in out.split("\n") if w]
        if self.shell == "fish":
            # Its config and universal variables in the test's directory, not the user's.
            env.update(XDG_CONFIG_HOME=os.path.join(self.dir, "fish-config"),
                       XDG_DATA_HOME=os.path.join(self.dir, "fish-data"))
            out = run([FISH, "--no-config", "-c", FISH_COMPLETE, self.script, line], env, words)
            return [w.split("\t")[0] for w in out.split("\n") if w]
        env.pop("ZDOTDIR", None)
        out = run([ZSH, "-f", "-c", ZSH_DRIVE, "zsh", self.zsh_setup, line], env, words)
        self.zsh_buffer = re.search(r"<BUFFER>(.*)</BUFFER>", out).group(1)
        # The entries of the list, each its word and maybe "<DESCRIPTION> what it is".
        return [m.split()[0] for m in re.findall(r"\x01([^\x04]*)\x04", out) if m.split()]


class WithoutDaemonTests:
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory(prefix="mpt-compl-", dir="/tmp")
        self.addCleanup(self.tmp.cleanup)
        self.setup_script(self.tmp.name)
        # Nobody serves there, and autostart is allowed: completion must still start no daemon.
        self.env = {k: v for k, v in os.environ.items()
                    if k not in ("MPCTL_NO_AUTOSTART", "MPCTL_CONNECT", "MPCTL_SOCKET")}
        self.env.update(MPCTL_SOCKET=os.path.join(self.tmp.name, "none.sock"),
                        MPCTL_STATE_DIR=os.path.join(self.tmp.name, "state"))

    def test_commands_complete(self):
        self.assertIn("submit", self.complete(self.env, "su"))
        self.assertEqual(sorted(self.complete(self.env, "pool", "")), ["delete", "list", "set"])
        self.assertEqual(self.complete(self.env, "queue", "i"), ["info"])
        self.assertEqual(self.complete(self.env, "--socket", "/x", "qu"), ["queue"])  # a global option's value
        # The hidden commands are offered to no one.
        self.assertNotIn("completion", self.complete(self.env, "co"))
        self.assertEqual(self.complete(self.env, "__"), [])

    def test_options_complete(self):
        self.assertEqual(self.complete(self.env, "submit", "--ti"), ["--timeout"])
        self.assertIn("--follow", self.complete(self.env, "logs", "--f"))
        self.assertIn("--fingerprint", self.complete(self.env, "logs", "--f"))  # mpctl's own, everywhere
        self.assertIn("--force", self.complete(self.env, "cancel", "--"))
        self.assertNotIn("--force", self.complete(self.env, "kill", "--"))
        # After an option that takes a value, its value is next, not a command.
        self.assertNotIn("submit", self.complete(self.env, "--state-dir", "su"))

    def test_a_command_line_completes_as_commands(self):
        self.assertIn("bash", self.complete(self.env, "submit", "--timeout", "5", "--", "bas"))
        self.assertIn("bash", self.complete(self.env, "run", "bas"))
        self.assertIn("bash", self.complete(self.env, "lock", "run", "/tmp/l", "bas"))
        # The command's own options are not mpctl's.
        self.assertNotIn("--timeout", self.complete(self.env, "run", "ls", "--ti"))
        self.assertNotIn("--socket", self.complete(self.env, "submit", "--", "ls", "--so"))
        self.assertNotIn("--socket", self.complete(self.env, "lock", "run", "/tmp/l", "ls", "--so"))
        self.assertEqual(self.complete(self.env, "run", "true", "--ti"), [])
        if self.shell != "bash":  # bash leaves the command's arguments to readline: files
            # zsh and fish complete them as the command's own completion does.
            self.assertIn("--time", self.complete(self.env, "run", "ls", "--ti"))
            self.assertIn("--time", self.complete(self.env, "submit", "--timeout", "5", "--", "ls", "--ti"))

    def test_no_daemon_no_values_and_none_started(self):
        self.assertEqual(self.complete(self.env, "cancel", ""), [])
        self.assertEqual(self.complete(self.env, "submit", "--pool", ""), [])
        for kind in ("ids", "finished-ids", "pools", "queues"):
            done = subprocess.run([MPCTL, "__complete", kind], env=self.env, capture_output=True, timeout=60)
            self.assertEqual((done.returncode, done.stdout, done.stderr), (0, b"", b""), kind)
        self.assertFalse(os.path.exists(os.path.join(self.tmp.name, "none.sock")), "a daemon was started")
        self.assertFalse(os.path.exists(os.path.join(self.tmp.name, "state")), "a daemon was started")


class WithoutDaemon(Completion, WithoutDaemonTests, unittest.TestCase):
    def test_unknown_kind_is_a_usage_error(self):
        done = subprocess.run([MPCTL, "__complete", "nonsense"], env=self.env, capture_output=True, timeout=60)
        self.assertEqual(done.returncode, 2)
        done = subprocess.run([MPCTL, "completion", "tcsh"], env=self.env, capture_output=True, timeout=60)
        self.assertEqual(done.returncode, 2)

    def test_help_hides_the_completion_commands(self):
        done = subprocess.run([MPCTL, "--help"], env=self.env, capture_output=True, timeout=60)
        words = [line.split()[0] for line in done.stdout.decode().splitlines() if line.startswith("  ")]
        self.assertIn("submit", words)
        self.assertNotIn("completion", words)
        self.assertNotIn("__complete", words)


@unittest.skipUnless(ZSH, NO_ZSH)
class ZshWithoutDaemon(Completion, WithoutDaemonTests, unittest.TestCase):
    shell = "zsh"

    def test_tab_completes_the_line(self):
        # What Tab leaves on the line when one word fits.
        self.complete(self.env, "su")
        self.assertEqual(self.zsh_buffer, "mpctl submit ")
        self.complete(self.env, "submit", "--ti")
        self.assertEqual(self.zsh_buffer, "mpctl submit --timeout ")

    def test_sourced_it_completes_too(self):
        self.zsh_load(sourced=True)
        self.assertIn("submit", self.complete(self.env, "su"))
        self.assertEqual(self.zsh_buffer, "mpctl submit ")
        self.assertEqual(self.complete(self.env, "submit", "--ti"), ["--timeout"])


@unittest.skipUnless(FISH, NO_FISH)
class FishWithoutDaemon(Completion, WithoutDaemonTests, unittest.TestCase):
    shell = "fish"


class WithDaemonTests:
    def setUp(self):
        super().setUp()
        self.setup_script(self.daemon.dir)

    def submit(self, *args):
        task = int(self.mpctl_ok(["submit", *args]).decode().strip())
        self.addCleanup(self.mpctl, ["cancel", "--force", str(task)])
        return task

    def test_cancel_offers_the_ids_of_pending_tasks(self):
        self.mpctl_ok(["pool", "set", "slow", "--workers", "1"])
        running = self.submit("--pool", "slow", "--", "sleep", "600")
        pending = self.submit("--pool", "slow", "--", "sleep", "600")
        finished = int(self.mpctl_ok(["submit", "--", "true"]).decode().strip())
        self.mpctl_ok(["wait", str(finished)])
        state = self.mpctl_ok(["status", "--json", str(pending)]).decode()
        self.assertIn('"pending"', state)  # one slot, taken by the first: deterministic

        offered = self.complete(self.env, "cancel", "")
        self.assertIn(str(pending), offered)
        self.assertIn(str(running), offered)
        self.assertNotIn(str(finished), offered)
        # Ids already typed are words like the others: the next one is offered too.
        self.assertIn(str(pending), self.complete(self.env, "cancel", str(running), ""))
        self.assertEqual(self.complete(self.env, "kill", str(pending)), [str(pending)])
        # Finished tasks are what remove and restart take.
        self.assertEqual(self.complete(self.env, "remove", ""), [str(finished)])
        # --socket on the command line is the daemon asked, whatever the environment says.
        elsewhere = dict(self.env, MPCTL_SOCKET=os.path.join(self.daemon.dir, "none.sock"))
        self.assertEqual(self.complete(elsewhere, "cancel", ""), [])
        self.assertIn(str(pending), self.complete(elsewhere, "--socket", self.daemon.socket, "cancel", ""))

    def test_pools_and_queues_complete(self):
        self.mpctl_ok(["pool", "set", "slow", "--workers", "1"])
        self.mpctl_ok(["queue", "put", "jobs", "1"])
        self.assertIn("slow", self.complete(self.env, "submit", "--pool", ""))
        self.assertEqual(self.complete(self.env, "list", "--pool", "sl"), ["slow"])
        self.assertIn("slow", self.complete(self.env, "pool", "delete", ""))
        self.assertIn("slow", self.complete(self.env, "pool", "set", ""))
        self.assertEqual(self.complete(self.env, "queue", "get", ""), ["jobs"])
        self.assertEqual(self.complete(self.env, "queue", "info", "j"), ["jobs"])


class WithDaemon(Completion, WithDaemonTests, DaemonCase):
    pass


@unittest.skipUnless(ZSH, NO_ZSH)
class ZshWithDaemon(Completion, WithDaemonTests, DaemonCase):
    shell = "zsh"


@unittest.skipUnless(FISH, NO_FISH)
class FishWithDaemon(Completion, WithDaemonTests, DaemonCase):
    shell = "fish"


class OtherShells(unittest.TestCase):
    def check_syntax(self, shell, script_name):
        exe = shutil.which(shell)
        if exe is None:
            self.skipTest(f"{shell} is not installed (apt-get install {shell}): its script is not checked")
        with tempfile.TemporaryDirectory(prefix="mpt-compl-", dir="/tmp") as d:
            path = os.path.join(d, script_name)
            with open(path, "wb") as f:
                f.write(generate(shell))
            done = subprocess.run([exe, "-n", path], capture_output=True, timeout=60)
            self.assertEqual(done.returncode, 0, f"{shell} -n: {done.stderr.decode()}")

    def test_zsh_script_parses(self):
        self.check_syntax("zsh", "_mpctl")

    def test_fish_script_parses(self):
        self.check_syntax("fish", "mpctl.fish")


class BuiltAndInstalled(unittest.TestCase):
    FILES = {"bash": ("mpctl", "share/bash-completion/completions/mpctl"),
             "zsh": ("_mpctl", "share/zsh/vendor-completions/_mpctl"),
             "fish": ("mpctl.fish", "share/fish/vendor_completions.d/mpctl.fish")}

    def setUp(self):
        self.build = os.path.dirname(os.path.abspath(BIN))
        if not os.path.isdir(os.path.join(self.build, "completions")):
            self.skipTest(f"no {self.build}/completions: mpctl was not built by this tree's CMake")

    def test_the_build_wrote_what_mpctl_prints(self):
        for shell, (name, _) in self.FILES.items():
            with open(os.path.join(self.build, "completions", name), "rb") as f:
                self.assertEqual(f.read(), generate(shell), f"{name} is stale: rebuild mpctl")

    def test_install_puts_them_where_shells_look(self):
        cmake = shutil.which("cmake")
        if cmake is None:
            self.skipTest("cmake is not on PATH")
        with tempfile.TemporaryDirectory(prefix="mpt-compl-prefix-", dir="/tmp") as prefix:
            done = subprocess.run([cmake, "--install", self.build, "--prefix", prefix,
                                   "--component", "completions"], capture_output=True,
                                  timeout=300)
            self.assertEqual(done.returncode, 0, done.stdout.decode() + done.stderr.decode())
            for shell, (_, installed) in self.FILES.items():
                with open(os.path.join(prefix, installed), "rb") as f:
                    self.assertEqual(f.read(), generate(shell), installed)


if __name__ == "__main__":
    unittest.main()
