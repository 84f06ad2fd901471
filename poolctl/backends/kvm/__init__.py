"""KVM backend: a pool is a named set of libvirt URIs, one per host (libvirt-python).

Entry point ``poolctl.backends.kvm:KvmBackend``; its pools' settings: ``KvmConfig`` (``config``).
Modules: ``hostconn`` (one connection: its state, its loads), ``bulkread`` (the bulk read's
calls and their answers parsed), ``subscriptions`` (the close callback and domain events, made
with the first read), ``opening`` (a host's open: deadline, ssh child, credentials, what a
failure means), ``early`` (a first open started before the config is validated), ``bulkcalls``
(the bulk read's calls at once over a link), ``heap`` (the C heap a host's open freed, given
back), ``details`` (what only a domain's own calls tell, read many domains at a time after the
first paint), ``merge`` (hosts into one pool), ``watcher`` (event thread, background readers,
reconnect), ``checks`` (migration pre-checks), ``migration_start`` (what refuses a move, the
migrate call's flags), ``migration`` (the handle), ``progress`` (libvirt's job stats read as
the move's progress).

The backend and its settings are imported when first named: ``early`` is imported before the
config is validated, and must not bring pydantic in.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import libvirt

# libvirt prints every error to stderr by default, over the TUI's screen: errors reach
# us as exceptions anyway.
libvirt.registerErrorHandler(lambda _ctx, _err: None, None)

if TYPE_CHECKING:
    from poolctl.backends.kvm.backend import KvmBackend
    from poolctl.backends.kvm.config import KvmConfig

__all__ = ["KvmBackend", "KvmConfig"]


def __getattr__(name: str) -> Any:
    if name == "KvmBackend":
        from poolctl.backends.kvm.backend import KvmBackend

        return KvmBackend
    if name == "KvmConfig":
        from poolctl.backends.kvm.config import KvmConfig

        return KvmConfig
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
