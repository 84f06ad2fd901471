"""The migration network (``MigrationOptions.network``), as the TUI's migrate dialog offers it:
the networks of the destination's pool a move may be sent over, and the hypervisor's objections
another choice of network cures (`poolctl migrate --network NET` names one itself)."""

from __future__ import annotations

from collections.abc import Iterable

from poolctl.model import MigrationCheck, Network

# the destination has no interface on the network, or one without an address (XAPI's codes)
NETWORK_CODES = frozenset({"HOST_CANNOT_ATTACH_NETWORK", "PIF_HAS_NO_NETWORK_CONFIGURATION", "INTERFACE_HAS_NO_IP"})


def network_choices(networks: Iterable[Network]) -> list[Network]:
    """The networks a move may take: those with an interface on some host (not a host-internal
    one), by name."""
    return sorted((n for n in networks if n.hosts), key=lambda n: (n.name.casefold(), n.ref))


def network_curable(check: MigrationCheck) -> bool:
    """Every problem of ``check`` is about the network the move takes."""
    return bool(check.problems) and bool(check.codes) and set(check.codes) <= NETWORK_CODES
