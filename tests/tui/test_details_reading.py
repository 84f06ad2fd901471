"""Details while a staged load is still reading VMs' disks and nics: they say "reading…" rather
than "none" or a count that is too low, and the real values once the devices are in."""

from __future__ import annotations

import pytest

from poolctl.inventory import InventoryStore
from poolctl.model import VM, Change, Disk, Inventory, Network, Nic, Pool, PowerState, StorageRepository
from poolctl.tui.app import create_app
from poolctl.tui.widgets.details import network_rows, sr_rows, vm_rows
from tests.support.tui import loaded, screen_text, wait_for

pytestmark = pytest.mark.timeout(60)

READING = "reading…"
SR = StorageRepository(ref="sr1", name="iSCSI storage", type="lvmoiscsi", shared=True, size=100 << 30)
NET = Network(ref="net1", name="VM network", bridge="xenbr0")


def full_vm(ref: str, with_devices: bool = True) -> VM:
    devices = (
        dict(
            disks=(Disk(name=f"{ref} root", device="xvda", size=20 << 30, sr="sr1"),),
            nics=(Nic(device="0", mac="aa:bb:cc:00:00:01", network="net1"),),
        )
        if with_devices
        else {}
    )
    return VM(ref=ref, uuid=f"uuid-{ref}", name=ref, power_state=PowerState.RUNNING, **devices)


def staged(vm: VM) -> VM:
    return vm.model_copy(update={"disks": (), "nics": (), "devices_known": False})


def store_of(*vms: VM) -> InventoryStore:
    return InventoryStore(Inventory(pool=Pool(ref="p", name="lab", backend="xen"), srs=(SR,), networks=(NET,), vms=vms))


def rows(pairs) -> dict[str, str]:
    return {label: str(value) for label, value in pairs}


def test_vm_rows_say_reading_until_the_devices_are_known():
    store = store_of(staged(full_vm("web-01")))
    shown = rows(vm_rows(store.vms["web-01"], store))
    assert shown["Disks"] == READING and shown["Networks"] == READING
    assert shown["Power"] == "running"  # the rest is already there

    store.apply(Change(kind="modified", object_kind="vm", ref="web-01", obj=full_vm("web-01")))
    shown = rows(vm_rows(store.vms["web-01"], store))
    assert shown["Disks"] == "xvda web-01 root 20.0 GiB on iSCSI storage"
    assert shown["Networks"] == "0 aa:bb:cc:00:00:01 on VM network"


def test_a_vm_known_to_have_no_devices_says_none():
    bare = full_vm("empty", with_devices=False)
    store = store_of(bare)
    shown = rows(vm_rows(bare, store))
    assert shown["Disks"] == "none" and shown["Networks"] == "none"


def test_sr_and_network_counts_say_reading_while_any_vm_is_pending():
    # one VM already complete, one still being read: a count of 1 would be wrong, so no count
    store = store_of(full_vm("web-01"), staged(full_vm("web-02")))
    assert rows(sr_rows(SR, store))["VMs with disks"] == READING
    assert rows(network_rows(NET, store))["VMs on it"] == READING

    store.apply(Change(kind="modified", object_kind="vm", ref="web-02", obj=full_vm("web-02")))
    assert store.devices_pending is False
    assert rows(sr_rows(SR, store))["VMs with disks"] == "2"
    assert rows(network_rows(NET, store))["VMs on it"] == "2"


def test_counts_are_real_numbers_when_nothing_is_pending():
    store = store_of(full_vm("web-01"), full_vm("bare", with_devices=False))
    assert rows(sr_rows(SR, store))["VMs with disks"] == "1"
    assert rows(network_rows(NET, store))["VMs on it"] == "1"
    assert rows(sr_rows(SR, store_of()))["VMs with disks"] == "0"


async def test_loaded_pool_shows_a_vms_disk_not_reading(lab):
    app = create_app([lab.pool()])
    async with app.run_test(size=(120, 40)) as pilot:
        await loaded(pilot)  # waits for the staged rest: no VM's devices pending
        store = app.sessions["lab"].store
        assert all(v.devices_known for v in store.vms.values())
        await pilot.press("tab")  # tree -> VM list; details follow the list cursor
        vm_list = app.main_screen.vm_list
        while vm_list.cursor_vm.name != "web-01":
            await pilot.press("down")
        vm = vm_list.cursor_vm
        disk = next(d for d in vm.disks if not d.cdrom)
        await wait_for(pilot, lambda: f"{disk.device} {disk.name}" in screen_text(app), "details of web-01")
        text = screen_text(app)
        assert f"{disk.device} {disk.name} 20.0 GiB on iSCSI storage" in text
        assert "on VM network" in text
        assert READING not in text
