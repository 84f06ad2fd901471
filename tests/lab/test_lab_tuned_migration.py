"""``poolctl migrate`` with no tuning option (issue 14 item 5): the tuner's defaults on the lab.

An idle guest moved six times back and forth at 20 Hz probes, and a busy one (rewriting
``BUSY_MIB`` MiB a second) moved there and back; the figures, prediction next to measurement,
go to stdout (``-s``) and into tests/lab/README.md.
"""

from __future__ import annotations

import json
import re

import pytest

from .drive import GuestCrashed, redo_after_crash
from .labcli import POOL, CliRun, move_figures
from .labenv import LabError
from .labguest import BUSY_MIB

pytestmark = [pytest.mark.lab]

INTERVAL = "0.05"


class CliGuestCrashed(GuestCrashed):
    """``GuestCrashed`` after a ``poolctl migrate`` run: with that run and its audit entry."""

    def __init__(self, message: str, run: CliRun, entry: dict, oops: str):
        super().__init__(message, oops)
        self.run, self.entry = run, entry


def move(lab, cli, dst: str) -> tuple[CliRun, dict]:
    marks = lab.serial_marks()
    run = cli.run("migrate", lab.guest_name, dst, "--ping", lab.guest_ip, "--interval", INTERVAL, "--pool", POOL)
    print(f"\n$ poolctl migrate {lab.guest_name} {dst} --ping {lab.guest_ip} --interval {INTERVAL}\n{run.stdout}")
    assert run.rc == 0, run
    entries = [json.loads(x) for x in (cli.state_dir / "migrations.jsonl").read_text().splitlines()]
    try:
        # a guest whose kernel panicked is gone (panic=-1, on_crash destroy) or silent
        if lab.running_on() != [dst]:
            raise LabError(f"the guest runs on {lab.running_on()}, not on {dst} only")
        lab.wait_ping(5)
    except LabError:
        crash = lab.guest_crash(since=marks)
        raise CliGuestCrashed(
            "the guest stopped answering after the move: "
            + (f"its kernel crashed ({crash}): QEMU's TCG corrupted its memory (README)" if crash else "no oops logged")
            + f"\n{run}",
            run,
            entries[-1],
            crash,
        ) from None
    return run, entries[-1]


def row(run: CliRun, entry: dict) -> str:
    p, m = entry["predicted"], entry["measured"]
    fig = move_figures(run.lines_with("sent", "lost")[-1])
    return (
        f"{entry['source']}->{entry['destination']}: wall {run.wall_s:.1f} s, lost {fig.lost}/{fig.sent}, "
        f"gap {fig.gap_s:.2f} s, downtime {entry['downtime_ms']} ms | predicted {p.get('duration_s')} s "
        f"{p.get('passes')} passes pause {p.get('pause_ms')} ms lost {p.get('lost_probes')} | measured "
        f"{m.get('duration_s')} s {m.get('passes')} passes pause {m.get('pause_ms')} ms lost {m.get('lost_probes')}"
    )


def said(run: CliRun, name: str) -> str:
    lines = [line.strip() for line in run.stdout.splitlines() if re.match(rf"\s+{name} ", line)]
    assert lines, f"no {name} choice printed:\n{run}"
    return lines[0]


def move_or_reboot(lab, cli, dst: str, crashes: list[str], dirty_mib: int = 0) -> tuple[CliRun, dict]:
    """``move``, redone on a fresh guest if the guest crashed after it (``redo_after_crash``)."""
    src = "hostA" if dst == "hostB" else "hostB"
    return redo_after_crash(lab, lambda: move(lab, cli, dst), crashes, src, dirty_mib)


@pytest.mark.timeout(600)
def test_idle_guest_six_moves_at_20_hz(guest_on_a, poolctl_cli):
    lab = guest_on_a
    rows, lost, entries, crashes = [], 0, [], []
    for i in range(6):
        run, entry = move_or_reboot(lab, poolctl_cli, ("hostB", "hostA")[i % 2], crashes)
        rows.append(row(run, entry))
        entries.append(entry)
        fig = move_figures(run.lines_with("sent", "lost")[-1])
        lost += fig.lost
        # the tuner's words, before the move: each choice with its reason, the prediction
        assert said(run, "max-downtime").startswith("max-downtime 5 ms: a tenth of the 50 ms probe interval"), run
        assert "predicted" in run.stdout and "pre-copy passes" in run.stdout, run
        assert entry["tuning"] and entry["predicted"]["lost_probes"] is not None
        assert entry["measured"]["lost_probes"] == fig.lost
        # the pause fits between two probes: at most the one probe it overlaps
        assert fig.lost <= 1, f"move {i + 1}: {rows[-1]}\n{run}"
        assert entry["downtime_ms"] is not None and entry["downtime_ms"] < 100, rows[-1]
    print(
        "\n" + "\n".join(rows) + f"\nidle guest, 6 moves at 20 Hz: {lost} probes lost in total"
        f"; guest crashes after a move (redone): {len(crashes)}"
    )
    # The untuned lab lost 27 in six such moves (issue 14). The tuned outage (20-50 ms here)
    # still overlaps a 50 ms probe slot about half the time or more: see README, "lost
    # probes". Sessions measured 3, 3, 3, 4, 3, 5, 2 and 5 in six: not every move loses its probe
    # (the pause is shorter than the interval); the per-move bound above is the real guard.
    assert lost <= 5, "\n".join(rows)


@pytest.mark.timeout(420)
def test_busy_guest_moves_with_help_said(busy_guest_on_a, poolctl_cli):
    lab = busy_guest_on_a
    rows = []
    # The busy guest's kernel crashed after 3 of 8 moves in the benchmark, tuned or not (QEMU 7.2
    # TCG, README "Guest crashes"): a crash after a completed move is said, not redone.
    crashes: list[str] = []
    for dst in ("hostB",):
        try:
            run, entry = move(lab, poolctl_cli, dst)
        except CliGuestCrashed as crash:
            # The move itself completed (exit 0, the hypervisor's job done); the guest's kernel
            # then oopsed (QEMU 7.2 TCG corrupts busy guests' memory, README "Guest crashes"):
            # what this test checks — the tuner's choices, said, and the loss reported — stands.
            # A guest that went silent without an oops is poolctl's problem until shown otherwise.
            assert crash.oops, str(crash)
            crashes.append(crash.oops)
            run, entry = crash.run, crash.entry
        rows.append(row(run, entry) + f"\n  {said(run, 'auto-converge')}\n  {said(run, 'post-copy')}")
        head = next(line for line in run.stdout.splitlines() if "tuning auto: memory" in line)
        rate = re.search(r"dirty rate (\d+(?:\.\d+)?) MiB/s \(measured", head)
        assert rate and float(rate.group(1)) >= BUSY_MIB / 4, f"the busy guest's dirty rate not measured:\n{run}"
        assert said(run, "auto-converge").startswith("auto-converge on:"), run
        assert said(run, "post-copy").startswith("post-copy "), run
        fig = move_figures(run.lines_with("sent", "lost")[-1])
        assert fig.sent > 0 and entry["measured"]["lost_probes"] == fig.lost
        for note in entry["measured"].get("escalations", []):
            assert note in run.stdout, run
    print("\n" + "\n".join(rows) + (f"\nguest crashed after the move (QEMU TCG): {crashes}" if crashes else ""))
