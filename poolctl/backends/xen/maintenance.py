"""A host's maintenance mode as XenCenter keeps it, so XenCenter, Xen Orchestra and poolctl agree.

XAPI has ``host.enabled`` (no VM starts on or moves to a disabled host) and nothing more; XenCenter
marks maintenance in the host's ``other_config``: ``MAINTENANCE_MODE = "true"`` and the UUIDs of the
VMs the evacuation moved, comma-separated, under ``MAINTENANCE_MODE_EVACUATED_VMS_MIGRATED`` (halted
and suspended ones under their own keys), which it offers to bring back on exit.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

MAINTENANCE_MODE = "MAINTENANCE_MODE"
EVACUATED_MIGRATED = "MAINTENANCE_MODE_EVACUATED_VMS_MIGRATED"
EVACUATED_HALTED = "MAINTENANCE_MODE_EVACUATED_VMS_HALTED"
EVACUATED_SUSPENDED = "MAINTENANCE_MODE_EVACUATED_VMS_SUSPENDED"
KEYS = (MAINTENANCE_MODE, EVACUATED_MIGRATED, EVACUATED_HALTED, EVACUATED_SUSPENDED)


def in_maintenance(other_config: Mapping[str, str] | None) -> bool:
    return str((other_config or {}).get(MAINTENANCE_MODE, "")).lower() == "true"


def evacuated(other_config: Mapping[str, str] | None) -> tuple[str, ...]:
    """The UUIDs of the VMs the last evacuation migrated away (XenCenter's list)."""
    text = str((other_config or {}).get(EVACUATED_MIGRATED, ""))
    return tuple(u for u in (p.strip() for p in text.split(",")) if u)


def disable(xapi: Any, host: str, *, maintenance: bool, moved: Sequence[str]) -> None:
    """``host.disable``; with ``maintenance``, XenCenter's keys too. The keys are written first, as
    XenCenter does: a host left disabled by a crash still says why."""
    if maintenance:
        _replace(xapi, host, EVACUATED_MIGRATED, ",".join(moved))
        _replace(xapi, host, MAINTENANCE_MODE, "true")
    xapi.host.disable(host)


def enable(xapi: Any, host: str) -> tuple[str, ...]:
    """``host.enable`` and XenCenter's keys gone; the UUIDs the evacuation had moved, for a restore."""
    moved = evacuated(xapi.host.get_other_config(host))
    xapi.host.enable(host)
    for key in KEYS:
        xapi.host.remove_from_other_config(host, key)
    return moved


def _replace(xapi: Any, host: str, key: str, value: str) -> None:
    xapi.host.remove_from_other_config(host, key)
    xapi.host.add_to_other_config(host, key, value)
