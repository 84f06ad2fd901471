"""Backend discovery through the ``poolctl.backends`` entry-point group.

poolctl registers ``xen`` and ``kvm`` there itself; a third party adds a backend by
declaring an entry point in its own package, without touching poolctl. A backend brings
its own settings (``Backend.Config``), so the config file takes its keys too.
"""

from __future__ import annotations

from importlib.metadata import EntryPoint, entry_points

from poolctl.backends.base import Backend, BackendError

GROUP = "poolctl.backends"

# What to install when a backend's module cannot be imported, for the backends poolctl ships.
_INSTALL_HINTS = {"kvm": "install poolctl[kvm] for libvirt-python"}


def available() -> dict[str, EntryPoint]:
    return {ep.name: ep for ep in entry_points(group=GROUP)}


def load(name: str) -> type[Backend]:
    """The backend class registered as ``name``, or a ``BackendError`` saying what exists."""
    eps = available()
    if name not in eps:
        known = ", ".join(sorted(eps)) or "none"
        raise BackendError(f"unknown backend {name!r}: registered backends are {known}")
    try:
        cls = eps[name].load()
    except ImportError as exc:
        hint = _INSTALL_HINTS.get(name) or _dist_hint(eps[name])
        raise BackendError(f"backend {name!r} cannot be loaded: {exc}{f' ({hint})' if hint else ''}") from exc
    if not (isinstance(cls, type) and issubclass(cls, Backend)):
        raise BackendError(f"entry point {name!r} of {GROUP} is not a poolctl Backend class")
    return cls


def _dist_hint(ep: EntryPoint) -> str:
    dist = ep.dist.name if ep.dist is not None else ""
    return f"reinstall {dist} with its dependencies" if dist else ""
