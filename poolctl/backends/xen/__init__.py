"""The Xen backend (XenServer / XCP-ng over XAPI). Entry point: ``poolctl.backends.xen:XenBackend``;
its pools' settings: ``XenConfig``."""

from poolctl.backends.xen.backend import XenBackend
from poolctl.backends.xen.config import XenConfig

__all__ = ["XenBackend", "XenConfig"]
