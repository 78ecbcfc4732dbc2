#!/usr/bin/env python3
"""Fails on an include cycle between folders.

Every `#include <mpctl/PART/.../file.hpp>` in a source folder is an edge from the folder of the including
file to the folder of the included one (daemon/commands -> daemon/tasks). The folders must form a graph
without cycles: a folder may lean on the ones below it, never on one that leans back on it. With --graph
it prints the edges instead (docs/ARCHITECTURE.md shows them).

Usage: include_cycles.py [--graph] [SOURCE_ROOT]
"""

import os
import re
import sys

ROOTS = ("common", "proto", "daemon", "cli")
INCLUDE = re.compile(r'^\s*#\s*include\s*[<"]mpctl/([^>"]+)[>"]', re.M)


def folder_graph(top):
    """{folder: {included folder: [(file, include), ...]}} for every folder under ROOTS."""
    edges = {}
    for root in ROOTS:
        for dirpath, _, files in os.walk(os.path.join(top, root)):
            for name in sorted(files):
                if not name.endswith((".hpp", ".cpp", ".h", ".cc")):
                    continue
                path = os.path.join(dirpath, name)
                source = os.path.relpath(path, top)
                here = os.path.dirname(source)
                with open(path, encoding="utf-8", errors="replace") as f:
                    text = f.read()
                for target in INCLUDE.findall(text):
                    there = os.path.dirname(target)
                    if there and there != here:
                        edges.setdefault(here, {}).setdefault(there, []).append((source, target))
                edges.setdefault(here, {})
    return edges


def cycles(edges):
    """The strongly connected components with more than one folder (Tarjan)."""
    index, low, on_stack, stack, found = {}, {}, set(), [], []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges.get(v, {})):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def main(argv):
    show_graph = "--graph" in argv
    args = [a for a in argv if a != "--graph"]
    top = args[0] if args else os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
    edges = folder_graph(top)
    if show_graph:
        for here in sorted(edges):
            print(f"{here} -> {', '.join(sorted(edges[here])) or '(nothing)'}")
        return 0
    found = cycles(edges)
    if not found:
        print(f"no include cycle between the {len(edges)} folders")
        return 0
    for component in found:
        print("include cycle between folders: " + " <-> ".join(component))
        members = set(component)
        for here in component:
            for there, why in sorted(edges[here].items()):
                if there in members:
                    source, target = why[0]
                    more = f" (and {len(why) - 1} more)" if len(why) > 1 else ""
                    print(f"  {here} -> {there}: {source} includes mpctl/{target}{more}")
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
