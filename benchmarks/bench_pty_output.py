"""Bytes per second the real `poolctl` writes to a 120x40 pseudo-terminal: idle, while
scrolling the VM list, and while a migration (with its ping sparkline) runs.

The simulator runs as its own process; `poolctl` reads a config file pointing at it.
The migration row is measured only while the simulator says the VM is migrating, and
only once a second XAPI client has seen the move start: otherwise it is "not available".
"""

from __future__ import annotations

import ipaddress
import os
import tempfile
import time
from pathlib import Path

from benchmarks import simproc
from benchmarks.common import Context, Figure, Results, Target
from benchmarks.ptyrun import PtyProgram, bytes_by_row

QUIET_S = 1.5  # no output this long = the screen is settled
START_TIMEOUT_S = 180
SCROLL_RATE_HZ = 10
DOWN = b"\x1b[B"
ENTER = b"\r"
MIGRATION_START_TIMEOUT_S = 60
CATCH_UP_TIMEOUT_S = 120
DIALOG_TIMEOUT_S = 15
DIALOG_TRIES = 3
MIGRATING = {"pool_migrate", "migrate_send"}


def specs(ctx: Context) -> list[Figure]:
    w = f"{ctx.large.words}, 120x40"
    return [
        Figure("pty.idle", f"bytes/s to the terminal, idle ({w})", "B/s", Target("<", 50, "~0 (< 50 B/s)")),
        Figure("pty.scroll", f"bytes/s to the terminal, scrolling {SCROLL_RATE_HZ} rows/s ({w})", "B/s"),
        Figure(
            "pty.migration",
            f"bytes/s to the terminal, migration + ping sparkline ({w})",
            "B/s",
            Target("<=", 2048, "<= 2 KB/s"),
        ),
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
    # The move must outlast the window so the whole window is "during a migration".
    extra = ("--migration-seconds", f"{ctx.window_s + 3:.0f}")
    with simproc.external(big, extra) as sim, tempfile.TemporaryDirectory() as tmp:
        cfg = write_config(sim.url, tmp)
        prog = PtyProgram(simproc.poolctl_command(), env={"POOLCTL_CONFIG": str(cfg)})
        try:
            # The screen is static while "connecting…" too: wait for the list's first row.
            wait_for_text(prog, first_vm_name(sim.url), START_TIMEOUT_S, "the VM list's first row")
            quiet = prog.wait_quiet(QUIET_S, START_TIMEOUT_S)
            out.set(
                "pty.idle",
                prog.bytes_over(ctx.window_s),
                note=f"{ctx.window_s:.0f} s window once the list was painted"
                + ("" if quiet else f"; never quiet for {QUIET_S} s within {START_TIMEOUT_S} s"),
            )
            # `/` then Enter on an empty filter puts the focus on the VM list.
            prog.send(b"/")
            time.sleep(0.3)
            prog.send(ENTER)
            prog.wait_quiet(QUIET_S, 30)
            measure_scroll(ctx, out, prog)
            measure_migration(ctx, out, prog, sim.url)
            out.set("pty.app_rss", simproc.read_status_kb(prog.proc.pid, "VmHWM") / 1024)
        finally:
            prog.close()


def first_vm_name(url: str) -> str:
    """The name on the VM list's first row (the list sorts by name)."""
    session = simproc.login(url)
    try:
        recs = session.xenapi.VM.get_all_records().values()
        return min(
            (r["name_label"] for r in recs if not r["is_a_template"] and not r["is_control_domain"]),
            key=lambda n: (n.casefold(), n),
        )
    finally:
        simproc.logout(session)


def wait_for_text(prog: PtyProgram, text: str, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while text not in prog.recent_text():
        if prog.proc.poll() is not None:
            raise RuntimeError(f"`poolctl` exited with {prog.proc.returncode} before showing {what}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"`poolctl` did not show {what} ({text!r}) within {timeout_s:.0f} s")
        time.sleep(0.05)


def measure_scroll(ctx: Context, out: Results, prog: PtyProgram) -> None:
    c0 = prog.count()
    keys = 0

    def press() -> None:
        nonlocal keys
        prog.send(DOWN)
        keys += 1

    rate = prog.bytes_over(ctx.window_s, press, 1 / SCROLL_RATE_HZ)
    t_end = time.monotonic()
    caught_up = prog.wait_quiet(QUIET_S, CATCH_UP_TIMEOUT_S)
    lag = max(0.0, prog.last_output - t_end)
    per_key = (prog.count() - c0) / max(1, keys)
    out.set(
        "pty.scroll",
        rate,
        note=f"{ctx.window_s:.0f} s of down-arrow at {SCROLL_RATE_HZ}/s in the VM list; "
        f"{per_key:,.0f} B per key; last output {lag:.1f} s after the last key"
        + ("" if caught_up else f" (still drawing after {CATCH_UP_TIMEOUT_S} s)"),
    )


def migrate_binding() -> str | None:
    """The TUI's migrate key, when it has one (its bindings are the source of truth)."""
    try:
        from poolctl.tui.app import PoolctlApp
    except ImportError:
        return None
    for b in PoolctlApp.all_bindings():
        if "migrat" in (b.action or "") or "migrat" in (b.id or ""):
            return b.key
    return None


def loopback_running_vm(session) -> tuple[str, str] | None:
    """(ref, name) of a running VM whose address is loopback: the sparkline's pings must stay
    on this machine, so a VM with any other address is never migrated here."""
    metrics = session.xenapi.VM_guest_metrics.get_all_records()
    for ref, rec in sorted(session.xenapi.VM.get_all_records().items(), key=lambda kv: kv[1]["name_label"]):
        if rec["is_a_template"] or rec["is_control_domain"] or rec["power_state"] != "Running":
            continue
        ips = metrics.get(rec["guest_metrics"], {}).get("networks", {}).values()
        addrs = []
        for ip in ips:
            try:
                addrs.append(ipaddress.ip_address(ip))
            except ValueError:
                continue
        if addrs and all(a.is_loopback for a in addrs):
            return ref, rec["name_label"]
    return None


def migrating(session, ref: str) -> bool:
    return bool(MIGRATING & set(session.xenapi.VM.get_current_operations(ref).values()))


def open_dialog(prog: PtyProgram, key: str, name: str) -> tuple[float, int]:
    """Select ``name`` through the filter, press the migrate key and wait for the dialog's
    title; (when the key was pressed, on which try). Every failed try is kept in the note."""
    seen = []
    for attempt in range(1, DIALOG_TRIES + 1):
        prog.send(b"/")
        time.sleep(0.3)
        prog.send(name.encode() + ENTER)
        prog.wait_quiet(QUIET_S, CATCH_UP_TIMEOUT_S)
        prog.clear_recent()
        prog.send(key.encode())
        t_key = time.monotonic()
        while time.monotonic() - t_key < DIALOG_TIMEOUT_S:
            text = prog.recent_text()
            if f"Migrate {name}" in text:
                return t_key, attempt
            time.sleep(0.05)
        seen.append("'No VM selected'" if "No VM selected" in text else "nothing")
        prog.send(b"\x1b")
        prog.wait_quiet(QUIET_S, 30)
    raise RuntimeError(
        f"no migration dialog after `{key}` on {name} in {DIALOG_TRIES} tries (the screen showed: {', '.join(seen)})"
    )


def measure_migration(ctx: Context, out: Results, prog: PtyProgram, url: str) -> None:
    key = migrate_binding()
    if key is None:
        out.unavailable("pty.migration", "not yet available: the TUI has no migrate binding")
        return
    session = simproc.login(url)
    try:
        vm = loopback_running_vm(session)
        if vm is None:
            out.unavailable("pty.migration", "the simulator has no running VM with only loopback addresses")
            return
        ref, name = vm
        t_key, tries = open_dialog(prog, key, name)
        # Enter is refused while the dialog's pre-checks are still running ("Still checking"),
        # so it is repeated once a second until the simulator sees the move start.
        deadline = t_key + MIGRATION_START_TIMEOUT_S
        next_enter = t_key + 0.5
        while not migrating(session, ref):
            now = time.monotonic()
            if now > deadline:
                raise RuntimeError(
                    f"no migration of {name} started within {MIGRATION_START_TIMEOUT_S} s of `{key}` then Enter"
                )
            if now >= next_enter:
                prog.send(ENTER)
                next_enter = now + 1.0
            time.sleep(0.05)
        started_after = time.monotonic() - t_key
        time.sleep(0.5)  # the panel's first paint is not the steady rate
        prog.clear_recent()
        start, t0 = prog.count(), time.monotonic()
        while time.monotonic() - t0 < ctx.window_s and migrating(session, ref):
            time.sleep(0.2)
        took = time.monotonic() - t0
        rows = bytes_by_row(prog.recent_bytes())
        total = max(1, sum(rows.values()))
        top = ", ".join(f"row {r} {100 * n / total:.0f}%" for r, n in rows.most_common(4))
        out.set(
            "pty.migration",
            (prog.count() - start) / took,
            note=f"{took:.1f} s while {name} was migrating (simulator says so); the move started "
            f"{started_after:.1f} s after `{key}` (dialog pre-checks)"
            + (f"; the dialog opened on try {tries} of {DIALOG_TRIES}" if tries > 1 else "")
            + f"; bytes by screen row: {top}",
        )
    finally:
        simproc.logout(session)
