#!/usr/bin/env python3
"""The layout rules of DESIGN.md ("Layout: one family per folder"), checked over the #include lines:

1. The core (broker/) includes nothing of a family (channels/, sources/) but the family's contract
   header (channels/channel.h, sources/source.h); filters/filter.h is the filter interface.
2. No include circle: a module (x.c with x.h) includes, directly or not, no module that includes it.
3. No C file over 1000 lines: a file that long holds two things.

Run by `make check`; prints every violation and exits 1 if there is one."""

import os
import re
import sys

TOP = os.environ.get("top_srcdir") or os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
FAMILY_CONTRACTS = {"channels/channel.h", "sources/source.h", "filters/filter.h"}
MAX_LINES = 1000
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)


def sources():
    for root in ("broker", "channels", "sources", "filters", "tests"):
        for d, _, files in os.walk(os.path.join(TOP, root)):
            for f in files:
                if f.endswith((".c", ".h")):
                    yield os.path.relpath(os.path.join(d, f), TOP)


def module(path):
    return os.path.splitext(path)[0]


def main():
    problems = []
    graph = {}
    for path in sorted(sources()):
        with open(os.path.join(TOP, path), encoding="utf-8") as f:
            text = f.read()
        nlines = text.count("\n")
        if nlines > MAX_LINES:
            problems.append("%s: %d lines (at most %d: split it at its seams)" % (path, nlines, MAX_LINES))
        if path.startswith("tests/"):
            continue
        for inc in INCLUDE.findall(text):
            if "/" not in inc:
                continue  # autoconfig.h, or a sibling in tests
            if path.startswith("broker/") and not inc.startswith("broker/") and inc not in FAMILY_CONTRACTS:
                problems.append("%s: the core includes %s (only a family's contract header may be)"
                                % (path, inc))
            # An X-macro list header is included for its lines, not for its declarations.
            if inc.endswith("_list.h"):
                continue
            graph.setdefault(module(path), set()).add(module(inc))
    # Circles: depth-first search with colours, reporting each circle once by its members.
    colour, stack, seen = {}, [], set()

    def visit(m):
        colour[m] = 1
        stack.append(m)
        for n in sorted(graph.get(m, ())):
            if n == m:
                continue
            if colour.get(n) == 1:
                circle = stack[stack.index(n):] + [n]
                key = frozenset(circle)
                if key not in seen:
                    seen.add(key)
                    problems.append("include circle: " + " -> ".join(circle))
            elif not colour.get(n):
                visit(n)
        stack.pop()
        colour[m] = 2

    for m in sorted(graph):
        if not colour.get(m):
            visit(m)
    for p in problems:
        print(p)
    print("layout: %d module(s) checked, %d problem(s)" % (len(graph), len(problems)))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
