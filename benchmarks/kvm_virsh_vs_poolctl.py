"""Live migration on the real two-host QEMU lab: plain ``virsh migrate`` vs poolctl's KVM backend.

    sudo .venv/bin/python -m benchmarks.kvm_virsh_vs_poolctl [--runs N] [--json FILE]
    sudo .venv/bin/python benchmarks/kvm_virsh_vs_poolctl.py [--runs N]

Brings the lab of ``tests/lab`` up (its own Python API), moves the same guest A->B and
B->A ``--runs`` times with each method while poolctl's pinger probes it every 100 ms from
the client namespace, prints wall time, libvirt's downtime and the ping outage side by
side with the difference poolctl - virsh, and tears the lab down, also on failure.
Progress goes to stderr, the table to stdout. Figures are reported, not asserted.
"""

from __future__ import annotations

import argparse
import json
import re
import signal
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

if __package__ in (None, ""):  # `python benchmarks/kvm_virsh_vs_poolctl.py`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import libvirt

from poolctl.backends.kvm.eventloop import ensure_event_loop
from poolctl.model import MigrationOptions
from tests.lab.drive import INTERVAL, kvm_backend, pinging, refs, run_migration, settle
from tests.lab.lab import Lab
from tests.lab.labenv import LabError

DIRECTIONS = (("hostA", "hostB"), ("hostB", "hostA"))
SETTLE_BEFORE_S = 1.0  # the pinger's baseline: the guest answers before the move
SETTLE_AFTER_S = 1.5  # replies must come back from the destination
MIGRATE_TIMEOUT_S = 90.0
_DOWNTIME = re.compile(r"^Total downtime:\s+(\d+(?:\.\d+)?)\s*ms", re.MULTILINE)


@dataclass
class Sample:
    method: str  # "virsh" | "poolctl"
    src: str
    dst: str
    wall_s: float
    downtime_ms: float | None
    sent: int
    lost: int
    gap_s: float
    job_ms: float | None = None  # libvirt's own job time (source's JOB_COMPLETED: time_elapsed)
    event_downtime_ms: float | None = None  # the same event's downtime: a cross-check
    error: str = ""  # a failed migration: counted, kept out of the medians

    @property
    def direction(self) -> str:
        return f"{self.src[-1]}->{self.dst[-1]}"


def log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


class JobEvents:
    """JOB_COMPLETED events of the lab's hosts, on connections of our own.

    Both methods' migrations are seen the same way here: the event's downtime checks the
    figure each method reports, its time_elapsed shows how long the memory copy took.
    """

    def __init__(self, lab: Lab):
        self._cond = threading.Condition()
        self._got: dict[str, dict] = {}
        self._conns = []
        for h in lab.hosts:
            c = libvirt.open(lab.uris[h])
            c.domainEventRegisterAny(None, libvirt.VIR_DOMAIN_EVENT_ID_JOB_COMPLETED, self._on, h)
            self._conns.append(c)

    def _on(self, _conn, _dom, params, host) -> None:
        with self._cond:
            self._got[host] = dict(params)
            self._cond.notify_all()

    def clear(self) -> None:
        with self._cond:
            self._got.clear()

    def take(self, host: str, timeout: float = 2.0) -> dict:
        with self._cond:
            self._cond.wait_for(lambda: host in self._got, timeout)
            return self._got.pop(host, {})

    def close(self) -> None:
        for c in self._conns:
            try:
                c.close()
            except libvirt.libvirtError:
                pass


# -- virsh ----------------------------------------------------------------------------
def virsh(uri: str, *args: str, timeout: float = 30) -> str:
    argv = ["virsh", "-q", "-c", uri, *args]
    p = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    if p.returncode != 0:
        raise LabError(f"{' '.join(argv)}: exit {p.returncode}: {p.stderr.strip()}")
    return p.stdout


def virsh_migrate_argv(lab: Lab, src: str, dst: str) -> list[str]:
    """What poolctl's backend asks libvirt for, in virsh words: live + p2p, and for a
    persistent domain persist-on-destination + undefine-source (see backends/kvm/migration_start.py)."""
    dom = lab.conn(src).lookupByName(lab.guest_name)
    flags = ["--live", "--p2p"]
    if dom.isPersistent():
        flags += ["--persistent", "--undefine-source"]
    return ["virsh", "-q", "-c", lab.uris[src], "migrate", *flags, lab.guest_name, lab.peer_uris[dst]]


def parse_downtime(domjobinfo: str) -> float | None:
    """``Total downtime: 63 ms`` from ``virsh domjobinfo --completed``; None when absent."""
    m = _DOWNTIME.search(domjobinfo)
    return float(m.group(1)) if m else None


def migrate_virsh(lab: Lab, src: str, dst: str) -> Sample:
    argv = virsh_migrate_argv(lab, src, dst)
    with pinging(lab) as pinger:
        baseline(pinger, src)
        t0 = time.monotonic()
        try:
            p = subprocess.run(argv, capture_output=True, text=True, timeout=MIGRATE_TIMEOUT_S, check=False)
        except subprocess.TimeoutExpired:
            subprocess.run(
                ["virsh", "-c", lab.uris[src], "domjobabort", lab.guest_name],
                capture_output=True,
                timeout=30,
                check=False,
            )
            raise LabError(f"virsh migrate {src} -> {dst} still running after {MIGRATE_TIMEOUT_S:.0f} s") from None
        wall = time.monotonic() - t0
        settle(pinger, SETTLE_AFTER_S)
        stats = pinger.stop()
    if p.returncode != 0:
        return Sample(
            "virsh",
            src,
            dst,
            wall,
            None,
            stats.sent,
            stats.lost,
            stats.longest_gap_s,
            error=f"virsh migrate: exit {p.returncode}: {p.stderr.strip()}",
        )
    # the completed job's statistics, as the destination's libvirtd recorded them
    downtime = parse_downtime(virsh(lab.uris[dst], "domjobinfo", "--completed", lab.guest_name))
    return Sample("virsh", src, dst, wall, downtime, stats.sent, stats.lost, stats.longest_gap_s)


# -- poolctl --------------------------------------------------------------------------
def migrate_poolctl(lab: Lab, backend, src: str, dst: str) -> Sample:
    r = refs(backend.inventory(), lab.guest_name)
    with pinging(lab) as pinger:
        baseline(pinger, src)
        t0 = time.monotonic()
        handle = backend.migrate(r.vm, r.hosts[dst], MigrationOptions())
        run = run_migration(handle, MIGRATE_TIMEOUT_S)  # updates until the terminal one
        wall = time.monotonic() - t0
        settle(pinger, SETTLE_AFTER_S)
        stats = pinger.stop()
    res = run.result
    return Sample(
        "poolctl",
        src,
        dst,
        wall,
        res.downtime_ms,
        stats.sent,
        stats.lost,
        stats.longest_gap_s,
        error="" if res.outcome == "success" else f"{res.outcome}: {res.error}",
    )


# -- shared ---------------------------------------------------------------------------
def baseline(pinger, src: str) -> None:
    settle(pinger, SETTLE_BEFORE_S)
    before = pinger.stats()
    if before.received == 0 or before.lost:
        raise LabError(
            f"guest not answering steadily on {src} before the migration: "
            f"sent {before.sent}, received {before.received}, lost {before.lost}"
        )


def check_arrived(lab: Lab, s: Sample) -> None:
    where = lab.running_on()
    if where != [s.dst]:
        raise LabError(f"after {s.method} {s.src} -> {s.dst} libvirt shows the guest running on {where}")


def virsh_startup_s(lab: Lab, n: int = 5) -> float:
    """What one virsh invocation costs before it migrates anything: start, connect, exit."""
    times = []
    for _ in range(n):
        t0 = time.monotonic()
        virsh(lab.uris["hostA"], "uri")
        times.append(time.monotonic() - t0)
    return statistics.median(times)


def measure(lab: Lab, runs: int, events: JobEvents) -> list[Sample]:
    samples: list[Sample] = []

    def block(method: str) -> None:
        lab.ensure_guest(on="hostA")  # also puts the guest back after a failed migration
        if method == "virsh":
            for src, dst in DIRECTIONS:
                events.clear()
                if not record(migrate_virsh(lab, src, dst)):
                    return
            return
        # connected only for its own block: the virsh runs get no poolctl watcher beside them
        with kvm_backend(lab) as backend:
            for src, dst in DIRECTIONS:
                events.clear()
                if not record(migrate_poolctl(lab, backend, src, dst)):
                    return

    def record(s: Sample) -> bool:
        samples.append(s)
        if s.error:
            # the lab's daemons occasionally drop their p2p connection (keepalive timeout
            # after 30 s): counted against the method, the rest of the session still runs
            log(f"  {s.method:7} {s.direction}: FAILED after {s.wall_s:.2f} s: {s.error}")
            return False
        check_arrived(lab, s)
        ev = events.take(s.src)
        s.job_ms, s.event_downtime_ms = ev.get("time_elapsed"), ev.get("downtime")
        dt = "n/a" if s.downtime_ms is None else f"{s.downtime_ms:.0f} ms"
        log(
            f"  {s.method:7} {s.direction}: wall {s.wall_s:.2f} s (libvirt job {s.job_ms} ms), "
            f"downtime {dt} (event {s.event_downtime_ms} ms), "
            f"ping sent {s.sent} lost {s.lost} gap {s.gap_s:.2f} s"
        )
        if (
            s.downtime_ms is not None
            and s.event_downtime_ms is not None
            and abs(s.downtime_ms - s.event_downtime_ms) > 1
        ):
            log(
                f"  warning: {s.method} reports downtime {s.downtime_ms} ms, "
                f"libvirt's JOB_COMPLETED event {s.event_downtime_ms} ms"
            )
        return True

    for i in range(runs):
        # alternate who goes first, so a drift over the session (caches, load) favours neither
        order = ("virsh", "poolctl") if i % 2 == 0 else ("poolctl", "virsh")
        log(f"run {i + 1}/{runs}")
        for method in order:
            block(method)
    return samples


# -- report ---------------------------------------------------------------------------
def _med(xs: list[float]) -> float | None:
    return statistics.median(xs) if xs else None


def summarize(samples: list[Sample], method: str, direction: str | None) -> dict:
    mine = [s for s in samples if s.method == method and (direction is None or s.direction == direction)]
    sel = [s for s in mine if not s.error]
    downs = [s.downtime_ms for s in sel if s.downtime_ms is not None]
    return {
        "method": method,
        "direction": direction or "both",
        "runs": len(sel),
        "failed": len(mine) - len(sel),
        "wall_s": _med([s.wall_s for s in sel]),
        "wall_range": (min(s.wall_s for s in sel), max(s.wall_s for s in sel)) if sel else None,
        "job_ms": _med([s.job_ms for s in sel if s.job_ms is not None]),
        "downtime_ms": _med(downs),
        "downtime_missing": len(sel) - len(downs),
        "sent": sum(s.sent for s in sel),
        "lost": sum(s.lost for s in sel),
        "gap_s": _med([s.gap_s for s in sel]),
        "gap_max_s": max((s.gap_s for s in sel), default=None),
    }


def _f(v: float | None, fmt: str, signed: bool = False) -> str:
    if v is None:
        return "n/a"
    return format(v, ("+" if signed else "") + fmt)


def table(samples: list[Sample], startup_s: float) -> str:
    head = (
        f"{'method':8} {'dir':5} {'ok':>3} {'failed':>6} {'wall s (median [min-max])':>26} {'copy ms':>7} "
        f"{'downtime ms':>11} {'lost/sent':>10} {'gap s med/max':>14}"
    )
    lines = [head, "-" * len(head)]
    rows: dict[tuple[str, str], dict] = {}
    for direction in ("A->B", "B->A", None):
        for method in ("virsh", "poolctl"):
            row = summarize(samples, method, direction)
            rows[(method, row["direction"])] = row
            lo, hi = row["wall_range"] or (None, None)
            wall = f"{_f(row['wall_s'], '.2f')} [{_f(lo, '.2f')}-{_f(hi, '.2f')}]"
            down = _f(row["downtime_ms"], ".0f") + (
                f" ({row['downtime_missing']} n/a)" if row["downtime_missing"] else ""
            )
            lines.append(
                f"{method:8} {row['direction']:5} {row['runs']:>3} {row['failed']:>6} {wall:>26} "
                f"{_f(row['job_ms'], '.0f'):>7} {down:>11} "
                f"{str(row['lost']) + '/' + str(row['sent']):>10} "
                f"{_f(row['gap_s'], '.2f') + '/' + _f(row['gap_max_s'], '.2f'):>14}"
            )
        lines.append("")
    lines.append("poolctl - virsh (medians):")
    for direction in ("A->B", "B->A", "both"):
        p, v = rows[("poolctl", direction)], rows[("virsh", direction)]
        diff = {
            k: (p[k] - v[k] if p[k] is not None and v[k] is not None else None)
            for k in ("wall_s", "downtime_ms", "gap_s")
        }
        lines.append(
            f"  {direction:5} wall {_f(diff['wall_s'], '.3f', True)} s, "
            f"downtime {_f(diff['downtime_ms'], '.0f', True)} ms, "
            f"lost {p['lost'] - v['lost']:+d} probes, gap {_f(diff['gap_s'], '.3f', True)} s, "
            f"failed {p['failed'] - v['failed']:+d}"
        )
    lines.append(
        "copy ms: libvirt's job time_elapsed (the source's JOB_COMPLETED event, read the same way "
        "for both methods); the rest of the wall is libvirt's work around the copy (destination "
        "QEMU start, finish, source cleanup). Medians and ping figures: successful runs only"
    )
    lines.append(
        f"virsh's wall includes its own start + connect + exit: {startup_s * 1000:.0f} ms "
        f"median for `virsh uri`; probe interval {INTERVAL} s"
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.kvm_virsh_vs_poolctl", description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=3, help="migrations per method and direction (default 3)")
    ap.add_argument("--json", metavar="FILE", help="also write every sample and the summary here ('-': stdout)")
    args = ap.parse_args(argv)
    if args.runs < 1:
        ap.error("--runs must be at least 1")

    # SIGTERM (a CI job cancelled, `timeout`) must still tear the lab down
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    t_all = time.monotonic()
    ensure_event_loop()  # before the first libvirt connection, so ours get events
    lab = Lab()
    events: JobEvents | None = None
    try:
        log("bringing the lab up ...")
        lab.up()
        lab.ensure_guest(on="hostA")
        log(f"lab up: {lab.timings} (domain type {lab.domain_type})")
        startup = virsh_startup_s(lab)
        # one untimed round trip: both QEMUs and both daemons' migration paths warm
        lab.migrate_raw("hostA", "hostB")
        lab.migrate_raw("hostB", "hostA")
        events = JobEvents(lab)
        samples = measure(lab, args.runs, events)
    except (LabError, AssertionError, libvirt.libvirtError, subprocess.TimeoutExpired) as exc:
        log(f"benchmark failed: {type(exc).__name__}: {exc}")
        return 1
    finally:
        if events is not None:
            events.close()
        problems = lab.down()
        if problems:
            log(f"lab teardown left: {problems}")
    print(table(samples, startup))
    print(
        f"total {time.monotonic() - t_all:.0f} s, {args.runs} run(s) per method and direction, guest {lab.domain_type}"
    )
    if args.json:
        out = {
            "samples": [asdict(s) | {"direction": s.direction} for s in samples],
            "summary": [summarize(samples, m, d) for d in ("A->B", "B->A", None) for m in ("virsh", "poolctl")],
            "virsh_startup_s": startup,
            "interval_s": INTERVAL,
        }
        text = json.dumps(out, indent=2)
        if args.json == "-":
            print(text)
        else:
            Path(args.json).write_text(text + "\n")
    return 1 if any(s.error for s in samples) else 0


if __name__ == "__main__":
    raise SystemExit(main())
