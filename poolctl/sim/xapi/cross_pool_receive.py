"""The destination pool's side of a cross-pool move: the HTTP handlers xapi serves for it.

xapi_vm_migrate.ml's migrate_send, once the disks are mirrored, sends the VM's metadata with an
HTTP PUT to the destination master's ``/import_metadata`` (Import.metadata_handler: first with
``dry_run=true`` as the last check, then for real), and the memory to the destination host's
``/services/xenops/memory/<vm uuid>`` (xenopsd's receive_memory); both are authorised by the
session of host.migrate_receive's map. The simulator's export is JSON, not xapi's XVA (a tar
of ova.xml): what it carries is the VM record's plain fields, its disks (device and the VDI
already created on this pool, or for the dry run the SR it will be on) and its NICs (device,
MAC, network of this pool). The answer is XML-RPC's envelope as JSON: Status, Value or
ErrorDescription.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from . import devices, errors, lifecycle, ops
from .api_vm_copies import record_fields
from .build import Guest
from .db import NULL_REF
from .memory import vm_needs
from .schema import new_record, now

if TYPE_CHECKING:
    from .state import PoolState

IMPORT_PATH = "/import_metadata"
MEMORY_PATH = "/services/xenops/memory/"


def handle_put(pool: PoolState, path: str, query: dict[str, str], body: bytes) -> tuple[int, bytes]:
    """(HTTP status, body) of a PUT; 404 for a path xapi does not serve."""
    if path != IMPORT_PATH and not path.startswith(MEMORY_PATH):
        return 404, b"Not found\n"
    try:
        pool.sessions.check(query.get("session_id"))
        if path == IMPORT_PATH:
            value: object = import_metadata(pool, json.loads(body or b"{}"), query.get("dry_run") == "true")
        else:
            value = receive_memory(pool, path[len(MEMORY_PATH) :])
    except errors.XapiError as exc:
        return 200, json.dumps({"Status": "Failure", "ErrorDescription": exc.description}).encode()
    except (ValueError, KeyError, TypeError) as exc:
        failure = errors.internal_error(f"bad metadata: {exc}")
        return 200, json.dumps({"Status": "Failure", "ErrorDescription": failure.description}).encode()
    return 200, json.dumps({"Status": "Success", "Value": value}).encode()


def _check(pool: PoolState, meta: dict[str, Any], host: str) -> None:
    """Xapi_vm_helpers.assert_can_boot_here on the destination, in its order, for the VM the
    metadata describes; errors name the source VM (meta["ref"]) as xapi's importer does."""
    db = pool.db
    vm, rec = str(meta["ref"]), meta["vm"]
    if db.find("VM", lambda r: r["uuid"] == rec.get("uuid")):
        raise errors.XapiError("DUPLICATE_VM", rec.get("uuid"))
    h = db.get("host", host)
    metrics = db.tables["host_metrics"].get(h["metrics"])
    if metrics is None or not metrics["live"]:
        raise errors.XapiError("HOST_NOT_LIVE")
    if not h["enabled"]:
        raise errors.XapiError("HOST_DISABLED", host)
    for vbd in meta["vbds"]:
        sr = db.get("VDI", vbd["VDI"])["SR"] if vbd.get("VDI", NULL_REF) != NULL_REF else vbd.get("SR", NULL_REF)
        if sr != NULL_REF:
            db.get("SR", sr)
            if not ops.host_sees_sr(pool, host, sr):
                raise errors.vm_requires_sr(vm, sr)
    for vif in meta["vifs"]:
        db.get("network", vif["network"])
        if not ops.network_available(pool, vif["network"], host):
            raise errors.XapiError("VM_REQUIRES_NETWORK", vm, vif["network"])
    needed, available = vm_needs({**new_record("VM"), **_fields(rec)}), pool.memory.free(host)
    if needed > available:
        raise errors.host_not_enough_free_memory(needed, max(available, 0))


def _fields(rec: dict[str, Any]) -> dict[str, Any]:
    return record_fields("VM", {k: v for k, v in rec.items() if k != "uuid"}, "metadata")


def import_metadata(pool: PoolState, meta: dict[str, Any], dry_run: bool) -> str:
    """The VM of ``meta`` checked against meta["host"] (dry run: nothing made, "" returned), or
    created Halted with its disks and NICs, scheduled to be resident on that host: its ref. The
    VM keeps its uuid, as a migrated VM does. (Its memory is not reserved meanwhile: a failed
    move's cleanup is the source's VM.destroy, which knows nothing of a reservation.)"""
    db = pool.db
    host = str(meta["host"])
    with db.lock:
        _check(pool, meta, host)
        if dry_run:
            return ""
        fields = _fields(meta["vm"])
        metrics = db.create("VM_metrics", new_record("VM_metrics", install_time=now(), last_updated=now()))
        vm = db.create(
            "VM",
            new_record("VM", **{**fields, "uuid": meta["vm"]["uuid"], "power_state": "Halted", "metrics": metrics}),
        )
        for vbd in meta["vbds"]:
            devices.create_vbd(db, {**{k: v for k, v in vbd.items() if k != "SR"}, "VM": vm})
        for vif in meta["vifs"]:
            devices.create_vif(db, {**vif, "VM": vm})
        db.set("VM", vm, scheduled_to_be_resident_on=host)
        lifecycle.update_allowed(db, vm)
        guest = meta.get("guest")
        if isinstance(guest, dict):
            pool.guests[vm] = Guest(ip=guest.get("ip"), os=str(guest.get("os", "")))
        return vm


def receive_memory(pool: PoolState, uuid: str) -> str:
    """The memory has arrived: the imported VM runs on the host it was scheduled to."""
    db = pool.db
    with db.lock:
        vm = db.by_uuid("VM", uuid)
        host = db.get("VM", vm)["scheduled_to_be_resident_on"]
        if host == NULL_REF:
            raise errors.vm_bad_power_state(vm, ["Running"], db.get("VM", vm)["power_state"])
        ops.make_resident(pool, vm, host, "Running")
        return vm
