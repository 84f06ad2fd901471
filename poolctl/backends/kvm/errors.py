"""libvirt errors into poolctl's error classes, worded for the user."""

from __future__ import annotations

import libvirt

from poolctl.backends.base import (
    AuthenticationError,
    BackendError,
    ConnectionLost,
    NotFound,
    OperationRefused,
    Unsupported,
)

_NAMES = {
    getattr(libvirt, n): n
    for n in dir(libvirt)
    if n.startswith("VIR_ERR_")
    and isinstance(getattr(libvirt, n), int)
    and n not in ("VIR_ERR_NONE", "VIR_ERR_WARNING", "VIR_ERR_ERROR")
}
_AUTH = {
    getattr(libvirt, n)
    for n in ("VIR_ERR_AUTH_FAILED", "VIR_ERR_AUTH_CANCELLED", "VIR_ERR_AUTH_UNAVAILABLE")
    if hasattr(libvirt, n)
}
_NOT_FOUND = {
    libvirt.VIR_ERR_NO_DOMAIN,
    libvirt.VIR_ERR_NO_STORAGE_POOL,
    libvirt.VIR_ERR_NO_NETWORK,
    libvirt.VIR_ERR_NO_STORAGE_VOL,
}
_UNSUPPORTED = {libvirt.VIR_ERR_NO_SUPPORT, libvirt.VIR_ERR_ARGUMENT_UNSUPPORTED}


def code_name(err: libvirt.libvirtError) -> str:
    code = err.get_error_code()
    return _NAMES.get(code, str(code))


def words(err: libvirt.libvirtError) -> str:
    """libvirt's own message, without its noisy prefixes."""
    return (err.get_error_message() or str(err) or "unknown libvirt error").strip()


def is_unsupported(err: libvirt.libvirtError) -> bool:
    return err.get_error_code() in _UNSUPPORTED


def connect_error(uri: str, err: libvirt.libvirtError) -> BackendError:
    msg = f"cannot connect to libvirt at {uri}: {words(err)}"
    if err.get_error_code() in _AUTH:
        return AuthenticationError(msg, code=code_name(err), host=uri)
    return ConnectionLost(msg, code=code_name(err), host=uri)


def operation_error(
    action: str, what: str, host: str, err: libvirt.libvirtError, *, alive: bool = True
) -> BackendError:
    """``action`` e.g. "start", ``what`` e.g. "VM 'kvm-web-01'", ``host`` the host's name."""
    msg = f"cannot {action} {what} on {host}: libvirt says: {words(err)}"
    code, name = err.get_error_code(), code_name(err)
    if not alive:
        return ConnectionLost(
            f"cannot {action} {what}: lost the connection to {host} ({words(err)})", code=name, host=host
        )
    if code in _NOT_FOUND:
        return NotFound(msg, code=name, host=host)
    if code in _UNSUPPORTED:
        return Unsupported(msg, code=name, host=host)
    return OperationRefused(msg, code=name, host=host)
