#!/usr/bin/env python3
"""Checks the firmware's output (read from a file or stdin) against the C original's vectors.

Every `== CONFIG/NAME.heapS_32` block must equal, line by line, the `a`/`c`/`s`/`w` lines of
`SHARED/vectors/CONFIG/NAME.heapS_32.out` (the C harness's own `!` and `e` notes left out, as the
host conformance test does), every expected file of the 32-bit layouts must have been run, and the
output must end with the firmware's `== done` line.

Usage: compare.py SHARED_DIR [OUTPUT_FILE]      exit 0: all match; 1: a mismatch or a run missing
"""
import pathlib
import sys


def main():
    shared = pathlib.Path(sys.argv[1])
    text = open(sys.argv[2]).read() if len(sys.argv) > 2 else sys.stdin.read()
    runs, current, done, demo = {}, None, False, False
    for line in text.splitlines():
        if line.startswith("== demo:"):
            demo = line.endswith("ok")
        elif line.startswith("== done"):
            done = True
        elif line.startswith("== "):
            current = line[3:]
            runs[current] = []
        elif line.startswith("PANIC"):
            sys.exit(f"compare.py: the firmware panicked: {line}")
        elif current is not None and line:
            runs[current].append(line)
    failures = []
    expected_files = sorted(shared.glob("vectors/*/*_32.out"))
    lines = 0
    for f in expected_files:
        key = f"{f.parent.name}/{f.stem}"
        if key not in runs:
            failures.append(f"{key}: not run on the target")
            continue
        want = [l for l in f.read_text().splitlines() if l and not l.startswith(("!", "e"))]
        got = runs[key]
        for i, (g, w) in enumerate(zip(got, want)):
            if g != w:
                failures.append(f"{key}: line {i + 1}: got `{g}`, want `{w}`")
                break
        else:
            if len(got) != len(want):
                failures.append(f"{key}: {len(got)} lines, want {len(want)}")
        lines += len(want)
    if not demo:
        failures.append("the demo (global allocator, heap_5, pool) did not report ok")
    if not done:
        failures.append("the firmware did not finish (no `== done` line)")
    for m in failures:
        print(m)
    if failures:
        sys.exit(1)
    print(f"compare.py: {len(expected_files)} vector runs, {lines} output lines: every one as the C original's")


main()
