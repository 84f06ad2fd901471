"""`poolctl host disable/enable` and `poolctl migrate VM… HOST` against the XAPI simulator."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from poolctl.sim.xapi import Simulator
from tests.cli.test_evacuate import guests, log_lines, resident, serve
from tests.support.cli import kvm_demo_env, run

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def lab(tmp_path) -> Iterator[tuple[Simulator, dict[str, str]]]:
    yield from serve(tmp_path, "lab", 1.0)


def test_disable_keeps_the_vms_and_refuses_new_ones_enable_takes_them_again(lab):
    sim, env = lab
    proc = run("host", "disable", "xcp-lab-2", env=env)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == [
        "xcp-lab-2 disabled: no VM starts on it or moves to it",
        "  its 4 running VM(s) stay; `poolctl evacuate xcp-lab-2` moves them away",
    ]
    lab2 = sim.host_ref("xcp-lab-2")
    assert sim.db.field("host", lab2, "enabled") is False and len(guests(sim, "xcp-lab-2")) == 4
    hosts = run("ls", "hosts", env=env).stdout
    assert any(ln.startswith("xcp-lab-2") and ln.split()[1] == "disabled" for ln in hosts.splitlines())
    refused = run("migrate", "web-01", "xcp-lab-2", env=env)
    assert refused.returncode == 5 and "xcp-lab-2 is disabled: no VM may start on it or move to it" in refused.stderr
    again = run("host", "disable", "xcp-lab-2", env=env)
    assert again.returncode == 0 and "(it was already disabled)" in again.stdout
    proc = run("host", "enable", "xcp-lab-2", "--pool", "lab", env=env)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "xcp-lab-2 enabled: VMs may start on it and move to it again\n"
    assert sim.db.field("host", lab2, "enabled") is True
    moved = run("migrate", "web-01", "xcp-lab-2", env=env, timeout=60)
    assert moved.returncode == 0, moved.stderr


def test_restore_with_nothing_on_record_says_so(lab):
    proc = run("host", "enable", "xcp-lab-3", "--restore", env=lab[1])
    assert proc.returncode == 0, proc.stderr
    assert "no evacuation of xcp-lab-3 is on record; nothing to bring back" in proc.stdout


def test_migrate_several_vms_like_mv(lab):
    sim, env = lab
    proc = run("migrate", "web-01", "web-02", "xcp-lab-2", "--batch", "2", env=env, timeout=90)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("Migrating 2 VMs (lab) to xcp-lab-2:\n")
    for vm in ("web-01", "web-02"):
        assert any(ln.startswith(f"{vm} → xcp-lab-2") and "  lost " in ln for ln in proc.stdout.splitlines())
        assert resident(sim, vm) == "xcp-lab-2"
    assert "2 of 2 VMs moved" in proc.stdout and "at most 2 at once" in proc.stdout
    kinds = [e.get("kind", "migration") for e in log_lines(env)]
    assert sorted(kinds) == ["bulk move", "migration", "migration"]


def test_migrate_several_refuses_all_when_one_cannot_go(lab):
    sim, env = lab
    proc = run("migrate", "web-01", "cache-01", "xcp-lab-2", env=env)
    assert proc.returncode == 5, proc.stderr
    assert "poolctl: 1 of 2 VMs cannot leave (cache-01); nothing was moved:" in proc.stderr
    assert resident(sim, "web-01") == "xcp-lab-1" and resident(sim, "cache-01") == "xcp-lab-1"
    ping = run("migrate", "web-01", "web-02", "xcp-lab-2", "--ping", "127.0.0.1", env=env)
    assert ping.returncode == 2 and "--ping names one VM's address" in ping.stderr


def test_help_lists_every_exit_code_from_the_one_table():
    from poolctl.cli.maint_args import EVACUATE_EPILOG, HOST_EPILOG
    from poolctl.errors import ExitCode

    for epilog in (EVACUATE_EPILOG, HOST_EPILOG):
        section = epilog.split("exit codes:\n")[1].split("\n\n")[0].splitlines()
        assert {ExitCode(int(line.split()[0])) for line in section} == set(ExitCode)
    for args in (("evacuate", "--help"), ("host", "enable", "--help"), ("host", "--help")):
        proc = run(*args)
        assert proc.returncode == 0 and "exit codes:" in proc.stdout, args
    assert "5    refused, nothing moved" in run("evacuate", "--help").stdout
    top = run("--help").stdout
    assert "evacuate" in top and "host" in top


def test_the_kvm_test_driver_pool_refuses_an_evacuation_but_keeps_host_marks(tmp_path):
    """libvirt's test driver cannot migrate: the plan says so per VM and nothing is disabled;
    disable/enable work on poolctl's own record, which `ls hosts` (another process) shows."""
    env = kvm_demo_env(tmp_path)
    proc = run("evacuate", "kvm-demo-b", env=env)
    assert proc.returncode == 5, proc.stderr
    assert "cannot leave (kvm-web-03, kvm-mon-01)" in proc.stderr
    assert "libvirt's test driver cannot migrate" in proc.stderr
    assert "kvm-demo-b was left as it is (not disabled)" in proc.stderr
    assert run("host", "disable", "kvm-demo-b", env=env).returncode == 0
    hosts = run("ls", "hosts", env=env).stdout
    assert any(ln.startswith("kvm-demo-b") and ln.split()[1] == "disabled" for ln in hosts.splitlines()), hosts
    many = run("migrate", "kvm-web-01", "kvm-web-02", "kvm-demo-b", env=env)
    assert many.returncode == 5 and "libvirt's test driver cannot migrate" in many.stderr
    enabled = run("host", "enable", "kvm-demo-b", env=env)
    assert enabled.returncode == 0 and "kvm-demo-b enabled" in enabled.stdout
    hosts = run("ls", "hosts", env=env).stdout
    assert any(ln.startswith("kvm-demo-b") and ln.split()[1] == "up" for ln in hosts.splitlines()), hosts
