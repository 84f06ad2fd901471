"""Two guests on one host, seen by poolctl with their addresses, moved by the real CLI:
what an evacuation of hostA stands on (test_lab_evacuate.py)."""

from __future__ import annotations

import json

import pytest

from .drive import kvm_backend
from .labcli import POOL, move_figures

pytestmark = [pytest.mark.lab, pytest.mark.timeout(240)]


def test_two_guests_run_on_a_and_report_their_addresses(two_guests_on_a):
    lab = two_guests_on_a
    for name in lab.guest_names:
        assert lab.running_on(name) == ["hostA"], name
        assert lab.ping_ok(name), f"{name} does not answer from the client namespace"
    assert len(set(lab.guest_ips.values())) == len(lab.guest_names)
    with kvm_backend(lab) as backend:
        inv = backend.inventory()
        hosts = {h.ref: h.name for h in inv.hosts}
        vms = {v.name: v for v in inv.vms if v.name in lab.guest_names}
    print(f"\nboot figures: {lab.timings}")
    for name in lab.guest_names:
        # the evacuation pings each VM at its first address from the backend
        assert vms[name].ips[:1] == (lab.guest_ips[name],), f"{name}: {vms[name]}"
        assert hosts[vms[name].host] == "hostA"


def test_cli_lists_both_guests_with_addresses(two_guests_on_a, poolctl_cli):
    lab = two_guests_on_a
    run = poolctl_cli.run("ls", "vms", "--pool", POOL, "--json")
    assert run.rc == 0, run
    rows = {r["name"]: r for r in json.loads(run.stdout) if r["name"] in lab.guest_names}
    assert set(rows) == set(lab.guest_names), run
    for name, row in rows.items():
        assert row["ips"][:1] == [lab.guest_ips[name]], row
        assert "hostA" in json.dumps(row), row
    hosts = poolctl_cli.run("ls", "hosts", "--pool", POOL)
    assert hosts.rc == 0, hosts
    assert all(hosts.lines_with(h) for h in lab.hosts), hosts
    print(f"\npoolctl ls vms: {run.wall_s:.2f} s, ls hosts: {hosts.wall_s:.2f} s\n{hosts.stdout}")


def test_cli_migrates_one_of_two_guests_there_and_back(two_guests_on_a, poolctl_cli):
    lab = two_guests_on_a
    for dst in ("hostB", "hostA"):
        # --tune off: the uncapped move this test measures (the tuner's paced copy with the agent's
        # virtio-serial device is what broke guests under TCG, README "Guest crashes")
        run = poolctl_cli.run("migrate", "pingvm2", dst, "--pool", POOL, "--tune", "off")
        assert run.rc == 0, run
        lines = run.lines_with("sent", "lost")
        assert lines, f"no ping summary:\n{run}"
        fig = move_figures(lines[-1])
        print(f"\npoolctl migrate pingvm2 {dst}: {run.wall_s:.1f} s wall; {lines[-1].strip()}")
        assert lab.running_on("pingvm2") == [dst], run
        assert lab.running_on("pingvm") == ["hostA"], "the other guest must stay where it was"
        assert fig.sent > 0 and fig.lost <= 3, fig  # 0-3 lost of ~50 uncapped, as for one guest
        assert lab.ping_ok("pingvm2") and lab.ping_ok("pingvm")
