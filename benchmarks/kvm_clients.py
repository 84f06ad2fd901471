"""The clients the KVM scale benchmark times against one libvirt host, each a fresh process:
the floor (a bare Python process opening the host and listing its domains), ``virsh list
--all``, ``poolctl ls vms``, and the two TUIs in a 120x40 pty — poolctl and, when its path is
given, virtui-manager — timed to their first frame showing a domain name."""

from __future__ import annotations

import os
import re
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks.libvirt_link import Relay, peak_rss_mb
from benchmarks.ptyrun import PtyProgram

PAINT_TIMEOUT_S = 300.0
SETTLE_QUIET_S = 1.0  # nothing written this long: the screen is settled
SETTLE_TIMEOUT_S = 120.0
KEY_QUIET_S = 0.15  # the end of a key's frame: nothing more written for this long
KEY_TIMEOUT_S = 5.0
NAME = re.compile(rb"vm-\d{5}")
DOWN = b"\x1b[B"
ESC = b"\x1b"

FLOOR = "import sys, libvirt\nc = libvirt.open(sys.argv[1])\nprint(len([d.name() for d in c.listAllDomains(0)]))\n"


@dataclass
class Sample:
    client: str
    seconds: float  # wall time of the command; for a TUI, launch to its first frame with a name
    calls: int | None  # libvirt RPC calls the relay saw until then (None: in-process driver)
    rss_mb: float | None
    calls_total: int | None = None  # a TUI: until it settled (the reads after the paint too)
    keys_ms: dict[str, list[float]] = field(default_factory=dict)  # a TUI: key -> frame latencies
    note: str = ""


def poolctl_command() -> list[str]:
    script = Path(sys.executable).parent / "poolctl"
    return [str(script)] if script.exists() else [sys.executable, "-m", "poolctl"]


def write_poolctl_config(folder: Path, uri: str) -> Path:
    path = folder / "poolctl.toml"
    path.write_text(f'[[pool]]\nname = "bench"\nbackend = "kvm"\nuris = ["{uri}"]\n')
    os.chmod(path, 0o600)
    return path


def virtui_home(folder: Path, uri: str) -> Path:
    """A HOME for virtui-manager whose config lists the one host, connected at start."""
    home = folder / "virtui-home"
    conf = home / ".config" / "virtui-manager"
    conf.mkdir(parents=True, exist_ok=True)
    (conf / "config.yaml").write_text(
        f"servers:\n  - name: bench\n    uri: {uri}\n    autoconnect: true\nLOG_FILE_PATH: {home / 'vm_manager.log'}\n"
    )
    return home


def _counted(relay: Relay | None) -> int | None:
    return relay.calls if relay is not None else None


def measure_command(client: str, argv: list[str], relay: Relay | None, env: dict | None, expect: int) -> Sample:
    """A command to its exit, with its own peak RSS (wait4's rusage). ``expect``: the domains
    its output must name (it listed them, it did not fail fast)."""
    if relay is not None:
        relay.reset()
    t0 = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    chunks: list[bytes] = []
    errs: list[bytes] = []

    def drain(stream, into):
        while data := stream.read(65536):
            into.append(data)

    readers = [
        threading.Thread(target=drain, args=(proc.stdout, chunks), daemon=True),
        threading.Thread(target=drain, args=(proc.stderr, errs), daemon=True),
    ]
    for r in readers:
        r.start()
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    for r in readers:
        r.join(timeout=10)
    calls = _counted(relay)
    if proc.returncode != 0:
        raise RuntimeError(f"{client}: exit {proc.returncode}: {b''.join(errs).decode(errors='replace')[-400:]}")
    lines = b"".join(chunks).decode(errors="replace").splitlines()
    if client == "floor":
        listed = int(lines[0]) if lines else 0
    else:
        listed = sum(1 for line in lines if NAME.search(line.encode()))
    if listed < expect:
        raise RuntimeError(f"{client}: listed {listed} domains, expected {expect}")
    return Sample(client, seconds, calls, usage.ru_maxrss / 1024)


def floor(uri: str, relay: Relay | None, domains: int) -> Sample:
    return measure_command("floor", [sys.executable, "-c", FLOOR, uri], relay, None, domains)


def virsh(uri: str, relay: Relay | None, domains: int) -> Sample:
    return measure_command("virsh", ["virsh", "-c", uri, "list", "--all"], relay, None, domains)


BASELINE = " (baseline)"  # a client's name when it runs poolctl from the baseline's sources


def poolctl_ls(config: Path, relay: Relay | None, domains: int, source: Path | None = None) -> Sample:
    """``source``: the poolctl sources to run instead of this checkout's (the baseline)."""
    env = dict(os.environ, POOLCTL_CONFIG=str(config), **({"PYTHONPATH": str(source)} if source else {}))
    name = "poolctl ls vms" + (BASELINE if source else "")
    return measure_command(name, [*poolctl_command(), "ls", "vms"], relay, env, domains)


def _wait_name(prog: PtyProgram, t0: float, what: str) -> float:
    while not NAME.search(prog.recent_bytes()):
        if prog.proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {prog.proc.returncode}: {prog.recent_text()[-300:]!r}")
        if time.perf_counter() - t0 > PAINT_TIMEOUT_S:
            raise TimeoutError(f"{what} showed no domain name within {PAINT_TIMEOUT_S:.0f} s")
        time.sleep(0.002)
    return time.perf_counter() - t0


def key_ms(prog: PtyProgram, key: bytes) -> tuple[float, float] | None:
    """Key written to the first byte of the frame it caused, and to that burst's end (the last
    byte before ``KEY_QUIET_S`` of silence: later updates the key set off, e.g. the details
    pane); None when nothing was drawn."""
    c0 = prog.count()
    t0 = time.monotonic()
    prog.send(key)
    while prog.count() == c0:
        if time.monotonic() - t0 > KEY_TIMEOUT_S:
            return None
        time.sleep(0.0005)
    first = time.monotonic() - t0
    while time.monotonic() - prog.last_output < KEY_QUIET_S:
        time.sleep(0.005)
    return first * 1000, (prog.last_output - t0) * 1000


def measure_keys(prog: PtyProgram) -> dict[str, list[float]]:
    """Down x10 in the VM list, then a filter typed one key at a time: for each kind, the
    latencies to the first byte of the key's frame (``<kind>``) and to its burst's end
    (``<kind> settled``)."""
    got: dict[str, list[float]] = {}

    def press(kind: str, key: bytes) -> None:
        prog.wait_quiet(0.3, 10)
        if (ms := key_ms(prog, key)) is not None:
            got.setdefault(kind, []).append(ms[0])
            got.setdefault(f"{kind} settled", []).append(ms[1])

    prog.send(b"/")  # the filter takes the focus; Enter on it empty hands it to the list
    prog.wait_quiet(0.3, 10)
    prog.send(b"\r")
    for _ in range(10):
        press("down", DOWN)
    prog.wait_quiet(0.3, 10)
    prog.send(b"/")
    for ch in b"vm-0042":
        press("filter", bytes([ch]))
    return got


def tui(
    client: str, argv: list[str], relay: Relay | None, env: dict, *, keys: bool = False, settle: bool = True
) -> Sample:
    if relay is not None:
        relay.reset()
    t0 = time.perf_counter()
    prog = PtyProgram(argv, env=env)
    try:
        seconds = _wait_name(prog, t0, client)
        calls = _counted(relay)
        note = ""
        if settle and not prog.wait_quiet(SETTLE_QUIET_S, SETTLE_TIMEOUT_S):
            note = f"never quiet for {SETTLE_QUIET_S} s within {SETTLE_TIMEOUT_S:.0f} s"
        calls_total = _counted(relay)
        # Settled, before any key: the figure compared with the other TUI (not driven by keys)
        rss = peak_rss_mb(prog.proc.pid)
        got = measure_keys(prog) if keys else {}
        if keys and (after := peak_rss_mb(prog.proc.pid)) is not None:
            note = (note + "; " if note else "") + f"peak RSS after the keys {after:.0f} MB"
    finally:
        prog.close()
    return Sample(client, seconds, calls, rss, calls_total, got, note)


def poolctl_tui(config: Path, relay: Relay | None, *, keys: bool = False, source: Path | None = None) -> Sample:
    env = {"POOLCTL_CONFIG": str(config), **({"PYTHONPATH": str(source)} if source else {})}
    return tui("poolctl" + (BASELINE if source else ""), poolctl_command(), relay, env, keys=keys)


def virtui(path: str, home: Path, relay: Relay | None) -> Sample:
    return tui("virtui-manager", [path], relay, {"HOME": str(home), "XDG_CONFIG_HOME": str(home / ".config")})


def median(values: list[float]) -> float:
    return statistics.median(values)
