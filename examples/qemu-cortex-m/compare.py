#!/usr/bin/env python3
"""Checks the firmware's output (read from a file or stdin) against the C original's vectors.

Every `== CONFIG/NAME.heapS_32` block, and every `== CONFIG/NAME.heapS_32 [INDEX]` block (the
same scheme with another free-block index), must equal, line by line, the `a`/`c`/`s`/`w` lines
of `SHARED/vectors/CONFIG/NAME.heapS_32.out` (the C harness's own `!` and `e` notes left out, as
the host conformance test does). Every expected file of the 32-bit layouts must have been run
with FreeRTOS's list, and where the alignment allows the trees (8, 16) with every index of
`INDEXES`; the demo must report ok and the output must end with the firmware's `== done` line.

Usage: compare.py SHARED_DIR [OUTPUT_FILE]      exit 0: all match; 1: a mismatch or a run missing
"""
import pathlib
import sys

# The other indexes each scheme runs with on the target (alignments 8 and 16).
INDEXES = {
    "heap2": ["SizeTree"],
    "heap4": ["AddressTree", "Hybrid<16>"],
    "heap5": ["AddressTree", "Hybrid<16>"],
}
TREE_CONFIGS = {"a8_m0", "a8_m3", "a16_m0"}


def operations(trace):
    """The operation lines of a trace (comments and blank lines left out)."""
    lines = (l.split("#", 1)[0].strip() for l in trace.read_text().splitlines())
    return sum(1 for l in lines if l)


def main():
    shared = pathlib.Path(sys.argv[1])
    if not (shared / "vectors").is_dir():
        sys.exit(f"compare.py: {shared}/vectors missing (the C original's vectors)")
    text = open(sys.argv[2]).read() if len(sys.argv) > 2 else sys.stdin.read()
    runs, current, done, demo = {}, None, None, False
    for line in text.splitlines():
        if line.startswith("== demo:"):
            demo = line.endswith("ok")
        elif line.startswith("== done"):
            done = line
        elif line.startswith("== "):
            current = line[3:]
            runs[current] = []
        elif line.startswith("PANIC"):
            sys.exit(f"compare.py: the firmware failed: {line}")
        elif current is not None and line:
            runs[current].append(line)
    failures = []
    expected_files = sorted(shared.glob("vectors/*/*_32.out"))
    if not expected_files:
        failures.append(f"no 32-bit vectors under {shared}/vectors")
    checked, lines, ops = 0, 0, 0
    for f in expected_files:
        base = f"{f.parent.name}/{f.stem}"
        scheme = f.stem.split(".")[1].split("_")[0]
        keys = [base]
        if f.parent.name in TREE_CONFIGS:
            keys += [f"{base} [{index}]" for index in INDEXES.get(scheme, [])]
        want = [l for l in f.read_text().splitlines() if l and not l.startswith(("!", "e"))]
        trace_ops = operations(shared / "vectors" / "traces" / f"{f.stem.split('.')[0]}.trace")
        for key in keys:
            if key not in runs:
                failures.append(f"{key}: not run on the target")
                continue
            got = runs.pop(key)
            for i, (g, w) in enumerate(zip(got, want)):
                if g != w:
                    failures.append(f"{key}: line {i + 1}: got `{g}`, want `{w}`")
                    break
            else:
                if len(got) != len(want):
                    failures.append(f"{key}: {len(got)} lines, want {len(want)}")
            checked += 1
            lines += len(want)
            ops += trace_ops
    for key in runs:
        failures.append(f"{key}: run on the target, but no such vector")
    if not demo:
        failures.append("the demo (global allocator, heap_5, pool) did not report ok")
    if done is None:
        failures.append("the firmware did not finish (no `== done` line)")
    elif done != f"== done: {checked} vector runs":
        failures.append(f"the firmware reports `{done}`, {checked} runs were compared")
    for m in failures:
        print(m)
    if failures:
        sys.exit(1)
    print(
        f"compare.py: {checked} vector runs ({len(expected_files)} vector files), {ops} operations, "
        f"{lines} output lines: every one as the C original's"
    )


main()
