"""Migration tuning on the real two-host QEMU lab (issue 14 item 6): idle and busy guest, probes
at 20 Hz, ``virsh migrate --live`` defaults vs ``poolctl migrate --tune off`` vs poolctl's default.

    sudo .venv/bin/python -m benchmarks.bench_lab_tuning [--moves N] [--json FILE]
    sudo .venv/bin/python benchmarks/bench_lab_tuning.py [--moves N]

Needs root and the lab's host setup (tests/lab/setup_host.sh). Brings the lab of ``tests/lab``
up, moves the guest A->B and B->A ``--moves`` times per method for each guest kind while
poolctl's pinger probes it every 50 ms from the client namespace (virsh: a pinger of its own;
poolctl: the command's own pinger, read from its audit log), prints one table row per guest
and method, and tears the lab down, also on failure. A guest whose kernel crashed after a move
(QEMU 7.2 TCG, tests/lab/README.md) is counted, rebooted and the run goes on.
Progress goes to stderr, the table to stdout. Figures are reported, not asserted.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

if __package__ in (None, ""):  # `python benchmarks/bench_lab_tuning.py`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from poolctl.ping.pinger import Pinger
from tests.lab.lab import Lab
from tests.lab.labcli import POOL, PoolctlCli
from tests.lab.labenv import LabError
from tests.lab.labguest import BUSY_MIB

INTERVAL = 0.05
DIRECTIONS = (("hostA", "hostB"), ("hostB", "hostA"))
METHODS = ("virsh defaults", "poolctl --tune off", "poolctl (default)")
TIMEOUT_S = 120.0


@dataclass
class Move:
    guest: str
    method: str
    src: str
    dst: str
    wall_s: float
    move_s: float | None
    downtime_ms: float | None
    sent: int
    lost: int
    gap_s: float | None
    predicted_s: float | None = None
    predicted_pause_ms: float | None = None
    predicted_lost: float | None = None
    error: str = ""


def log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def virsh_move(lab: Lab, guest: str, src: str, dst: str) -> Move:
    argv = ["virsh", "-q", "-c", lab.uris[src], "migrate", "--live", "--p2p", lab.guest_name, lab.peer_uris[dst]]
    pinger = lab.in_client(lambda: Pinger(lab.guest_ip, interval=INTERVAL, timeout=1.0))
    pinger.start()
    try:
        time.sleep(1.0)
        t0 = time.monotonic()
        p = subprocess.run(argv, capture_output=True, text=True, timeout=TIMEOUT_S)
        wall = time.monotonic() - t0
        time.sleep(1.0)
    finally:
        stats = pinger.stop()
    if p.returncode != 0:
        return Move(guest, METHODS[0], src, dst, wall, None, None, stats.sent, stats.lost, None, error=p.stderr.strip())
    info = subprocess.run(
        ["virsh", "-q", "-c", lab.uris[dst], "domjobinfo", "--completed", lab.guest_name],
        capture_output=True,
        text=True,
        timeout=30,
    ).stdout
    fields = dict(line.split(":", 1) for line in info.splitlines() if ":" in line)
    downtime = float(fields["Total downtime"].split()[0]) if "Total downtime" in fields else None
    elapsed = float(fields["Time elapsed"].split()[0]) / 1000 if "Time elapsed" in fields else None
    return Move(guest, METHODS[0], src, dst, wall, elapsed, downtime, stats.sent, stats.lost, stats.longest_gap_s)


def poolctl_move(lab: Lab, cli: PoolctlCli, guest: str, method: str, src: str, dst: str) -> Move:
    extra = ("--tune", "off") if "off" in method else ()
    run = cli.run(
        "migrate", lab.guest_name, dst, "--ping", lab.guest_ip, "--interval", str(INTERVAL), "--pool", POOL, *extra
    )
    if run.rc != 0:
        return Move(guest, method, src, dst, run.wall_s, None, None, 0, 0, None, error=run.stderr.strip()[-300:])
    entry = json.loads((cli.state_dir / "migrations.jsonl").read_text().splitlines()[-1])
    p, m = entry.get("predicted") or {}, entry.get("measured") or {}
    return Move(
        guest,
        method,
        src,
        dst,
        run.wall_s,
        entry["duration_s"],
        entry["downtime_ms"],
        entry["ping_sent"],
        entry["ping_lost"],
        entry["ping_longest_gap_s"],
        p.get("duration_s"),
        p.get("pause_ms"),
        p.get("lost_probes"),
        error="" if not m.get("escalations") else "; ".join(m["escalations"]),
    )


def ensure(lab: Lab, guest: str) -> None:
    lab.ensure_guest(on="hostA", dirty_mib=BUSY_MIB if guest == "busy" else 0)


def session(lab: Lab, moves: int) -> tuple[list[Move], int]:
    out: list[Move] = []
    crashes = 0
    with tempfile.TemporaryDirectory(prefix="bench-tuning-") as tmp:
        for guest in ("idle", "busy"):
            for method in METHODS:
                cli = PoolctlCli(lab, Path(tmp) / f"{guest}-{method.split()[-1].strip('()')}")
                ensure(lab, guest)
                for i in range(moves):
                    for src, dst in DIRECTIONS:
                        if lab.running_on() != [src]:  # rebooted on hostA after a crash
                            ensure(lab, guest)
                            if src != "hostA":
                                lab.migrate_raw("hostA", src)
                        log(f"{guest} · {method} · move {i + 1} {src} -> {dst}")
                        mv = (
                            virsh_move(lab, guest, src, dst)
                            if method == METHODS[0]
                            else poolctl_move(lab, cli, guest, method, src, dst)
                        )
                        try:
                            lab.wait_ping(5)
                        except LabError:
                            crashes += 1
                            mv.error = (mv.error + "; " if mv.error else "") + (
                                f"guest crashed after the move: {lab.guest_crash() or 'silent'}"
                            )
                            log(f"  {mv.error}; rebooting")
                            lab.stop_guest(lab.guest_name)
                            ensure(lab, guest)
                        log(f"  {asdict(mv)}")
                        out.append(mv)
    return out, crashes


def _med(values: list[float | None], fmt: str) -> str:
    got = [v for v in values if v is not None]
    return fmt.format(statistics.median(got)) if got else "–"


def table(moves: list[Move]) -> str:
    rows = [
        "| guest | method | moves | wall s | move s | libvirt downtime ms | lost probes (per move) | longest gap s "
        "| predicted: move s / pause ms / lost | notes |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for guest in ("idle", "busy"):
        for method in METHODS:
            ms = [m for m in moves if m.guest == guest and m.method == method]
            if not ms:
                continue
            ok = [m for m in ms if "crashed" not in m.error]
            # a move after which the guest crashed shows as x: its silence is QEMU's, not the move's
            lost = "/".join("x" if "crashed" in m.error else str(m.lost) for m in ms)
            gaps = [m.gap_s for m in ok if m.gap_s is not None]
            pred = (
                f"{_med([m.predicted_s for m in ms], '{:.1f}')} / {_med([m.predicted_pause_ms for m in ms], '{:.0f}')}"
                f" / {_med([m.predicted_lost for m in ms], '{:.2f}')}"
                if method != METHODS[0]
                else "–"
            )
            crashed = len(ms) - len(ok)
            notes = [f"guest crashed after {crashed} move(s)"] if crashed else []
            notes += sorted({m.error.split(":")[0] for m in ok if m.error})
            rows.append(
                f"| {guest} | {method} | {len(ms)} | {_med([m.wall_s for m in ok], '{:.1f}')} "
                f"| {_med([m.move_s for m in ok], '{:.2f}')} | {_med([m.downtime_ms for m in ok], '{:.0f}')} "
                f"({min((m.downtime_ms for m in ok if m.downtime_ms is not None), default=0):.0f}-"
                f"{max((m.downtime_ms for m in ok if m.downtime_ms is not None), default=0):.0f}) "
                f"| {sum(m.lost for m in ok)} ({lost}) | {max(gaps, default=0):.2f} | {pred} | {'; '.join(notes)} |"
            )
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--moves", type=int, default=2, help="moves each way per method and guest (default 2)")
    ap.add_argument("--json", metavar="FILE", help="write every move's figures to FILE")
    ap.add_argument("--table", metavar="FILE", help="print the table of a --json FILE again (no lab)")
    args = ap.parse_args(argv)
    if args.table:
        print(table([Move(**m) for m in json.loads(Path(args.table).read_text())]))
        return 0
    lab = Lab()
    t0 = time.monotonic()
    try:
        lab.up()
        lab.warm_capabilities()
        lab.stop_guest("pingvm2")
        moves, crashes = session(lab, args.moves)
    finally:
        problems = lab.down()
        if problems:
            log(f"lab teardown left: {problems}")
    print(table(moves))
    print(f"\n{len(moves)} moves in {time.monotonic() - t0:.0f} s; guest crashes after a move: {crashes}")
    if args.json:
        Path(args.json).write_text(json.dumps([asdict(m) for m in moves], indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
