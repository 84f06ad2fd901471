"""XAPI's refusals in a user's words, naming the VM, the host and the SR involved."""

from __future__ import annotations

from collections.abc import Callable

from poolctl.backends.base import BackendError, NotFound, OperationRefused
from poolctl.backends.xen.errors import REFUSALS, quote, size_words
from poolctl.model import PowerOp

# op -> (verb for messages, XAPI method, extra arguments after the VM ref)
POWER_CALLS: dict[PowerOp, tuple[str, str, tuple[bool, ...]]] = {
    PowerOp.START: ("start", "start", (False, False)),  # start_paused, force
    PowerOp.SHUTDOWN: ("shut down", "clean_shutdown", ()),
    PowerOp.REBOOT: ("reboot", "clean_reboot", ()),
    PowerOp.SUSPEND: ("suspend", "suspend", ()),
    PowerOp.RESUME: ("resume", "resume", (False, False)),  # start_paused, force
    PowerOp.FORCE_OFF: ("force off", "hard_shutdown", ()),
}

Namer = Callable[[str], str]  # ref -> display name (the ref itself when unknown)


def _states(text: str) -> str:
    parts = [p.strip().lower() for p in text.replace(";", ",").split(",") if p.strip()]
    return " or ".join(parts) if parts else "in another state"


def disabled_words(host_name: str, maintenance: bool | None) -> str:
    """A disabled destination (XAPI's HOST_DISABLED); ``maintenance`` None: not known which."""
    why = {True: "disabled (maintenance mode)", False: "disabled", None: "disabled"}
    return f"{host_name} is {why[maintenance]}: no VM may start on it or move to it"


def refusal(code: str, params: tuple[str, ...], vm_name: str, verb: str, name_of: Namer) -> str:
    """One sentence for an XAPI error raised while trying to ``verb`` ``vm_name``."""
    p = list(params) + ["", "", "", ""]
    if code == "VM_BAD_POWER_STATE":
        return f"{vm_name} is {p[2].lower() or 'in another state'}; it must be {_states(p[1])} to {verb}"
    if code == "OTHER_OPERATION_IN_PROGRESS":
        # XAPI sends [class, ref, operation, task] (older releases ["VM.<operation>", ref])
        op = p[2] if p[0] in ("VM", "host", "SR", "VDI", "pool") and p[2] else p[0]
        what = f" ({op})" if op else ""
        return f"{vm_name} is busy with another operation{what}; try again when it has finished"
    if code == "OPERATION_NOT_ALLOWED":
        return f"XAPI does not allow {vm_name} to {verb} now: {p[0] or 'no reason given'}"
    if code == "OPERATION_BLOCKED":
        return f"{verb} is blocked for {vm_name} (blocked_operations: {p[1] or 'set by an administrator'})"
    if code in ("VM_LACKS_FEATURE_SHUTDOWN", "VM_LACKS_FEATURE_SUSPEND", "VM_LACKS_FEATURE", "VM_MISSING_PV_DRIVERS"):
        return f"{vm_name} cannot {verb} cooperatively: its guest tools are missing (force off still works)"
    if code == "HOST_NOT_ENOUGH_FREE_MEMORY":
        return f"not enough free memory: needs {size_words(p[0])}, host has {size_words(p[1])}"
    if code == "VM_REQUIRES_SR":
        return f"{vm_name} needs SR '{name_of(p[1])}', which the host cannot see"
    if code in ("VM_REQUIRES_NET", "VM_REQUIRES_NETWORK"):
        return f"{vm_name} needs network '{name_of(p[1])}', which the host is not connected to"
    if code == "HOST_DISABLED":
        return disabled_words(name_of(p[0]) if p[0] else "the host", None)
    if code in ("HOST_OFFLINE", "HOST_NOT_LIVE"):
        return f"{name_of(p[0]) if p[0] else 'the host'} is not live (XAPI cannot reach it)"
    storage = _storage_words(code, p, vm_name, name_of)
    if storage:
        return storage
    if code == "VM_IS_TEMPLATE":
        return f"{vm_name} is a template; templates cannot {verb}"
    if code == "TASK_CANCELLED":
        return f"{verb} of {vm_name} was cancelled"
    if code == "HANDLE_INVALID":
        return f"{vm_name} no longer exists ({p[0] or 'object'} {p[1]})"
    return f"{verb} {vm_name} failed: XAPI said {quote(code, params)}"


def _storage_words(code: str, p: list[str], vm_name: str, name_of: Namer) -> str:
    """Storage motion's errors (xapi_vm_migrate.ml, storage_migrate.ml); empty for other codes."""
    if code == "VDI_NOT_IN_MAP":
        return f"disk '{name_of(p[0])}' of {vm_name} is not in the disk map: say which SR it goes to (--disk or --sr)"
    if code == "SR_NOT_ATTACHED":
        return f"the destination cannot see SR '{name_of(p[0])}' (it has no attached PBD there)"
    if code == "SR_FULL":
        return f"not enough space on the SR: the copy needs {size_words(p[0])}, it has {size_words(p[1])} free"
    if code == "SR_DOES_NOT_SUPPORT_MIGRATION":
        return f"SR '{name_of(p[0])}' cannot take part in storage motion (it lacks {p[1] or 'a needed feature'})"
    if code == "VDI_CBT_ENABLED":
        return f"disk '{name_of(p[0])}' has changed-block tracking on; XAPI does not move such a disk"
    if code == "VDI_IS_ENCRYPTED":
        return f"disk '{name_of(p[0])}' is encrypted; XAPI does not move such a disk"
    if code == "MIRROR_FAILED":
        return f"copying disk '{name_of(p[0])}' failed; {vm_name} stays where it was"
    if code == "HOST_CANNOT_ATTACH_NETWORK":
        return f"{name_of(p[0])} has no interface on network '{name_of(p[1])}' for the migration"
    if code in ("PIF_HAS_NO_NETWORK_CONFIGURATION", "INTERFACE_HAS_NO_IP"):
        return f"the destination's migration interface {name_of(p[0])} has no IP address"
    if code == "VIF_NOT_IN_MAP":
        return (
            f"NIC '{name_of(p[0])}' of {vm_name} is not in the network map: the destination pool has no network for it"
        )
    if code == "DUPLICATE_VM":
        return f"the destination pool already has a VM with the uuid of {vm_name} ({p[0]})"
    if code == "VDI_NEEDS_VM_FOR_MIGRATE":
        return f"disk '{name_of(p[0])}' is attached to no VM; XAPI moves disks of VMs only"
    return ""


def power_error(
    code: str, params: tuple[str, ...], vm_name: str, op: PowerOp, name_of: Namer, host: str
) -> BackendError:
    verb = POWER_CALLS[op][0]
    text = refusal(code, params, vm_name, verb, name_of)
    if code == "HANDLE_INVALID":
        return NotFound(text, code=code, params=params, host=host)
    cls = OperationRefused if code in REFUSALS else BackendError
    return cls(text, code=code, params=params, host=host)


def evacuation_blocker(code: str, params: tuple[str, ...], vm_name: str, name_of: Namer) -> str:
    """Why XAPI's own evacuation plan (``host.get_vms_which_prevent_evacuation``) leaves a VM
    behind. Its errors name the VM, not a destination: they are about every other host at once."""
    p = list(params) + ["", "", ""]
    if code == "HOST_NOT_ENOUGH_FREE_MEMORY":
        return f"XAPI: no other host has enough free memory for {vm_name}"
    if code == "NO_HOSTS_AVAILABLE":
        return f"XAPI: no other enabled, live host can run {vm_name}"
    if code == "VM_REQUIRES_SR":
        return f"XAPI: {vm_name} needs SR '{name_of(p[1])}', which no other host can see"
    if code in ("VM_REQUIRES_NET", "VM_REQUIRES_NETWORK"):
        return f"XAPI: {vm_name} needs network '{name_of(p[1])}', which no other host is connected to"
    return "XAPI: " + refusal(code, params, vm_name, "migrate", name_of)
