"""Running `poolctl` as a user does (a subprocess) and writing its config file: shared by the CLI tests."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def run(
    *args: str, env: dict[str, str] | None = None, timeout: float = 30, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if k != "POOLCTL_CONFIG"}
    return subprocess.run(
        [sys.executable, "-m", "poolctl", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**base, **(env or {})},
        stdin=subprocess.DEVNULL,
        cwd=cwd,
    )


def one_line_error(proc: subprocess.CompletedProcess[str]) -> str:
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("poolctl: ")
    return lines[0]


def config_file(tmp_path: Path, text: str, mode: int = 0o600) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text)
    path.chmod(mode)
    return path


def kvm_demo_env(tmp_path: Path) -> dict[str, str]:
    """The environment of a poolctl process whose config has one pool, "kvm": the libvirt demo
    hosts (test driver) under ``tmp_path/hosts``; its state directory ``tmp_path/state``."""
    from poolctl.sim.libvirt import demo_config

    config = demo_config(tmp_path / "hosts")
    uris = ", ".join(f'"{u}"' for u in config.uris)
    cfg = config_file(
        tmp_path, f'[[pool]]\nname = "kvm"\nbackend = "kvm"\nuris = [{uris}]\nshared_storage = ["isos"]\n'
    )
    return {"POOLCTL_CONFIG": str(cfg), "POOLCTL_STATE_DIR": str(tmp_path / "state")}
