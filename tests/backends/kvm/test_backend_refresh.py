"""The KVM backend's periodic refresh uses bulk libvirt calls only (getAllDomainStats, which
names every domain, and listAllDomains for the managed-save ones), never one call per domain:
a pool of hundreds of VMs refreshed every few seconds must stay a handful of round trips per
host.

The real test-driver connections are wrapped in a recorder that passes every call
through and notes its name, and wraps the domains it hands out, so a call on one
domain shows up too."""

from __future__ import annotations

import time
from collections import Counter

import libvirt

# Answered from the handle libvirt already holds: no round trip to the daemon.
LOCAL = {"UUIDString", "UUID", "name"}


class Recording:
    def __init__(self, target, log: list, who: str):
        self._target, self._log, self._who = target, log, who

    def __getattr__(self, name):
        attr = getattr(self._target, name)
        if not callable(attr):
            return attr

        def call(*args, **kwargs):
            self._log.append((self._who, name))
            return self._wrap(attr(*map(_unwrap, args), **kwargs))

        return call

    def _wrap(self, value):
        if isinstance(value, libvirt.virDomain):
            return Recording(value, self._log, "domain")
        if isinstance(value, (list, tuple)):
            return type(value)(self._wrap(v) for v in value)
        return value


def _unwrap(value):
    if isinstance(value, Recording):
        return value._target
    if isinstance(value, list):
        return [_unwrap(v) for v in value]
    return value


def test_the_periodic_refresh_makes_no_per_domain_calls(demo):
    demo.inventory()  # every domain read once: what the watcher does next is the refresh alone
    log: list = []
    for hc in demo.hosts:
        hc.conn = Recording(hc.conn, log, hc.name)
    demo.REFRESH_S = 0.05
    demo.watch(lambda _c: None, lambda _s: None)
    deadline = time.monotonic() + 10
    while Counter(log)[("kvm-demo-b", "getAllDomainStats")] < 3:
        assert time.monotonic() < deadline, f"fewer than 3 refreshes in 10 s: {Counter(log)}"
        time.sleep(0.02)
    demo.close()  # stops the watcher after a whole tick: every host refreshed equally often
    calls = [c for c in log if c[1] not in ("domainEventDeregisterAny", "unregisterCloseCallback", "close")]

    per_domain = [c for c in calls if c[0] == "domain" and c[1] not in LOCAL]
    assert not per_domain, f"a refresh called libvirt once per domain: {Counter(per_domain)}"
    per_host = {h: Counter(m for who, m in calls if who == h) for h in ("kvm-demo-a", "kvm-demo-b")}
    a, b = demo.hosts
    assert len(a.domains) == 6 and len(b.domains) == 4
    ticks = {h: c["getAllDomainStats"] for h, c in per_host.items()}
    assert min(ticks.values()) >= 3 and ticks["kvm-demo-a"] == ticks["kvm-demo-b"]
    # Host A defines more domains than host B, and both pay the same calls per refresh.
    assert per_host["kvm-demo-a"] == per_host["kvm-demo-b"]
    # the stats list the domains: listAllDomains only for the managed-save images
    assert per_host["kvm-demo-a"]["listAllDomains"] == ticks["kvm-demo-a"]
