"""``InventoryStore.devices_pending``: True while any VM's disks and nics are still being read
(a staged load, ``VM.devices_known`` False), kept up to date by ``apply``."""

from __future__ import annotations

from poolctl.inventory import InventoryStore
from poolctl.model import VM, Change, Disk, Host, Inventory, Nic, Pool, PowerState


def vm(ref: str, *, known: bool = True, **fields) -> VM:
    devices = (
        {
            "disks": (Disk(name=f"{ref} disk", device="xvda", size=1 << 30),),
            "nics": (Nic(device="0", mac="aa:bb:cc:00:00:01"),),
        }
        if known
        else {}
    )
    return VM(ref=ref, uuid=f"uuid-{ref}", name=ref, devices_known=known, **{**devices, **fields})


def store_of(*vms: VM) -> InventoryStore:
    return InventoryStore(
        Inventory(pool=Pool(ref="p", name="lab", backend="xen"), hosts=(Host(ref="h1", name="host-1"),), vms=vms)
    )


def modified(obj: VM) -> Change:
    return Change(kind="modified", object_kind="vm", ref=obj.ref, obj=obj)


def test_a_store_of_known_devices_is_not_pending():
    assert store_of(vm("a"), vm("b")).devices_pending is False
    assert store_of().devices_pending is False


def test_modified_vms_with_their_devices_clear_it_once_all_are_in():
    store = store_of(vm("a", known=False), vm("b", known=False))
    assert store.devices_pending is True
    assert store.apply(modified(vm("a"))) is not None
    assert store.devices_pending is True  # b is still being read
    store.apply(modified(vm("b")))
    assert store.devices_pending is False
    assert store.vms["b"].disks and store.vms["b"].devices_known


def test_a_change_that_still_lacks_devices_keeps_it():
    store = store_of(vm("a", known=False))
    store.apply(modified(vm("a", known=False, power_state=PowerState.RUNNING, host="h1")))
    assert store.devices_pending is True
    assert store.apply(modified(vm("a", known=False, power_state=PowerState.RUNNING, host="h1"))) is None
    assert store.devices_pending is True


def test_removing_the_last_pending_vm_clears_it():
    store = store_of(vm("a"), vm("b", known=False))
    assert store.apply(Change(kind="removed", object_kind="vm", ref="b")) is not None
    assert store.devices_pending is False
    assert "b" not in store.vms
    # removing a VM the store does not have changes nothing
    assert store.apply(Change(kind="removed", object_kind="vm", ref="b")) is None
    assert store.devices_pending is False


def test_an_added_vm_without_devices_sets_it_until_they_arrive():
    store = store_of(vm("a"))
    store.apply(Change(kind="added", object_kind="vm", ref="c", obj=vm("c", known=False)))
    assert store.devices_pending is True
    store.apply(modified(vm("c")))
    assert store.devices_pending is False


def test_a_known_vm_going_back_to_unknown_sets_it_again():
    store = store_of(vm("a"))
    store.apply(modified(vm("a", known=False)))
    assert store.devices_pending is True


def test_other_kinds_of_change_leave_it_alone():
    store = store_of(vm("a", known=False))
    store.apply(Change(kind="modified", object_kind="host", ref="h1", obj=Host(ref="h1", name="renamed")))
    store.apply(Change(kind="modified", object_kind="pool", ref="p", obj=Pool(ref="p", name="x", backend="xen")))
    assert store.devices_pending is True
    store.apply(Change(kind="removed", object_kind="host", ref="h1"))
    assert store.devices_pending is True
