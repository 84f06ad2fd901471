"""`poolctl simulate --also dr`: one process serves two pools, and they move a VM to each other
(the lab pool's migrate_send calls the dr pool's XAPI)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time

import pytest
import XenAPI

pytestmark = pytest.mark.timeout(90)


def test_two_pools_served_at_once_move_a_vm_between_them():
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "poolctl", "simulate", "--listen", "127.0.0.1:0", "--also", "dr",
         "--migration-seconds", "0.3", "--storage-mib-s", "100000"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        lines = []
        assert proc.stdout is not None
        while not lines or not lines[-1].startswith("Press Ctrl-C"):
            line = proc.stdout.readline()
            assert line, proc.stderr.read() if proc.stderr else "simulate ended"
            lines.append(line.strip())
        heads = [re.match(r"Simulated XAPI pool '(\w+)' serving (\S+)", line) for line in lines]
        served = {m.group(1): m.group(2) for m in heads if m}
        assert sorted(served) == ["dr", "lab"]
        apis = {}
        for name, url in served.items():
            s = XenAPI.Session(url)
            s.login_with_password("root", "demo", "2.21", "test")
            apis[name] = s.xenapi
        lab, dr = apis["lab"], apis["dr"]
        (host,) = dr.host.get_by_name_label("xcp-dr-1")
        (mgmt,) = dr.network.get_by_name_label("Pool-wide network associated with eth0")
        dest = dr.host.migrate_receive(host, mgmt, {})
        (vm,) = lab.VM.get_by_name_label("web-01")
        (sr,) = dr.SR.get_by_name_label("NFS storage")
        (net,) = dr.network.get_by_name_label("VM network")
        vdis = {lab.VBD.get_VDI(b): sr for b in lab.VM.get_VBDs(vm) if lab.VBD.get_type(b) == "Disk"}
        vifs = {v: net for v in lab.VM.get_VIFs(vm)}
        task = lab.Async.VM.migrate_send(vm, dest, True, vdis, vifs, {}, {})
        deadline = time.monotonic() + 30
        while lab.task.get_status(task) == "pending":
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert lab.task.get_status(task) == "success", lab.task.get_error_info(task)
        (moved,) = dr.VM.get_by_name_label("web-01")
        assert dr.VM.get_resident_on(moved) == host
        assert lab.VM.get_by_name_label("web-01") == []
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0
