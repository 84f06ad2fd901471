"""Bytes per second the real `poolctl` writes to a 120x40 pseudo-terminal: idle, while
scrolling the VM list, and while a migration (with its ping sparkline) runs.

The simulator runs as its own process; `poolctl` reads a config file pointing at it.
"""

from __future__ import annotations

import ipaddress
import os
import tempfile
import time
from pathlib import Path

from benchmarks import simproc
from benchmarks.common import Context, Figure, Results, Target, Unavailable
from benchmarks.ptyrun import PtyProgram

QUIET_S = 1.5  # no output this long after start = the first screen is painted
START_TIMEOUT_S = 90
SCROLL_RATE_HZ = 10
DOWN = b"\x1b[B"
MIGRATION_DIALOG_TIMEOUT_S = 5


def specs(ctx: Context) -> list[Figure]:
    w = f"{ctx.large.words}, 120x40"
    return [
        Figure("pty.idle", f"bytes/s to the terminal, idle ({w})", "B/s", Target("<", 50, "~0 (< 50 B/s)")),
        Figure("pty.scroll", f"bytes/s to the terminal, scrolling {SCROLL_RATE_HZ} rows/s ({w})", "B/s"),
        Figure("pty.migration", f"bytes/s to the terminal, migration + ping sparkline ({w})", "B/s",
               Target("<=", 2048, "<= 2 KB/s")),
        Figure("pty.app_rss", f"peak RSS of the real `poolctl` process after the runs ({w})", "MB"),
    ]


def write_config(url: str, folder: str) -> Path:
    path = Path(folder) / "config.toml"
    path.write_text(
        f'[[pool]]\nname = "bench"\nbackend = "xen"\nurl = "{url}"\n'
        f'username = "{simproc.USER}"\npassword = "{simproc.PASSWORD}"\n'
    )
    os.chmod(path, 0o600)
    return path


def measure(ctx: Context, out: Results) -> None:
    big = ctx.large
    with simproc.external(big) as sim, tempfile.TemporaryDirectory() as tmp:
        cfg = write_config(sim.url, tmp)
        prog = PtyProgram(simproc.poolctl_command(), env={"POOLCTL_CONFIG": str(cfg)})
        try:
            if not prog.wait_quiet(QUIET_S, START_TIMEOUT_S):
                out.set("pty.idle", prog.bytes_over(ctx.window_s),
                        note=f"never quiet for {QUIET_S} s within {START_TIMEOUT_S} s of start")
            else:
                out.set("pty.idle", prog.bytes_over(ctx.window_s), note=f"{ctx.window_s:.0f} s window")
            if "not wired" in prog.recent_text():
                raise Unavailable("the TUI not yet available: `poolctl` says it is not wired")
            out.set("pty.scroll", prog.bytes_over(ctx.window_s, lambda: prog.send(DOWN), 1 / SCROLL_RATE_HZ),
                    note=f"{ctx.window_s:.0f} s of down-arrow at {SCROLL_RATE_HZ}/s")
            prog.wait_quiet(QUIET_S, 30)
            measure_migration(ctx, out, prog, sim.url)
            out.set("pty.app_rss", simproc.read_status_kb(prog.proc.pid, "VmHWM") / 1024)
        finally:
            prog.close()


def loopback_running_vm(url: str) -> tuple[str, str] | None:
    """(name, ip) of a running VM whose address is loopback: the sparkline's pings must stay
    on this machine, so a VM with any other address is never migrated here."""
    session = simproc.login(url)
    try:
        metrics = session.xenapi.VM_guest_metrics.get_all_records()
        for rec in session.xenapi.VM.get_all_records().values():
            if rec["is_a_template"] or rec["is_control_domain"] or rec["power_state"] != "Running":
                continue
            nets = metrics.get(rec["guest_metrics"], {}).get("networks", {})
            for ip in nets.values():
                try:
                    if ipaddress.ip_address(ip).is_loopback:
                        return rec["name_label"], ip
                except ValueError:
                    continue
        return None
    finally:
        simproc.logout(session)


def measure_migration(ctx: Context, out: Results, prog: PtyProgram, url: str) -> None:
    vm = loopback_running_vm(url)
    if vm is None:
        out.unavailable("pty.migration", "no running VM with a loopback address to ping in the simulator")
        return
    name, _ip = vm
    # Select the VM through the list's filter, then `m` and Enter (the first usable host).
    prog.clear_recent()
    prog.send(b"/")
    time.sleep(0.3)
    prog.send(name.encode() + b"\r")
    time.sleep(0.5)
    prog.send(b"m")
    deadline = time.monotonic() + MIGRATION_DIALOG_TIMEOUT_S
    while "igrat" not in prog.recent_text():
        if time.monotonic() > deadline:
            out.unavailable("pty.migration", "not yet available: no migration dialog appeared after `m`")
            prog.send(b"\x1b\x1b")
            return
        time.sleep(0.05)
    time.sleep(0.5)
    prog.send(b"\r")
    time.sleep(0.5)
    out.set("pty.migration", prog.bytes_over(ctx.window_s),
            note=f"{ctx.window_s:.0f} s from 0.5 s after starting the move of {name!r}")
