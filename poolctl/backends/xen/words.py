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


# The words of one XAPI error: (its parameters, padded with ""; the VM's name; the verb; a namer)
Words = Callable[[list[str], str, str, Namer], str]


def _busy(p: list[str], vm: str, verb: str, name_of: Namer) -> str:
    # XAPI sends [class, ref, operation, task] (older releases ["VM.<operation>", ref])
    op = p[2] if p[0] in ("VM", "host", "SR", "VDI", "pool") and p[2] else p[0]
    what = f" ({op})" if op else ""
    return f"{vm} is busy with another operation{what}; try again when it has finished"


def _host(p: list[str], name_of: Namer) -> str:
    return name_of(p[0]) if p[0] else "the host"


def _no_tools(p: list[str], vm: str, verb: str, name_of: Namer) -> str:
    return f"{vm} cannot {verb} cooperatively: its guest tools are missing (force off still works)"


def _needs_net(p: list[str], vm: str, verb: str, name_of: Namer) -> str:
    return f"{vm} needs network '{name_of(p[1])}', which the host is not connected to"


def _not_live(p: list[str], vm: str, verb: str, name_of: Namer) -> str:
    return f"{_host(p, name_of)} is not live (XAPI cannot reach it)"


def _no_ip(p: list[str], vm: str, verb: str, name_of: Namer) -> str:
    return f"the destination's migration interface {name_of(p[0])} has no IP address"


# XAPI error code -> its words; a code not here is quoted as XAPI sent it
REFUSAL_WORDS: dict[str, Words] = {
    "VM_BAD_POWER_STATE": lambda p, vm, verb, n: (
        f"{vm} is {p[2].lower() or 'in another state'}; it must be {_states(p[1])} to {verb}"
    ),
    "OTHER_OPERATION_IN_PROGRESS": _busy,
    "OPERATION_NOT_ALLOWED": lambda p, vm, verb, n: (
        f"XAPI does not allow {vm} to {verb} now: {p[0] or 'no reason given'}"
    ),
    "OPERATION_BLOCKED": lambda p, vm, verb, n: (
        f"{verb} is blocked for {vm} (blocked_operations: {p[1] or 'set by an administrator'})"
    ),
    "VM_LACKS_FEATURE_SHUTDOWN": _no_tools,
    "VM_LACKS_FEATURE_SUSPEND": _no_tools,
    "VM_LACKS_FEATURE": _no_tools,
    "VM_MISSING_PV_DRIVERS": _no_tools,
    "HOST_NOT_ENOUGH_FREE_MEMORY": lambda p, vm, verb, n: (
        f"not enough free memory: needs {size_words(p[0])}, host has {size_words(p[1])}"
    ),
    "VM_REQUIRES_SR": lambda p, vm, verb, n: f"{vm} needs SR '{n(p[1])}', which the host cannot see",
    "VM_REQUIRES_NET": _needs_net,
    "VM_REQUIRES_NETWORK": _needs_net,
    "HOST_DISABLED": lambda p, vm, verb, n: disabled_words(_host(p, n), None),
    "HOST_OFFLINE": _not_live,
    "HOST_NOT_LIVE": _not_live,
    # storage motion (xapi_vm_migrate.ml, storage_migrate.ml)
    "VDI_NOT_IN_MAP": lambda p, vm, verb, n: (
        f"disk '{n(p[0])}' of {vm} is not in the disk map: say which SR it goes to (--disk or --sr)"
    ),
    "SR_NOT_ATTACHED": lambda p, vm, verb, n: (
        f"the destination cannot see SR '{n(p[0])}' (it has no attached PBD there)"
    ),
    "SR_FULL": lambda p, vm, verb, n: (
        f"not enough space on the SR: the copy needs {size_words(p[0])}, it has {size_words(p[1])} free"
    ),
    "SR_DOES_NOT_SUPPORT_MIGRATION": lambda p, vm, verb, n: (
        f"SR '{n(p[0])}' cannot take part in storage motion (it lacks {p[1] or 'a needed feature'})"
    ),
    "VDI_CBT_ENABLED": lambda p, vm, verb, n: (
        f"disk '{n(p[0])}' has changed-block tracking on; XAPI does not move such a disk"
    ),
    "VDI_IS_ENCRYPTED": lambda p, vm, verb, n: f"disk '{n(p[0])}' is encrypted; XAPI does not move such a disk",
    "MIRROR_FAILED": lambda p, vm, verb, n: f"copying disk '{n(p[0])}' failed; {vm} stays where it was",
    "HOST_CANNOT_ATTACH_NETWORK": lambda p, vm, verb, n: (
        f"{n(p[0])} has no interface on network '{n(p[1])}' for the migration"
    ),
    "PIF_HAS_NO_NETWORK_CONFIGURATION": _no_ip,
    "INTERFACE_HAS_NO_IP": _no_ip,
    "VIF_NOT_IN_MAP": lambda p, vm, verb, n: (
        f"NIC '{n(p[0])}' of {vm} is not in the network map: the destination pool has no network for it"
    ),
    "DUPLICATE_VM": lambda p, vm, verb, n: f"the destination pool already has a VM with the uuid of {vm} ({p[0]})",
    "VDI_NEEDS_VM_FOR_MIGRATE": lambda p, vm, verb, n: (
        f"disk '{n(p[0])}' is attached to no VM; XAPI moves disks of VMs only"
    ),
    # the rest
    "VM_IS_TEMPLATE": lambda p, vm, verb, n: f"{vm} is a template; templates cannot {verb}",
    "TASK_CANCELLED": lambda p, vm, verb, n: f"{verb} of {vm} was cancelled",
    "HANDLE_INVALID": lambda p, vm, verb, n: f"{vm} no longer exists ({p[0] or 'object'} {p[1]})",
}


def refusal(code: str, params: tuple[str, ...], vm_name: str, verb: str, name_of: Namer) -> str:
    """One sentence for an XAPI error raised while trying to ``verb`` ``vm_name``."""
    words = REFUSAL_WORDS.get(code)
    if words is None:
        return f"{verb} {vm_name} failed: XAPI said {quote(code, params)}"
    return words(list(params) + ["", "", "", ""], vm_name, verb, name_of)


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
