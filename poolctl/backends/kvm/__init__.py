"""KVM backend: a pool is a named set of libvirt URIs, one per host (libvirt-python).

Entry point ``poolctl.backends.kvm:KvmBackend``; its pools' settings: ``KvmConfig`` (``config``).
Modules: ``hostconn`` (one connection, bulk loading, event subscription), ``bulkcalls`` (the
bulk read's calls at once over a link), ``heap`` (the C heap a host's open freed, given back),
``details`` (what only a domain's own calls tell, read many domains at a time after the first
paint), ``merge`` (hosts into one pool), ``watcher`` (event thread, background readers,
reconnect), ``checks`` (migration pre-checks), ``migration`` (the handle).
"""

import libvirt

# libvirt prints every error to stderr by default, over the TUI's screen: errors reach
# us as exceptions anyway.
libvirt.registerErrorHandler(lambda _ctx, _err: None, None)

from poolctl.backends.kvm.backend import KvmBackend  # noqa: E402
from poolctl.backends.kvm.config import KvmConfig  # noqa: E402

__all__ = ["KvmBackend", "KvmConfig"]
