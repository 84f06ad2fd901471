"""The real ``poolctl`` command in the lab: a config file for the lab pool, run in the client netns.

Each command is its own process (``sys.executable -m poolctl``), as an admin would type it:
it connects to both hosts through their unix sockets (a path: reachable from any network
namespace) and pings the guests from the client namespace, where its sockets are opened.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import poolctl
from poolctl.config import load_config

from .lab import Lab

# the poolctl the tests import is the one the command runs (a worktree, a checkout under test)
POOLCTL_ROOT = Path(poolctl.__file__).resolve().parents[1]
POOL = "lab"


@dataclass(frozen=True)
class CliRun:
    args: tuple[str, ...]
    rc: int
    stdout: str
    stderr: str
    wall_s: float

    def __str__(self) -> str:  # what an assertion message shows
        return (
            f"`poolctl {' '.join(self.args)}` exited {self.rc} in {self.wall_s:.1f} s\n"
            f"--- stdout:\n{self.stdout}--- stderr:\n{self.stderr}"
        )

    def lines_with(self, *words: str) -> list[str]:
        """Output lines (stdout) holding every one of ``words``."""
        return [line for line in self.stdout.splitlines() if all(w in line for w in words)]


def toml_config(lab: Lab) -> str:
    """The lab pool as an admin's config.toml holds it (JSON strings are valid TOML strings)."""
    s = json.dumps
    uris = [lab.uris[h] for h in lab.hosts]
    peers = "".join(f"{s(lab.uris[h])} = {s(lab.peer_uris[h])}\n" for h in lab.hosts)
    return (
        "[migration]\nping_interval = 0.1\n\n"
        f'[[pool]]\nname = {s(POOL)}\nbackend = "kvm"\nuris = [{", ".join(map(s, uris))}]\n'
        f'migration = "p2p"\nshared_storage = [{s(lab.pool_name)}]\n\n'
        f"[pool.migration_uris]\n{peers}"
    )


class PoolctlCli:
    """``run(*args)``: ``poolctl --config <lab config> *args`` in the client netns, state in ``workdir``."""

    def __init__(self, lab: Lab, workdir: Path):
        self.lab = lab
        self.config = workdir / "config.toml"
        self.state_dir = workdir / "state"  # the audit log and the KVM hosts' disabled flags
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.config.write_text(toml_config(lab))
        load_config(self.config)  # a config poolctl would refuse must fail here, not in every command
        env = {k: v for k, v in os.environ.items() if k != "POOLCTL_CONFIG"}
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(POOLCTL_ROOT), env.get("PYTHONPATH")) if p)
        env["POOLCTL_STATE_DIR"] = str(self.state_dir)
        # nothing of the user's own config or state: only what this lab run wrote
        env["XDG_CONFIG_HOME"] = str(workdir / "xdg-config")
        env["XDG_STATE_HOME"] = str(workdir / "xdg-state")
        self.env = env

    def run(self, *args: str, timeout: float = 180) -> CliRun:
        argv = self.lab.client_argv([sys.executable, "-m", "poolctl", "--config", str(self.config), *args])
        t0 = time.monotonic()
        try:
            p = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=self.env, cwd=POOLCTL_ROOT)
        except subprocess.TimeoutExpired as exc:
            out = exc.stdout.decode() if isinstance(exc.stdout, bytes) else exc.stdout or ""
            raise AssertionError(f"`poolctl {' '.join(args)}` still running after {timeout} s\n{out}") from None
        return CliRun(tuple(args), p.returncode, p.stdout, p.stderr, time.monotonic() - t0)


@dataclass(frozen=True)
class MoveFigures:
    """One VM's ping figures from a summary line: evacuate's "... sent 31  lost 0  longest gap
    0.10 s" or migrate's "pings to 10.99.0.50: 31 sent, 0 lost, longest gap 0.10 s"."""

    sent: int
    lost: int
    gap_s: float | None


def _count(word: str, line: str) -> int | None:
    m = re.search(rf"\b{word}\s+(\d+)\b", line) or re.search(rf"\b(\d+)\s+{word}\b", line)
    return int(m.group(1)) if m else None


def move_figures(line: str) -> MoveFigures:
    sent, lost = _count("sent", line), _count("lost", line)
    gap = re.search(r"gap\W{0,3}(\d+(?:\.\d+)?)\s*s\b", line)
    assert sent is not None and lost is not None, f"no sent/lost counts in {line!r}"
    return MoveFigures(sent, lost, float(gap.group(1)) if gap else None)


def host_row(run: CliRun, host: str) -> str:
    """The table row of ``poolctl ls hosts`` naming ``host``."""
    rows = [line for line in run.stdout.splitlines() if re.search(rf"(?<![\w-]){re.escape(host)}(?![\w-])", line)]
    assert len(rows) == 1, f"expected one row for {host}:\n{run}"
    return rows[0]
