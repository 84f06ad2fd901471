"""Run every benchmark and print one table: figure, value, target, ok?

    .venv/bin/python -m benchmarks [--quick] [--json FILE] [--sizes 3x12,64x10000] [--runs N]

Targets are reported, not asserted. A figure that cannot be measured yet says
"not available (reason)"; one whose benchmark crashed says "error (...)".
"""

from __future__ import annotations

import argparse
import datetime
import importlib
import json
import os
import platform
import sys
import time
import traceback
from pathlib import Path

if __package__ in (None, ""):  # `python benchmarks/run.py`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import Context, Figure, Results, Size, Unavailable

# In dependency order: simulator and backend first, then the CLI, then the TUI.
MODULES = [
    "benchmarks.bench_simulator",
    "benchmarks.bench_xapi_calls",
    "benchmarks.bench_cli",
    "benchmarks.bench_rss",
    "benchmarks.bench_tui_launch",
    "benchmarks.bench_tui_filter",
    "benchmarks.bench_tui_event",
    "benchmarks.bench_pty_output",
]

FULL_SIZES = "3x12,64x10000"
QUICK_SIZES = "3x12,4x300"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="small sizes, one run each (CI smoke)")
    p.add_argument(
        "--sizes",
        help=f"comma-separated HOSTSxVMS, smallest first (default {FULL_SIZES}; "
        f"--quick: {QUICK_SIZES}); figures 'at 10k' use the largest",
    )
    p.add_argument("--runs", type=int, help="repetitions per median (default 5; --quick: 1)")
    p.add_argument("--window", type=float, help="seconds per rate window (default 10; --quick: 2)")
    p.add_argument("--json", metavar="FILE", help="also write machine-readable results here ('-': stdout)")
    p.add_argument("--only", help="comma-separated module name parts to run, e.g. cli,tui_launch")
    return p.parse_args(argv)


def make_context(args: argparse.Namespace) -> Context:
    sizes = sorted(
        (Size.parse(t) for t in (args.sizes or (QUICK_SIZES if args.quick else FULL_SIZES)).split(",")),
        key=lambda s: (s.vms, s.hosts),
    )
    runs = args.runs or (1 if args.quick else 5)
    if runs < 1:
        raise SystemExit("--runs must be at least 1")
    window = args.window or (2.0 if args.quick else 10.0)
    return Context(sizes=sizes, runs=runs, quick=args.quick, window_s=window)


def run_module(name: str, ctx: Context) -> list[Figure]:
    mod = importlib.import_module(name)
    out = Results(mod.specs(ctx))
    t0 = time.perf_counter()
    print(f"[bench] {name.rsplit('.', 1)[-1]} ...", file=sys.stderr, flush=True)
    try:
        mod.measure(ctx, out)
    except Unavailable as exc:
        out.fill_missing(str(exc))
    except Exception as exc:  # one crashed benchmark must not hide the others
        traceback.print_exc(file=sys.stderr)
        out.fill_missing(f"{type(exc).__name__}: {exc}", error=True)
    out.fill_missing("benchmark did not report it", error=True)
    print(f"[bench] {name.rsplit('.', 1)[-1]} done in {time.perf_counter() - t0:.1f} s", file=sys.stderr, flush=True)
    return list(out.figures.values())


def fmt_value(fig: Figure) -> str:
    if fig.value is None:
        return f"{'error' if fig.error else 'not available'} ({fig.unavailable})"
    v = fig.value
    text = f"{v:,.0f}" if abs(v) >= 100 or v == int(v) else f"{v:.3g}" if abs(v) < 1 else f"{v:.2f}"
    return f"{text} {fig.unit}".rstrip()


def render_table(figures: list[Figure]) -> str:
    """The table; long 'not available' reasons go below it as numbered notes to keep rows short."""
    rows = [("figure", "value", "target", "ok?")]
    footnotes: dict[str, int] = {}  # one note per distinct reason
    for f in figures:
        ok = {True: "yes", False: "MISS", None: "-"}[f.ok]
        value = fmt_value(f)
        if len(value) > 48:
            n = footnotes.setdefault(value, len(footnotes) + 1)
            value = f"{value.split(' (', 1)[0]} [{n}]"
        rows.append((f.label, value, f.target.text if f.target else "-", ok))
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    lines = []
    for i, r in enumerate(rows):
        lines.append("  ".join(c.ljust(w) for c, w in zip(r[:3], widths)) + "  " + r[3])
        if i == 0:
            lines.append("  ".join("-" * w for w in widths) + "  ----")
    if footnotes:
        lines += [""] + [f"[{n}] {text}" for text, n in footnotes.items()]
    notes = [f"  {f.label}: {f.note}" for f in figures if f.note]
    if notes:
        lines += ["", "notes:"] + notes
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    ctx = make_context(args)
    names = MODULES
    if args.only:
        wanted = [w.strip() for w in args.only.split(",") if w.strip()]
        names = [n for n in MODULES if any(w in n for w in wanted)]
        if not names:
            raise SystemExit(f"--only {args.only!r} matches no benchmark module")
    figures: list[Figure] = []
    for name in names:
        figures += run_module(name, ctx)
    print(render_table(figures))
    if args.json:
        doc = {
            "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            "nproc": os.cpu_count(),
            "python": platform.python_version(),
            "sizes": [s.tag for s in ctx.sizes],
            "runs": ctx.runs,
            "quick": ctx.quick,
            "window_s": ctx.window_s,
            "figures": [f.as_json() for f in figures],
        }
        text = json.dumps(doc, indent=2)
        if args.json == "-":
            print(text)
        else:
            Path(args.json).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
