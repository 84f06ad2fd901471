"""The lab's KVM hosts through a real OpenSSH server each (tests/support/sshd.py, listening in the
host's network namespace on its lab address): poolctl in the client namespace opens qemu+ssh://
URIs, reads the inventory, and live-migrates the guest there and back while pinging it.

Peer-to-peer migration needs the source daemon to reach the destination's: that control channel
stays on the lab's qemu+tcp:// (the pool's ``migration_uris``, libvirt's documented way to give the
daemon its own URI), since the daemons hold no ssh keys of their own; poolctl's connections go
through ssh only."""

from __future__ import annotations

from types import SimpleNamespace
from urllib.parse import parse_qs, urlsplit

import pytest

from poolctl.backends.kvm import KvmBackend
from poolctl.model import MigrationOptions, MigrationPhase
from tests.support.sshd import Sshd, wait_no_ssh_children

from .drive import INTERVAL, figures, pinging, refs, run_migration, settle, vm_host
from .lab import HOST_NAMES
from .labenv import HOSTS

pytestmark = [pytest.mark.lab]
SSH_PORT = 2222


@pytest.fixture
def ssh_hosts(guest_on_a, tmp_path):
    lab = guest_on_a
    servers: dict[str, Sshd] = {}
    try:
        for h in HOST_NAMES:
            socket = parse_qs(urlsplit(lab.uris[h]).query)["socket"][0]
            srv = Sshd(
                tmp_path / f"sshd-{h}",
                SimpleNamespace(socket=socket),
                address=HOSTS[h].ip,
                netns=lab.topo.netns[h],
                port=SSH_PORT,
            )
            srv.start()
            servers[h] = srv
        yield lab, servers
    finally:
        for srv in servers.values():
            srv.stop()


@pytest.mark.timeout(240)
def test_lab_over_ssh_lists_and_live_migrates_with_ping(ssh_hosts):
    lab, servers = ssh_hosts
    uris = {h: servers[h].uri(driver="qemu", path="/system") for h in HOST_NAMES}
    config = lab.pool_config(
        uris=tuple(uris[h] for h in HOST_NAMES), migration_uris={uris[h]: lab.peer_uris[h] for h in HOST_NAMES}
    )
    backend = KvmBackend(config)
    try:
        lab.in_client(backend.connect)  # ssh runs in the client namespace, as a user's would
        inv = backend.inventory()
        assert sorted(h.name for h in inv.hosts) == sorted(HOST_NAMES) and all(h.live for h in inv.hosts)
        for src, dst in (("hostA", "hostB"), ("hostB", "hostA")):
            r = refs(backend.inventory(), lab.guest_name)
            check = backend.check_migration(r.vm, r.hosts[dst])
            assert check.ok, f"check_migration {src} -> {dst}: {check.problems}"
            with pinging(lab) as pinger:
                settle(pinger, 1.0)
                handle = lab.in_client(lambda dst=dst, r=r: backend.migrate(r.vm, r.hosts[dst], MigrationOptions()))
                run = run_migration(handle, 90)
                settle(pinger, 1.5)
                stats = pinger.stop()
            print("\n" + figures(f"over ssh {src} -> {dst}", run, stats))
            assert run.result.outcome == "success", run.result.error
            assert run.updates[-1].phase == MigrationPhase.DONE
            assert vm_host(backend, lab.guest_name) == dst
            assert stats.current_gap_s == 0 and stats.lost <= 2 / INTERVAL, stats
    finally:
        backend.close()
    wait_no_ssh_children()
