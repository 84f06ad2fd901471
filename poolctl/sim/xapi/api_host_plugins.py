"""Host plugins, extensions, Xen's console and the clients seen (xapi_plugins.ml,
xapi_extensions.ml, xapi_host.ml, xapi_vm.ml, xapi_tracked_user_agents.ml).

A simulated host has no /etc/xapi.d/plugins and no /etc/xapi.d/extensions: every plugin call is
XENAPI_MISSING_PLUGIN [plugin] and every extension MESSAGE_METHOD_UNKNOWN [name], as a real host
without them answers. VM.call_plugin's one plugin, guest-agent-operation, is xapi's own: its
RDP switches act on the simulated guest agent. Xen's console (host.dmesg) is a boot log made from
the host's record, and debug keys append Xen's answer to it."""

from __future__ import annotations

import json
import math
import re
import threading
import time

from . import datamodel, errors
from .registry import Context, api

_VM_CALL_PLUGIN_INTERVAL = 10.0  # Xapi_globs.vm_call_plugin_interval
# Xen's keyhandlers (xen/common/keyhandler.c) for the keys a support engineer sends
_DEBUG_KEYS = {
    "h": "show this message",
    "q": "dump domain (and guest debug) info",
    "r": "dump run queues",
    "0": "dump Dom0 registers",
    "d": "dump registers",
    "m": "memory info",
    "t": "display multi-cpu clock info",
    "a": "dump timer queues",
    "c": "dump ACPI Cx structures",
    "e": "dump evtchn info",
    "g": "print grant table usage",
    "i": "dump interrupt bindings",
    "n": "NMI statistics",
    "u": "dump NUMA info",
    "v": "dump VT-x VMCSs",
    "z": "dump IOAPIC info",
}


def _missing_plugin(plugin: str) -> errors.XapiError:
    return errors.XapiError("XENAPI_MISSING_PLUGIN", plugin)


@api("host.call_plugin", "host", "plugin", "fn", "args")
def host_call_plugin(ctx: Context, host: str, plugin: str, fn: str, args: object) -> str:
    datamodel.coerce("(string -> string) map", args, "host", "args")
    ctx.db.get("host", host)
    raise _missing_plugin(str(plugin))


@api("VM.call_host_plugin", "vm", "plugin", "fn", "args")
def vm_call_host_plugin(ctx: Context, vm: str, plugin: str, fn: str, args: object) -> str:
    datamodel.coerce("(string -> string) map", args, "VM", "args")
    ctx.db.get("VM", vm)
    raise _missing_plugin(str(plugin))


@api("VM.call_plugin", "vm", "plugin", "fn", "args")
def vm_call_plugin(ctx: Context, vm: str, plugin: str, fn: str, args: object) -> str:
    arguments = datamodel.coerce("(string -> string) map", args, "VM", "args")
    db = ctx.db
    db.get("VM", vm)
    if plugin != "guest-agent-operation":
        raise _missing_plugin(str(plugin))
    latest: dict[str, float] = ctx.pool.settings.setdefault("vm_call_plugin_latest", {})  # type: ignore[assignment]
    now = time.monotonic()
    wait = latest.get(vm, -1e9) + _VM_CALL_PLUGIN_INTERVAL - now
    if wait > 0:
        raise errors.XapiError("VM_CALL_PLUGIN_RATE_LIMIT", vm, _VM_CALL_PLUGIN_INTERVAL, wait)
    latest[vm] = now
    if fn in ("request-rdp-on", "request-rdp-off"):
        _request_rdp(ctx, vm, fn == "request-rdp-on", str(plugin), str(fn))
        return ""
    if fn == "run-script":
        # Helpers.guest_agent_run_script_enabled: pool.guest_agent_config "allow_run_script"
        config = db.field("pool", db.refs("pool")[0], "guest_agent_config")
        if config.get("allow_run_script", "false") != "true":
            raise errors.XapiError("FEATURE_RESTRICTED")
        for required in ("username", "password", "script"):
            if required not in arguments:
                raise errors.XapiError(
                    "XENAPI_PLUGIN_FAILURE", "missing argument", "", f"Argument {required} is required."
                )
        msg = (
            f'The requested fn "{fn}" of plugin "{plugin}" could not be executed for lack of '
            "guest agent control feature."
        )
        raise errors.XapiError("XENAPI_PLUGIN_FAILURE", "failed to execute fn", msg, msg)
    msg = f'The requested fn "{fn}" could not be found in plugin "{plugin}".'
    raise errors.XapiError("XENAPI_PLUGIN_FAILURE", "failed to find fn", msg, msg)


def _request_rdp(ctx: Context, vm: str, enabled: bool, plugin: str, fn: str) -> None:
    """xapi_vm.request_rdp: only a guest agent announcing feature-ts2 is asked (xenstore
    control/ts); the simulated agent answers at once in its data/ts, which xapi shows in
    VM_guest_metrics.other."""
    db = ctx.db
    with db.lock:
        gm = db.get("VM", vm)["guest_metrics"]
        other = db.get("VM_guest_metrics", gm)["other"] if db.exists("VM_guest_metrics", gm) else {}
        if other.get("feature-ts2", "") in ("", "0"):
            msg = (
                f'The requested fn "{fn}" of plugin "{plugin}" could not be executed for lack of '
                "guest agent control feature."
            )
            raise errors.XapiError("XENAPI_PLUGIN_FAILURE", "failed to execute fn", msg, msg)
        db.set("VM_guest_metrics", gm, other={**other, "data-ts": "1" if enabled else "0"})


@api("host.call_extension", "host", "call")
def call_extension(ctx: Context, host: str, call: str) -> str:
    ctx.db.get("host", host)
    try:
        request = json.loads(str(call))
        name = request["method"]
    except (ValueError, KeyError, TypeError) as exc:  # Jsonrpc.call_of_string's exception
        raise errors.internal_error(f"Jsonrpc.Malformed_method_request: {exc}") from None
    raise errors.XapiError("MESSAGE_METHOD_UNKNOWN", str(name))


@api("pool.has_extension", "self", "name")
def pool_has_extension(ctx: Context, self: str, name: str) -> bool:
    ctx.db.get("pool", self)
    return False  # every host must have it; none has any


# -- Xen's console ----------------------------------------------------------------------------
def _console(ctx: Context, host: str) -> list[str]:
    consoles: dict[str, list[str]] = ctx.pool.settings.setdefault("xen_console", {})  # type: ignore[assignment]
    if host not in consoles:
        rec = ctx.db.get("host", host)
        xen = rec["software_version"].get("xen", "4.17")
        total = ctx.db.get("host_metrics", rec["metrics"])["memory_total"]
        cpus = len(rec["host_CPUs"])
        consoles[host] = [
            f"(XEN) Xen version {xen} (mockbuild@) (gcc (GCC) 11.2.1) debug=n",
            "(XEN) Command line: dom0_mem=4096M,max:4096M watchdog ucode=scan dom0_max_vcpus=1-16 "
            "crashkernel=256M,below=4G",
            f"(XEN) System RAM: {total // 1024**2}MB ({total // 1024}kB)",
            f"(XEN) Allocated console ring of {max(16, cpus)} KiB.",
            f"(XEN) Brought up {cpus} CPUs",
            "(XEN) *** LOADING DOMAIN 0 ***",
            "(XEN) Freed 656kB init memory",
        ]
    return consoles[host]


@api("host.dmesg", "host")
def dmesg(ctx: Context, host: str) -> str:
    with ctx.db.lock:
        return "\n".join(_console(ctx, host)) + "\n"


@api("host.send_debug_keys", "host", "keys")
def send_debug_keys(ctx: Context, host: str, keys: str) -> None:
    with ctx.db.lock:
        lines = _console(ctx, host)
        for key in str(keys):
            what = _DEBUG_KEYS.get(key)
            if what is None:
                lines.append(f"(XEN) '{key}' pressed -> no handler")
            else:
                lines.append(f"(XEN) '{key}' pressed -> {what}")


# -- clients seen -----------------------------------------------------------------------------
@api("host.get_tracked_user_agents", "self")
def get_tracked_user_agents(ctx: Context, self: str) -> dict[str, str]:
    ctx.db.get("host", self)
    tables: dict[str, dict[str, str]] = ctx.pool.settings.get("user_agents", {})  # type: ignore[assignment]
    return dict(tables.get(self, {}))


# -- the toolstack ------------------------------------------------------------------------------
# xapi_host.restart_agent answers, then after 1 s runs xe-toolstack-restart; the simulated
# toolstack is back after AGENT_RESTART_SECONDS. shutdown_agent lights xapi's fuse (1 s) and
# does not come back.
AGENT_DELAY_SECONDS = 0.2
AGENT_RESTART_SECONDS = 1.0


def _stop_agent_later(ctx: Context, host: str, seconds: float) -> None:
    control = ctx.pool.settings.get("agent_control")
    if control is None:  # not served (a simulator used in-process): nothing listens to stop
        return
    timer = threading.Timer(AGENT_DELAY_SECONDS, control.stop_agent, (host, seconds))  # type: ignore[attr-defined]
    timer.daemon = True
    timer.start()


@api("host.restart_agent", "host")
def restart_agent(ctx: Context, host: str) -> None:
    with ctx.db.lock:
        rec = ctx.db.get("host", host)
        if not ctx.db.get("host_metrics", rec["metrics"])["live"]:
            raise errors.XapiError("HOST_OFFLINE", host)  # the call is forwarded to that host
    _stop_agent_later(ctx, host, AGENT_RESTART_SECONDS)


@api("host.shutdown_agent")
def shutdown_agent(ctx: Context) -> None:
    _stop_agent_later(ctx, ctx.host, math.inf)


# -- status reports -----------------------------------------------------------------------------
# xen-bugtool's cap() entries for what the simulated report holds: key -> (file names, pii,
# max-size, max-time); every other field as cap()'s defaults (min -1, text/plain, checked)
_CAPABILITIES = {
    "xenserver-databases": (("host-record.json", "pool-record.json"), "yes", 10 * 1024**2, 5),
    "xen-info": (("xen-dmesg",), "maybe", 20 * 1024, 10),
}


@api("host.get_system_status_capabilities", "host")
def get_system_status_capabilities(ctx: Context, host: str) -> str:
    """xen-bugtool --capabilities, as print_capabilities() writes it, for the entries the
    simulated report (bugreport_upload) collects."""
    from xml.dom.minidom import getDOMImplementation

    ctx.db.get("host", host)  # forwarded to that host (message_forwarding), which answers for itself
    document = getDOMImplementation().createDocument("ns", "system-status-capabilities", None)
    root = document.documentElement
    assert root is not None  # createDocument made it
    for key, (_, pii, max_size, max_time) in _CAPABILITIES.items():
        el = document.createElement("capability")
        for name, value in (
            ("key", key),
            ("pii", pii),
            ("min-size", "-1"),
            ("max-size", str(max_size)),
            ("min-time", "-1"),
            ("max-time", str(max_time)),
            ("content-type", "text/plain"),
            ("default-checked", "yes"),
        ):
            el.setAttribute(name, value)
        root.appendChild(el)
    return str(document.toprettyxml())


def _status_report(ctx: Context, host: str) -> bytes:
    """What the simulated xen-bugtool collects: the host's record, its Xen console and the
    pool's record, as a tar (--output=tar)."""
    import io
    import tarfile

    from . import wire

    with ctx.db.lock:
        files = {
            "host-record.json": wire.json_dumps(ctx.db.snapshot("host", host)),
            "xen-dmesg": ("\n".join(_console(ctx, host)) + "\n").encode(),
            "pool-record.json": wire.json_dumps(ctx.db.snapshot("pool", ctx.db.refs("pool")[0])),
        }
        stamp = ctx.db.field("host", host, "uuid")
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(f"bug-report-{stamp}/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def _upload_url(url: str, installation_uuid: str) -> str | None:
    """host-bugreport-upload: the URL's last path part is the file name, else
    <installation uuid>-<UTC time>; None when the URL has no scheme://host (curl's exit 1)."""
    from datetime import UTC, datetime

    m = re.fullmatch(r"([^:]*://[^/]*)((?:/[^/]*)*?)/?([^/]*)", url)
    if not m or "://" not in url:
        return None
    base, path, name = m.group(1), m.group(2), m.group(3)
    if "/" not in url.split("://", 1)[1]:
        name = ""
    if not name:
        name = f"{installation_uuid}-{datetime.now(UTC).strftime('%Y:%m:%dT%H:%M:%SZ')}"
    return f"{base}{path}/{name}"


@api("host.bugreport_upload", "host", "url", "options")
def bugreport_upload(ctx: Context, host: str, url: str, options: object) -> None:
    """xen-bugtool | curl -T - <url>: an HTTP(S) PUT (or FTP STOR) of the report; curl's
    failures in xapi's words (INTERNAL_ERROR, xapi_host.bugreport_upload's failwith)."""
    import ftplib
    import http.client
    import socket
    from urllib.parse import urlsplit

    opts = datamodel.coerce("(string -> string) map", options, "host", "options")
    if not url:
        raise errors.XapiError("INVALID_VALUE", "url", "")
    installation = ctx.db.field("host", host, "uuid")
    target = _upload_url(str(url), installation)
    parts = urlsplit(target or "")
    if target is None or parts.scheme not in ("http", "https", "ftp") or not parts.hostname:
        raise errors.internal_error("URL not recognised")
    body = _status_report(ctx, host)
    if opts.get("http_proxy"):
        raise errors.internal_error("Failed to resolve proxy or host")  # the simulated host reaches no proxy
    try:
        if parts.scheme == "ftp":
            with ftplib.FTP() as ftp:
                ftp.connect(parts.hostname, parts.port or 21, timeout=30)
                ftp.login(parts.username or "anonymous", parts.password or "")
                ftp.storbinary(f"STOR {parts.path}", __import__("io").BytesIO(body))
            return
        conn_cls = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
        conn = conn_cls(parts.hostname, parts.port, timeout=30)
        try:
            conn.request("PUT", parts.path or "/", body=body, headers={"Expect": ""})
            conn.getresponse().read()  # curl without --fail: an HTTP error status is still exit 0
        finally:
            conn.close()
    except socket.gaierror:
        raise errors.internal_error("Failed to resolve proxy or host") from None
    except ftplib.error_perm:
        raise errors.internal_error("FTP access denied") from None
    except OSError:
        raise errors.internal_error("Failed to connect to host") from None
