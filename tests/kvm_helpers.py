"""Shared fixtures for the KVM backend tests: the demo pool on libvirt's test driver."""

from __future__ import annotations

import pytest

from poolctl.backends.kvm import KvmBackend
from poolctl.backends.kvm_demo import demo_config


@pytest.fixture
def demo(tmp_path):
    backend = KvmBackend(demo_config(tmp_path))
    backend.connect()
    yield backend
    backend.close()


def by_name(inv, name):
    for table in (inv.vms, inv.hosts, inv.srs, inv.networks):
        for obj in table:
            if obj.name == name:
                return obj
    raise AssertionError(f"{name} not in inventory")
