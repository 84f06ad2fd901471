"""The source pool's side of a cross-pool move (VM.assert_can_migrate and VM.migrate_send with
a ``dest`` from another pool's host.migrate_receive), after xapi_vm_migrate.ml.

As xapi's remote_of_dest does, the map's ``master`` URL and ``session_id`` reach the destination
pool's XAPI: the simulator calls it over XML-RPC (VDI.create for the mirrors, VM.destroy and
VDI.destroy to clean up) and its HTTP handlers (cross_pool_receive.py: /import_metadata, dry run
then for real, and the memory at the xenops URL). Order, as migrate_send' does it: the checks
(every VDI and VIF mapped, the maps' SRs and networks the destination's, the destination's own
verdict by a dry-run import), the disks (cancellable), the metadata, the memory (cancellable
until stop-and-copy), then the VM, its VBDs, VIFs and moved VDIs are destroyed on the source.
A failure or cancel destroys what was made on the destination; the VM runs on where it was.

The URLs carry the port the destination is served on (xapi's are on 80/443): two simulators on
one machine share loopback's port space. The session id never appears in an error.
"""

from __future__ import annotations

import json
import ssl
import time
import urllib.error
import urllib.request
import xmlrpc.client
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from . import devices, errors, ops
from .cross_pool_receive import IMPORT_PATH, MEMORY_PATH
from .db import NULL_REF
from .migrate import COPY_END

if TYPE_CHECKING:
    from .state import PoolState

MIB = 1024 * 1024
TIMEOUT_S = 30.0
# what the metadata carries of a VM record: plain values; refs of this pool mean nothing there
_NOT_SENT = {"allowed_operations", "current_operations", "power_state", "domid", "memory_target"}
_VBD_SENT = ("device", "userdevice", "bootable", "mode", "type", "unpluggable", "empty")
_VIF_SENT = ("device", "MAC", "MTU", "locking_mode", "other_config")


def _is_ref(v: object) -> bool:
    return isinstance(v, str) and v.startswith("OpaqueRef:")


def _plain(v: object) -> bool:
    if isinstance(v, list):
        return not any(_is_ref(x) for x in v)
    return isinstance(v, (str, int, float, bool, dict)) and not _is_ref(v)


class Remote:
    """The destination pool as xapi's ``remote`` record has it: an rpc to its master with the
    map's session, and the xenops URL of the destination host."""

    def __init__(self, dest: dict[str, Any]) -> None:
        self.master = str(dest["master"])
        self.xenops = str(dest["xenops"])
        self.host = str(dest["host"])
        self._session = str(dest["session_id"])
        parts = urlsplit(self.master)
        self.where = parts.netloc  # for errors: never the URLs with their session_id
        self._ssl = ssl._create_unverified_context() if parts.scheme == "https" else None

    def _unreachable(self, exc: BaseException) -> errors.XapiError:
        reason = getattr(exc, "strerror", None) or getattr(exc, "reason", None) or type(exc).__name__
        return errors.internal_error(f"cannot reach the destination pool's master {self.where}: {reason}")

    def call(self, method: str, *args: object) -> Any:
        proxy = xmlrpc.client.ServerProxy(self.master, allow_none=True, context=self._ssl)
        try:
            reply = getattr(proxy, method)(self._session, *args)
        except (OSError, xmlrpc.client.ProtocolError) as exc:
            raise self._unreachable(exc) from None
        return self._value(reply)

    @staticmethod
    def _value(reply: Any) -> Any:
        if not isinstance(reply, dict) or reply.get("Status") != "Success":
            desc = reply.get("ErrorDescription") if isinstance(reply, dict) else None
            if isinstance(desc, list) and desc:
                raise errors.XapiError(str(desc[0]), *desc[1:])
            raise errors.internal_error("the destination pool sent no answer")
        return reply.get("Value")

    def put(self, base: str, path: str, query: dict[str, str], body: dict[str, Any]) -> Any:
        parts = urlsplit(base)
        q = "&".join(f"{k}={v}" for k, v in {**query, "session_id": self._session}.items())
        url = f"{parts.scheme}://{parts.netloc}{path}?{q}"
        req = urllib.request.Request(url, data=json.dumps(body).encode(), method="PUT")
        try:
            with urllib.request.urlopen(req, timeout=TIMEOUT_S, context=self._ssl) as resp:
                return self._value(json.loads(resp.read()))
        except urllib.error.HTTPError as exc:
            raise errors.internal_error(f"the destination pool answered HTTP {exc.code} to {path}") from None
        except (OSError, ValueError) as exc:
            raise self._unreachable(exc) from None


@dataclass
class Plan:
    """What assert_can_migrate found: the disks (VBD, VDI, destination SR), the NICs (VIF,
    destination network), and the metadata sent to the destination."""

    disks: list[tuple[str, str, str]] = field(default_factory=list)
    vifs: list[tuple[str, str]] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)


def _vif_network(pool: PoolState, vif: str, vif_map: dict[str, str]) -> str:
    """infer_vif_map: a VIF is mapped by its ref, or by its network's (a map of networks)."""
    if vif in vif_map:
        return vif_map[vif]
    net = pool.db.get("VIF", vif)["network"]
    if net in vif_map:
        return vif_map[net]
    raise errors.XapiError("VIF_NOT_IN_MAP", vif)


def _plan(pool: PoolState, vm: str, vdi_map: dict[str, str], vif_map: dict[str, str], host: str) -> Plan:
    db = pool.db
    plan = Plan()
    with db.lock:
        rec = db.get("VM", vm)
        for vdi in vdi_map:
            db.get("VDI", vdi)
        vbds = []
        for vbd in rec["VBDs"]:
            b = db.get("VBD", vbd)
            sent = {k: b[k] for k in _VBD_SENT}
            if b["empty"] or b["type"] == "CD" or b["VDI"] == NULL_REF:
                continue  # vdi_filter: an empty or CD drive is not moved (nor sent: its ISO is this pool's)
            if b["VDI"] not in vdi_map:
                raise errors.XapiError("VDI_NOT_IN_MAP", b["VDI"])
            v = db.get("VDI", b["VDI"])
            if v["cbt_enabled"]:
                raise errors.XapiError("VDI_CBT_ENABLED", b["VDI"])
            if "key_hash" in v["sm_config"]:
                raise errors.XapiError("VDI_IS_ENCRYPTED", b["VDI"])
            plan.disks.append((vbd, b["VDI"], vdi_map[b["VDI"]]))
            vbds.append({**sent, "SR": vdi_map[b["VDI"]]})
        vifs = []
        for vif in rec["VIFs"]:
            net = _vif_network(pool, vif, vif_map)
            plan.vifs.append((vif, net))
            vifs.append({**{k: db.get("VIF", vif)[k] for k in _VIF_SENT}, "network": net})
        guest = pool.guests.get(vm)
        plan.meta = {
            "ref": vm,
            "host": host,
            "vm": {k: v for k, v in rec.items() if k not in _NOT_SENT and _plain(v)},
            "vbds": vbds,
            "vifs": vifs,
            "guest": {"ip": guest.ip, "os": guest.os} if guest else None,
        }
    return plan


def assert_can_migrate(
    pool: PoolState, vm: str, remote: Remote, vdi_map: dict[str, str], vif_map: dict[str, str]
) -> Plan:
    """Cross-pool checks: the maps (every VDI and VIF, the destination's SRs and networks, read
    from it), then the destination's verdict: a dry-run import of the metadata."""
    plan = _plan(pool, vm, vdi_map, vif_map, remote.host)
    for sr in sorted({sr for _, _, sr in plan.disks}):
        if remote.call("SR.get_content_type", sr) == "iso":
            raise errors.XapiError("SR_DOES_NOT_SUPPORT_MIGRATION", sr, "VDI_MIRROR_IN")
    for net in sorted({net for _, net in plan.vifs}):
        remote.call("network.get_uuid", net)  # HANDLE_INVALID for a network it lacks
    remote.put(remote.master, IMPORT_PATH, {"dry_run": "true", "live": "true"}, plan.meta)
    return plan


def _phase(pool: PoolState, task: str | None, vm: str, seconds: float, span: tuple[float, float], copy: bool) -> None:
    """Sleep ``seconds`` with the task's progress over ``span``; the memory ``copy`` turns not
    cancellable at stop-and-copy. The VM must keep running on the source meanwhile."""
    start, end = span
    tick = min(0.25, max(0.02, seconds / 40))
    began = time.monotonic()
    while True:
        fraction = (time.monotonic() - began) / seconds if seconds > 0 else 1.0
        if copy and fraction >= COPY_END:
            pool.tasks.set_cancellable(task, False)
        if fraction >= 1.0:
            return
        pool.tasks.set_progress(task, (start + (end - start) * fraction) * 0.99)
        pool.tasks.sleep(task, tick)
        state = pool.db.field("VM", vm, "power_state")
        if state != "Running":
            raise errors.vm_bad_power_state(vm, ["Running"], state)


def _used(pool: PoolState, vdis: list[str]) -> int:
    return sum(int(pool.db.get("VDI", v)["physical_utilisation"]) for v in vdis)


def migrate_send(
    pool: PoolState, task: str | None, vm: str, remote: Remote, vdi_map: dict[str, str], vif_map: dict[str, str]
) -> str:
    """The move; returns the VM's ref in the destination pool."""
    db = pool.db
    created: list[str] = []  # the destination's VDIs
    new_vm = ""
    with ops.operation(pool, task, vm, "migrate_send"):
        if db.get("VM", vm)["power_state"] != "Running":
            raise errors.vm_bad_power_state(vm, ["Running"], db.get("VM", vm)["power_state"])
        plan = assert_can_migrate(pool, vm, remote, vdi_map, vif_map)
        pool.tasks.set_cancellable(task, True)
        rate = pool.storage_mib_s * MIB
        disks_s = _used(pool, [v for _, v, _ in plan.disks]) / rate if rate > 0 else 0.0
        memory_s = max(float(pool.migration_seconds), 0.0)
        share = disks_s / (disks_s + memory_s) if disks_s + memory_s > 0 else 0.0
        try:
            new_vdis: dict[str, str] = {}
            for _, vdi, sr in plan.disks:  # Storage_migrate.start: the mirror's VDI on the destination
                v = db.get("VDI", vdi)
                args = {k: v[k] for k in ("name_label", "name_description", "type", "sharable", "read_only")}
                args.update(SR=sr, virtual_size=str(v["virtual_size"]), other_config=dict(v["other_config"]))
                new_vdis[vdi] = remote.call("VDI.create", args)
                created.append(new_vdis[vdi])
            _phase(pool, task, vm, disks_s, (0.0, share), copy=False)
            meta = dict(plan.meta)
            meta["vbds"] = [
                {**{k: b[k] for k in b if k != "SR"}, "VDI": new_vdis[vdi]}
                for b, (_, vdi, _) in zip(plan.meta["vbds"], plan.disks, strict=True)
            ]
            new_vm = remote.put(remote.master, IMPORT_PATH, {"dry_run": "false", "live": "true"}, meta)
            _phase(pool, task, vm, memory_s, (share, 1.0), copy=True)
            remote.put(remote.xenops, MEMORY_PATH + str(meta["vm"]["uuid"]), {}, {})
        except BaseException:
            _undo(remote, new_vm, created)
            raise
    _forget(pool, vm, [v for _, v, _ in plan.disks])
    return str(new_vm)


def _undo(remote: Remote, new_vm: str, vdis: list[str]) -> None:
    """What the move made on the destination goes (best effort, as xapi's cleanup)."""
    for call, arg in ([("VM.destroy", new_vm)] if new_vm else []) + [("VDI.destroy", v) for v in vdis]:
        try:
            remote.call(call, arg)
        except errors.XapiError:
            pass


def _forget(pool: PoolState, vm: str, vdis: list[str]) -> None:
    """The VM has left the pool: it, its VBDs, VIFs and moved disks are destroyed here."""
    db = pool.db
    with db.lock:
        ops.make_nonresident(pool, vm, "Halted")
        rec = db.get("VM", vm)
        for vbd in list(rec["VBDs"]):
            devices.destroy_vbd(db, vbd)
        for vif in list(rec["VIFs"]):
            devices.destroy_vif(db, vif)
        for vdi in vdis:
            if db.exists("VDI", vdi) and not db.get("VDI", vdi)["VBDs"]:
                devices.destroy_vdi(db, vdi)
        if db.exists("VM_metrics", rec["metrics"]):
            db.destroy("VM_metrics", rec["metrics"])
        db.destroy("VM", vm)
        pool.guests.pop(vm, None)
