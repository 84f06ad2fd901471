"""The KVM backend against libvirt's test driver: the demo pool's host A as a private
``test:///<abs path>.xml`` connection (no daemon; the test driver cannot migrate)."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator

from poolctl.backends.kvm import KvmBackend
from poolctl.sim.libvirt import demo_config
from tests.backends.contract.conftest import ContractTarget


def make_target() -> Iterator[ContractTarget]:
    with tempfile.TemporaryDirectory(prefix="poolctl-kvm-contract-") as tmp:
        backend = KvmBackend(demo_config(tmp, hosts=1))
        backend.connect()
        try:
            # The staged read: the contract's first_inventory tests then see VMs not read yet.
            inv = backend.first_inventory()
            refs = {v.name: v.ref for v in inv.vms}
            yield ContractTarget(
                backend=backend,
                running_vm=refs["kvm-web-01"],
                halted_vm=refs["kvm-build-01"],
                can_migrate=False,
            )
        finally:
            backend.close()
