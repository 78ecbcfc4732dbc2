#!/usr/bin/env python3
"""The include-cycle check itself: it passes a tree whose folders only lean downwards, and fails one where
two folders include each other, naming both and the includes that close the cycle."""

import os
import subprocess
import sys
import tempfile

CHECK = os.path.join(os.path.dirname(os.path.abspath(__file__)), "include_cycles.py")


def write(top, path, text):
    full = os.path.join(top, path)
    os.makedirs(os.path.dirname(full), exist_ok=True)
    with open(full, "w", encoding="utf-8") as f:
        f.write(text)


def run(top):
    return subprocess.run([sys.executable, CHECK, top], capture_output=True, text=True, check=False)


def main():
    failures = []
    with tempfile.TemporaryDirectory() as top:
        write(top, "common/result.hpp", "#pragma once\n")
        write(top, "daemon/tasks/scheduler.hpp", "#include <mpctl/common/result.hpp>\n")
        write(top, "daemon/commands/registry.cpp", '#include <mpctl/daemon/tasks/scheduler.hpp>\n')
        ok = run(top)
        if ok.returncode != 0:
            failures.append(f"an acyclic tree failed: {ok.stdout}{ok.stderr}")
        # tasks -> commands closes a cycle with commands -> tasks.
        write(top, "daemon/tasks/scheduler.cpp", "#include <mpctl/daemon/commands/registry.hpp>\n")
        bad = run(top)
        if bad.returncode != 1:
            failures.append(f"a cycle was not reported (exit {bad.returncode}): {bad.stdout}")
        for expected in ("daemon/commands <-> daemon/tasks", "daemon/tasks/scheduler.cpp includes "
                         "mpctl/daemon/commands/registry.hpp"):
            if expected not in bad.stdout:
                failures.append(f"the report lacks {expected!r}: {bad.stdout}")
    for f in failures:
        print("FAIL:", f)
    print("include cycle check:", "failed" if failures else "ok")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
