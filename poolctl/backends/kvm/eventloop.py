"""libvirt's event loop, once per process, in a daemon thread.

DESIGN.md suggests libvirt's asyncio event implementation on the app's loop. We run
libvirt's default implementation in its own thread instead, because:
- backends must work without any UI loop (the CLI, tests, third-party callers);
- libvirt allows one event implementation per process, registered before the first
  connection: tying it to one asyncio loop would break a second loop (pytest, CLI);
- our callbacks only put items on a queue, so no UI code ever runs on this thread.
"""

from __future__ import annotations

import threading

import libvirt

_lock = threading.Lock()
_thread: threading.Thread | None = None


def _run() -> None:
    while True:
        # Never let one bad callback kill the loop: keepalives and close callbacks need it.
        try:
            libvirt.virEventRunDefaultImpl()
        except Exception:
            pass


def ensure_event_loop() -> None:
    """Register libvirt's default event implementation and start its thread (idempotent).

    Must run before the first ``libvirt.open`` so connections get keepalives and events.
    """
    global _thread
    with _lock:
        if _thread is not None:
            return
        libvirt.virEventRegisterDefaultImpl()
        _thread = threading.Thread(target=_run, name="libvirt-events", daemon=True)
        _thread.start()
