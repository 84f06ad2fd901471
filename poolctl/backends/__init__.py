"""Backend discovery through the ``poolctl.backends`` entry-point group.

poolctl registers ``xen`` and ``kvm`` there itself; a third party adds a backend by
declaring an entry point in its own package, without touching poolctl.
"""

from __future__ import annotations

from importlib.metadata import EntryPoint, entry_points
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from poolctl.backends.base import Backend

GROUP = "poolctl.backends"


def available() -> dict[str, EntryPoint]:
    return {ep.name: ep for ep in entry_points(group=GROUP)}


def load(name: str) -> type[Backend]:
    """The backend class registered as ``name``, or a ``BackendError`` saying what exists."""
    from poolctl.backends.base import Backend, BackendError

    eps = available()
    if name not in eps:
        known = ", ".join(sorted(eps)) or "none"
        raise BackendError(f"unknown backend {name!r}: registered backends are {known}")
    try:
        cls = eps[name].load()
    except ImportError as exc:
        hint = " (install poolctl[kvm] for libvirt-python)" if name == "kvm" else ""
        raise BackendError(f"backend {name!r} cannot be loaded: {exc}{hint}") from exc
    if not (isinstance(cls, type) and issubclass(cls, Backend)):
        raise BackendError(f"entry point {name!r} of {GROUP} is not a poolctl Backend class")
    return cls
