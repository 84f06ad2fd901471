"""Bytes per second the real `poolctl --demo` writes to a 120x40 pseudo-terminal while a live
migration (with its ping sparkline) runs, and which screen rows they go to.

    .venv/bin/python benchmarks/bench_migration_pty.py [--window 5] [--cols 120 --rows 40]

Drives the TUI like a user: Tab to the VM list, `m`, Enter (first usable host), then counts
the terminal output for --window seconds while the migration panel is up. The demo's
migrations take 8 s, so the window starts 1 s in and must end before the move does. Also
reports the idle rate before the migration and the rows written to (a high row count for
a panel line means it is repainted more than it changes). Target: <= 2048 B/s at 120x40.
The more general `python -m benchmarks --only pty_output` measures the same figure
(`pty.migration`) on a generated pool through a separate simulator process.
"""

from __future__ import annotations

import argparse
import collections
import os
import re
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.ptyrun import PtyProgram
from benchmarks.simproc import poolctl_command

TARGET_BPS = 2048
MOVE = re.compile(rb"\x1b\[(\d+);(\d+)H")


def rows_written(data: bytes) -> collections.Counter:
    """Bytes written after each cursor move, by screen row."""
    counts: collections.Counter = collections.Counter()
    marks = list(MOVE.finditer(data))
    for i, m in enumerate(marks):
        end = marks[i + 1].start() if i + 1 < len(marks) else len(data)
        counts[int(m.group(1))] += end - m.start()
    return counts


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--window", type=float, default=5.0, help="seconds measured (max 6; default 5)")
    ap.add_argument("--cols", type=int, default=120)
    ap.add_argument("--rows", type=int, default=40)
    args = ap.parse_args(argv)
    window = min(args.window, 6.0)
    with tempfile.TemporaryDirectory() as state:
        env = {"POOLCTL_STATE_DIR": state}
        prog = PtyProgram(poolctl_command() + ["--demo"], cols=args.cols, rows=args.rows, env=env)
        try:
            if not prog.wait_quiet(1.5, 120):
                print("poolctl never went quiet after start", file=sys.stderr)
                return 1
            idle = prog.bytes_over(2.0)
            prog.send(b"\t")  # focus the VM list (its first VM, app-01, runs on xcp-lab-2)
            prog.wait_quiet(0.5, 10)
            prog.send(b"m")
            prog.wait_quiet(1.0, 20)
            prog.clear_recent()
            prog.send(b"\r")
            deadline = time.monotonic() + 10
            while "elapsed" not in prog.recent_text():
                if time.monotonic() > deadline:
                    print("no migration panel appeared after m, Enter", file=sys.stderr)
                    return 1
                time.sleep(0.05)
            time.sleep(1.0)  # the panel's first full paint is not the steady rate
            prog.clear_recent()
            rate = prog.bytes_over(window)
            raw = prog.recent_text().encode()
            ended = "Migration complete" in prog.recent_text()
        finally:
            prog.close()
        logged = (Path(state) / "migrations.jsonl").read_text() if (Path(state) / "migrations.jsonl").exists() else ""
    print(f"idle before the migration: {idle:,.0f} B/s")
    print(
        f"during the migration ({window:.1f} s, {args.cols}x{args.rows}): {rate:,.0f} B/s "
        f"({'within' if rate <= TARGET_BPS else 'OVER'} the {TARGET_BPS} B/s target)"
    )
    if ended:
        print("note: the migration ended inside the window; use a shorter --window", file=sys.stderr)
    print("bytes by screen row:", ", ".join(f"{row}: {n:,}" for row, n in sorted(rows_written(raw).items())))
    if os.environ.get("BENCH_VERBOSE"):
        print(logged.strip())
    return 0 if rate <= TARGET_BPS else 1


if __name__ == "__main__":
    raise SystemExit(main())
