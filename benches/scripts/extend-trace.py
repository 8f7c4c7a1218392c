#!/usr/bin/env python3
"""Extends an id-form trace (`a <id> <size> [align]` / `f <id>`) to N operations.

The original trace is kept whole; then its second half (the steady state) is repeated with fresh
ids until N operations are written. In each repetition only blocks both allocated and freed inside
the section are replayed, so the live set stays the same from one repetition to the next.

Usage: extend-trace.py IN.ids.txt N > OUT.ids.txt
"""
import sys


def main():
    src, total = sys.argv[1], int(sys.argv[2])
    lines = [l.split() for l in open(src) if l[:2] in ("a ", "f ")]
    section = lines[len(lines) // 2 :]
    born = {f[1] for f in section if f[0] == "a"}
    freed = {f[1] for f in section if f[0] == "f"}
    closed = born & freed
    section = [f for f in section if f[1] in closed]
    if not section:
        sys.exit("no block is both allocated and freed in the second half")
    out = sys.stdout
    n = 0
    for f in lines:
        out.write(" ".join(f) + "\n")
        n += 1
    next_id = 1 + max(int(f[1]) for f in lines)
    open_ids = set()
    while n < total:
        fresh = {}
        for f in section:
            if n >= total:
                break
            if f[0] == "a":
                fresh[f[1]] = str(next_id)
                open_ids.add(fresh[f[1]])
                next_id += 1
                out.write(" ".join(["a", fresh[f[1]]] + f[2:]) + "\n")
            else:
                out.write(f"f {fresh[f[1]]}\n")
                open_ids.discard(fresh[f[1]])
            n += 1
    # The last repetition may stop between an allocation and its free: those blocks stay live to
    # the end (as the original trace's own live blocks do); at most a section's worth.
    sys.stderr.write(f"{n} operations, {len(open_ids)} repeated blocks live at the end\n")


if __name__ == "__main__":
    main()
