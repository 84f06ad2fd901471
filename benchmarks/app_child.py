"""Run in a fresh child process: load a pool (backend + store, or the whole TUI headless
until fully painted and complete) and print JSON: time to painted and to complete (from this
process's first line, imports included) and peak RSS, which is then poolctl's alone, not the
simulator's.

    python -m benchmarks.app_child --url URL --vms N --mode backend|tui
"""

from __future__ import annotations

import time

T0 = time.perf_counter()  # before any import: a user's launch pays for them too

import argparse  # noqa: E402
import asyncio  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402

from benchmarks import simproc  # noqa: E402
from benchmarks.common import Unavailable  # noqa: E402

CHILD_TIMEOUT_S = 300
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # so `-m benchmarks...` imports


def peak_kb() -> int:
    return simproc.read_status_kb(os.getpid(), "VmHWM")


def backend_and_store(url: str, vms: int) -> dict:
    from poolctl.backends.xen import XenBackend
    from poolctl.inventory import InventoryStore

    backend = XenBackend(simproc.pool_config(url))
    backend.connect()
    try:
        store = InventoryStore(backend.inventory())
        if len(store.vms) < vms:
            raise SystemExit(f"store holds {len(store.vms)} VMs, expected {vms}")
        return {"peak_kb": peak_kb(), "vms": len(store.vms)}
    finally:
        backend.close()


def tui(url: str, vms: int) -> dict:
    from benchmarks import tui_harness

    async def go() -> dict:
        async with tui_harness.launched(simproc.pool_config(url), vms, t0=T0) as (app, _pilot, took):
            # peak RSS once the store is complete, not at the (staged) first paint
            return {"peak_kb": peak_kb(), "vms": vms, "painted_s": took, "complete_s": app.complete_s}

    return asyncio.run(go())


def spawn(url: str, vms: int, mode: str) -> dict:
    """(In the parent) run this module once in a fresh interpreter; its JSON result."""
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.app_child", "--url", url, "--vms", str(vms), "--mode", mode],
        capture_output=True,
        text=True,
        timeout=CHILD_TIMEOUT_S,
        cwd=ROOT,
    )
    if proc.returncode != 0:
        tail = (proc.stderr.strip().splitlines() or ["no message"])[-1]
        if "not yet available" in tail:
            raise Unavailable(tail.split(": ", 1)[-1])
        raise RuntimeError(f"app child ({mode}) exited {proc.returncode}: {tail}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--url", required=True)
    p.add_argument("--vms", type=int, required=True)
    p.add_argument("--mode", choices=("backend", "tui"), required=True)
    args = p.parse_args()
    result = (backend_and_store if args.mode == "backend" else tui)(args.url, args.vms)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
