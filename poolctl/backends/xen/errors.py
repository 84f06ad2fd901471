"""XAPI failures and transport errors, turned into poolctl's error classes and words.

Every message passes through ``scrub`` so that neither the password nor a session
reference (XAPI echoes it in SESSION_INVALID, SESSION_NOT_REGISTERED...) reaches a
log line, an exception string or the screen.
"""

from __future__ import annotations

import http.client
import ssl
import xmlrpc.client
from collections.abc import Callable, Iterable
from xml.etree.ElementTree import ParseError
from xml.parsers.expat import ExpatError

import XenAPI

from poolctl.backends.base import (
    AuthenticationError,
    BackendError,
    ConnectionLost,
    NotFound,
    OperationRefused,
)
from poolctl.model import GiB, MiB
from poolctl.redact import scrub

# XAPI codes that mean "the object is in the wrong state for that now".
REFUSALS = {
    "VM_BAD_POWER_STATE",
    # storage motion: raised before anything moves (the disk map, the target SRs)
    "VDI_NOT_IN_MAP",
    "SR_NOT_ATTACHED",
    "SR_FULL",
    "SR_DOES_NOT_SUPPORT_MIGRATION",
    "VDI_CBT_ENABLED",
    "VDI_IS_ENCRYPTED",
    "OTHER_OPERATION_IN_PROGRESS",
    "OPERATION_NOT_ALLOWED",
    "OPERATION_BLOCKED",
    "VM_IS_TEMPLATE",
    "VM_IS_PROTECTED",
    "HOST_NOT_ENOUGH_FREE_MEMORY",
    "VM_REQUIRES_SR",
    "VM_REQUIRES_NET",
    "VM_REQUIRES_NETWORK",
    "HOST_DISABLED",
    "HOST_OFFLINE",
    "HOST_NOT_LIVE",
    "VM_MISSING_PV_DRIVERS",
    "VM_LACKS_FEATURE",
    "VM_LACKS_FEATURE_SHUTDOWN",
    "VM_LACKS_FEATURE_SUSPEND",
    "NO_HOSTS_AVAILABLE",
    "TASK_CANCELLED",
}


def failure_parts(exc: XenAPI.Failure, secrets: Iterable[str] = ()) -> tuple[str, tuple[str, ...]]:
    secrets = list(secrets)
    details = [scrub(str(d), secrets) for d in (exc.details or [])]
    if not details:
        return "UNKNOWN", ()
    return details[0], tuple(details[1:])


def quote(code: str, params: Iterable[str]) -> str:
    params = list(params)
    return f"{code}({', '.join(params)})" if params else code


def size_words(value: int | str) -> str:
    try:
        n = int(value)
    except (TypeError, ValueError):
        return str(value)
    if n >= GiB:
        return f"{n / GiB:.1f}".rstrip("0").rstrip(".") + " GiB"
    return f"{n / MiB:.0f} MiB"


def is_connection_error(exc: BaseException) -> bool:
    if isinstance(exc, ConnectionLost):
        return True
    if isinstance(exc, BackendError):
        return False
    return isinstance(exc, (OSError, http.client.HTTPException, xmlrpc.client.ProtocolError, ExpatError))


class XapiErrors:
    """Maps exceptions for one pool; knows which strings are secrets."""

    def __init__(self, pool: str, secrets: Callable[[], list[str]]):
        self.pool = pool
        self.secrets = secrets

    def scrub(self, text: str) -> str:
        return scrub(text, self.secrets())

    def parts(self, exc: XenAPI.Failure) -> tuple[str, tuple[str, ...]]:
        return failure_parts(exc, self.secrets())

    def map(self, exc: BaseException, doing: str, *, where: str = "") -> BackendError:
        """A ``BackendError`` subclass for ``exc``, worded as ``pool: <doing> failed ...``."""
        if isinstance(exc, BackendError):
            return exc
        prefix = f"pool {self.pool!r}: {doing}"
        if isinstance(exc, XenAPI.Failure):
            code, params = self.parts(exc)
            if code == "SESSION_AUTHENTICATION_FAILED":
                user = params[0] if params else "the configured user"
                return AuthenticationError(
                    f"pool {self.pool!r}: {where or 'XAPI'} refused the credentials of user {user!r}",
                    code=code,
                    params=params,
                    host=where,
                )
            if code == "HANDLE_INVALID":
                what = params[0] if params else "object"
                ref = params[1] if len(params) > 1 else "?"
                return NotFound(
                    f"{prefix}: no {what} {ref} in this pool (it may have just been deleted)",
                    code=code,
                    params=params,
                    host=where,
                )
            cls = OperationRefused if code in REFUSALS else BackendError
            return cls(f"{prefix} failed: XAPI said {quote(code, params)}", code=code, params=params, host=where)
        if isinstance(exc, xmlrpc.client.Fault):
            text = self.scrub(str(exc.faultString))
            if exc.faultCode == 401 or "valid session" in text:
                return AuthenticationError(
                    f"{prefix}: XAPI on {where} would not keep a session: {text}", code="SESSION_INVALID", host=where
                )
            return BackendError(f"{prefix}: XAPI on {where} answered fault {exc.faultCode}: {text}", host=where)
        if isinstance(exc, (ssl.SSLCertVerificationError, ssl.SSLError)) and not isinstance(exc, ssl.SSLEOFError):
            reason = self.scrub(getattr(exc, "verify_message", "") or str(exc))
            hint = getattr(exc, "hint", 'set ca_file, or pin the certificate with fingerprint = "sha256 hex"')
            return BackendError(
                f"{prefix}: TLS verification of {where} failed: {reason} ({hint})",
                code="TLS_VERIFY_FAILED",
                host=where,
            )
        if isinstance(exc, xmlrpc.client.ProtocolError):
            return ConnectionLost(
                f"{prefix}: {where} answered HTTP {exc.errcode} {exc.errmsg}", code="HTTP_ERROR", host=where
            )
        if isinstance(exc, (OSError, http.client.HTTPException)):
            reason = self.scrub(getattr(exc, "strerror", None) or str(exc) or type(exc).__name__)
            return ConnectionLost(
                f"{prefix}: cannot reach XAPI at {where}: {reason}", code="CONNECTION_LOST", host=where
            )
        if isinstance(exc, xmlrpc.client.ResponseError) and exc.args:  # a reply of the wrong shape, in words
            # (xmlrpc.client's errors print as their repr: the words are the first argument)
            return BackendError(
                f"{prefix}: {where} sent a reply poolctl cannot use ({self.scrub(str(exc.args[0]))})",
                code="BAD_REPLY",
                host=where,
            )
        if isinstance(exc, (ExpatError, ParseError, xmlrpc.client.ResponseError)):
            why = f" ({self.scrub(str(exc))})" if str(exc) else ""
            return BackendError(f"{prefix}: {where} did not answer with XML-RPC{why}", code="BAD_REPLY", host=where)
        if isinstance(exc, (TypeError, KeyError, IndexError, AttributeError, ValueError)):
            # The SDK and poolctl took the reply apart and something was not where XAPI puts it.
            return BackendError(
                f"{prefix}: {where} sent a reply poolctl cannot use ({self.scrub(f'{type(exc).__name__}: {exc}')})",
                code="BAD_REPLY",
                host=where,
            )
        return BackendError(f"{prefix} failed: {self.scrub(f'{type(exc).__name__}: {exc}')}", host=where)
