"""Why a connection to a host did not open, told apart and worded with what to do.

libvirt reports every failure of its ssh transports as one error code (VIR_ERR_SYSTEM_ERROR or
VIR_ERR_AUTH_FAILED) with ssh's (or libssh's) own words in the message: those words are what
tells an unknown host key from a changed one, a refused login from a refused port. Host-key
and authentication failures are not retried by themselves (every retry would be a failed
login in the server's log); the others are (``ConnectionLost``).
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import libvirt

from poolctl.backends.base import AuthenticationError, BackendError, ConnectionLost
from poolctl.backends.kvm.errors import code_name, words


class HostKeyUnknown(BackendError):
    """The host's SSH key is not in known_hosts: trusting it is the user's decision."""


class HostKeyChanged(BackendError):
    """The host's SSH key differs from the one trusted: possibly an attack."""


class Unreachable(ConnectionLost):
    """No answer at the address: name, route, port."""


class TimedOut(Unreachable):
    """The open did not finish within the pool's connect timeout."""


class DaemonRefused(ConnectionLost):
    """The host was reached, its libvirt daemon refused or is not running."""


_CHANGED = re.compile(
    r"remote host identification has changed|host key for .* has changed|differs from stored identity", re.I
)
_UNKNOWN = re.compile(
    r"host key is known|host key verification failed|was not accepted|"
    r"no suitable callback for host key verification|host key .*(unknown|not known)|"
    r"server's public key is unknown|known_hosts file does not exist",
    re.I,
)
_AUTH = re.compile(
    r"permission denied|too many authentication failures|authentication failed|no more authentication methods|"
    r"access denied by server|auth(entication)? (was )?(cancelled|refused)|"
    r"failed to authenticate|no authentication methods available|password .*was refused",
    re.I,
)
_TIMED_OUT = re.compile(r"timed out|timeout", re.I)
_UNREACHABLE = re.compile(
    r"connection refused|no route to host|network is unreachable|could not resolve hostname|"
    r"name or service not known|temporary failure in name resolution|host is unreachable|"
    r"failed to connect to .*: connection refused|kex_exchange_identification|"
    r"connection closed by .* port|banner exchange",
    re.I,
)
_DAEMON = re.compile(
    r"\bnc: |virt-ssh-helper|failed to connect socket|no such file or directory|daemon|libvirt-sock|"
    r"end of file while reading data|cannot recv data: .*connection reset",
    re.I,
)
_NOISE = re.compile(
    r"^(cannot recv data|end of file while reading data|libssh transport error|authentication failed):\s*", re.I
)


def where(uri: str) -> tuple[str, str]:
    """(the host as the user wrote it, e.g. 'kvm1' or 'kvm1:2222', the ssh login's user)."""
    parts = urlsplit(uri)
    host = parts.hostname or "localhost"
    if parts.port:
        host = f"{host}:{parts.port}"
    return host, parts.username or ""


def gist(message: str) -> str:
    """ssh's one line that says what happened, without libvirt's wrapping and ssh's banner."""
    lines = [ln.strip() for ln in message.splitlines() if ln.strip() and not ln.strip().startswith("@")]
    useful = [ln for ln in lines if not re.match(r"(it is|someone|please contact|the fingerprint)", ln, re.I)]
    line = (useful or lines or [message.strip()])[-1]
    line = _NOISE.sub("", line)
    line = re.sub(r":\s*(connection reset by peer|input/output error)$", "", line, flags=re.I)
    return line.strip() or "no reason given"


def _transport(uri: str) -> str:
    # as opening.transport: not imported from there, opening imports this module to word a failure
    scheme = urlsplit(uri).scheme
    return scheme.split("+", 1)[1] if "+" in scheme else ""


def _ssh_target(uri: str) -> tuple[str, str]:
    """How the user reaches the host with ssh themselves: ('-p 2222 ', 'root@kvm1')."""
    parts = urlsplit(uri)
    port = f"-p {parts.port} " if parts.port else ""
    login = f"{parts.username}@{parts.hostname}" if parts.username else str(parts.hostname)
    return port, login


def classify(uri: str, err: libvirt.libvirtError, timeout_s: float, ssh_said: str = "") -> BackendError:
    """The error to raise for a failed open of ``uri``; ``ssh_said``: OpenSSH's stderr, which
    then says more than libvirt's message."""
    said = ssh_said.strip()
    message = f"{words(err)}\n{said}" if said else words(err)
    return classify_text(uri, message, code_name(err), err.get_error_code(), timeout_s)


def classify_text(uri: str, message: str, code: str, number: int, timeout_s: float) -> BackendError:
    host, user = where(uri)
    why = gist(message)
    kind = _transport(uri)
    port, login = _ssh_target(uri)
    parts = urlsplit(uri)
    known = f"[{parts.hostname}]:{parts.port}" if parts.port else str(parts.hostname)
    if _CHANGED.search(message):
        return HostKeyChanged(
            f"host {host}: its SSH host key has CHANGED since it was trusted ({uri}) — a reinstalled host, "
            "or someone in the middle. Check the new key's fingerprint with the host's administrator; only then "
            f"remove the old one (ssh-keygen -R '{known}') and trust the new one. Not retried until you press "
            "the retry key or restart",
            code="HOST_KEY_CHANGED",
            host=uri,
        )
    if _UNKNOWN.search(message):
        hint = (
            "the pool's known_hosts setting must name a file that holds it"
            if kind == "libssh"
            else f"log in once with ssh {port}{login} and accept it, or set the pool's known_hosts to a file holding it"
        )
        return HostKeyUnknown(
            f"host {host}: its SSH host key is not known yet, so it is not trusted ({uri}). Check its fingerprint "
            f"(ssh-keyscan {port}{parts.hostname} | ssh-keygen -lf -) against the host's own, then trust it: {hint}",
            code="HOST_KEY_UNKNOWN",
            host=uri,
        )
    if number in _AUTH_CODES or _AUTH.search(message):
        if kind == "ssh":
            hint = (
                f"check the user ({user or 'your login'}) and that its key (keyfile= in the URI, or ssh-agent; "
                "a key with a passphrase needs the agent) is in the host's authorized_keys; OpenSSH cannot "
                "use the pool's password: for password logins use qemu+libssh://"
            )
        elif kind == "libssh":
            hint = f"check the user ({user or 'the pool username'}), the pool's password or the key (keyfile=)"
        else:
            hint = "check the pool's username and password"
        return AuthenticationError(
            f"host {host} refused the login ({why}) ({uri}): {hint}. Not retried until you press the retry key",
            code="AUTH_REFUSED",
            host=uri,
        )
    if _TIMED_OUT.search(message):
        return TimedOut(_timed_out_words(uri, timeout_s, why), code="TIMED_OUT", host=uri)
    if _UNREACHABLE.search(message):
        return Unreachable(
            f"cannot reach host {host} ({uri}): {why}; check the host name and port and that "
            f"{'sshd' if kind in ('ssh', 'libssh') else 'the libvirt daemon'} listens there",
            code="UNREACHABLE",
            host=uri,
        )
    if _DAEMON.search(message) or code == "VIR_ERR_NO_CONNECT":
        reached = f"host {host} was reached but its" if parts.hostname else "cannot connect to the local"
        return DaemonRefused(
            f"{reached} libvirt daemon did not take the connection ({uri}): {why}; "
            "check that libvirtd (or virtqemud and virtproxyd) runs there and that the user may use its socket",
            code="DAEMON_REFUSED",
            host=uri,
        )
    return ConnectionLost(f"cannot connect to libvirt at {uri}: {why}", code=code, host=uri)


def timed_out(uri: str, timeout_s: float) -> TimedOut:
    return TimedOut(_timed_out_words(uri, timeout_s, ""), code="TIMED_OUT", host=uri)


def _timed_out_words(uri: str, timeout_s: float, why: str) -> str:
    host, _ = where(uri)
    said = f" ({why})" if why else ""
    return (
        f"host {host} did not answer within {timeout_s:.0f} s ({uri}){said}: check that it is up and that the "
        "port is the right service's; the pool's connect_timeout_s sets how long to wait"
    )


_AUTH_CODES = {
    getattr(libvirt, n)
    for n in ("VIR_ERR_AUTH_FAILED", "VIR_ERR_AUTH_CANCELLED", "VIR_ERR_AUTH_UNAVAILABLE")
    if hasattr(libvirt, n)
}


def retried(err: BackendError) -> bool:
    """Whether a failed open is tried again by itself (with back-off)."""
    return isinstance(err, ConnectionLost)
