"""The Xen backend (XenServer / XCP-ng over XAPI). Entry point: ``poolctl.backends.xen:XenBackend``."""

from poolctl.backends.xen.backend import XenBackend

__all__ = ["XenBackend"]
