"""One evacuation of a host at a time, across every poolctl process (CLI commands, the TUI).

An ``flock`` on a small file per (pool, host UUID) under ``<state dir>/locks/``: the kernel drops
it when the holder exits, however it exits, so a crashed evacuation never leaves the host locked.
The file names the holder (pid, command, start time) for the refusal's words.
"""

from __future__ import annotations

import fcntl
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from poolctl.audit import state_dir


class HostBusy(Exception):
    """Another poolctl process is evacuating (or restoring) this host now."""


def lock_path(pool: str, host_key: str, folder: Path | None = None) -> Path:
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", f"{pool}--{host_key}")[:200]
    return (folder if folder is not None else state_dir() / "locks") / f"evacuate-{safe}.lock"


@contextmanager
def host_lock(pool: str, host_key: str, host_name: str, doing: str, folder: Path | None = None) -> Iterator[Path]:
    """Hold the lock of ``host_key`` (its UUID) in ``pool`` while the block runs; ``HostBusy``
    naming the holder when another process has it. ``doing`` names this holder, for the next one."""
    path = lock_path(pool, host_key, folder)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 512, 0).decode(errors="replace").strip() or "another poolctl process"
            raise HostBusy(
                f"{host_name} (pool {pool!r}) is already being evacuated or restored: {holder}; "
                "wait for it to end, or stop it with Ctrl-C there"
            ) from None
        started = datetime.now(UTC).isoformat(timespec="seconds")
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{doing} (pid {os.getpid()}, since {started})".encode(), 0)
        try:
            yield path
        finally:
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
