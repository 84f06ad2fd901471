"""Workload Balancing as xapi's WLB client speaks it (workload_balancing.ml): SOAP over HTTPS to
https://<wlb_url>/Citrix.Dwm.WorkloadBalance/Service with basic authentication, the response's
Body/<meth>Response/<meth>Result read as xapi reads it, and xapi's errors for every way the
appliance can fail (refused, unknown host, timeout, 401/403, a reply that is not WLB's).

The simulator is a real WLB client: pointed at a WLB appliance it configures it; pointed at
nothing it fails as xapi does."""

from __future__ import annotations

import base64
import http.client
import socket
import ssl
import xml.etree.ElementTree as ET
from urllib.parse import urlsplit
from xml.sax.saxutils import escape

from . import datamodel, errors
from .registry import Context, api

_PATH = "/Citrix.Dwm.WorkloadBalance/Service"
_DEFAULT_TIMEOUT = 30.0  # Xapi_globs.default_wlb_timeout, overridden by pool other_config wlb_timeout


class _ParseFailure(Exception):
    """workload_balancing.ml's Xml_parse_failure."""


def _pool(ctx: Context) -> str:
    return ctx.db.refs("pool")[0]


def _split_host_port(url: str) -> tuple[str, int]:
    parts = urlsplit("//" + url)
    try:
        port = parts.port
    except ValueError:
        port = None
    if not parts.hostname or port is None:
        raise errors.XapiError("WLB_URL_INVALID", url)
    return parts.hostname, port


def _assert_initialized(ctx: Context) -> None:
    if not ctx.db.field("pool", _pool(ctx), "wlb_url"):
        raise errors.XapiError("WLB_NOT_INITIALIZED")


def _assert_enabled(ctx: Context) -> None:
    _assert_initialized(ctx)
    if not ctx.db.field("pool", _pool(ctx), "wlb_enabled"):
        raise errors.XapiError("WLB_DISABLED")


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _child(elem: ET.Element, tag: str) -> ET.Element:
    for c in elem:
        if _local(c.tag) == tag:
            return c
    raise _ParseFailure(f"Descend_and_match failed. Node {tag} not found.")


def _descend(elem: ET.Element, path: list[str]) -> ET.Element:
    for tag in path:
        elem = _child(elem, tag)
    return elem


def _leaf(elem: ET.Element) -> str:
    return (elem.text or "") if len(elem) == 0 else ""


def _body(meth: str, params: str) -> str:
    return (
        '<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/">\n'
        "  <s:Body>\n"
        f'    <{meth} xmlns="http://schemas.citrix.com/DWM">\n'
        '      <request xmlns:i="http://www.w3.org/2001/XMLSchema-instance">\n'
        f"        {params}\n"
        "      </request>\n"
        f"    </{meth}>\n"
        "  </s:Body>\n"
        "</s:Envelope>"
    )


def _param(tag: str, value: str) -> str:
    return f"<{tag}>{escape(value)}</{tag}>"


def _pool_uuid(ctx: Context) -> str:
    return _param("PoolUuid", ctx.db.field("pool", _pool(ctx), "uuid"))


def _auth(ctx: Context) -> str:
    secrets: dict[str, str] = ctx.pool.settings.get("wlb", {})  # type: ignore[assignment]
    user = ctx.db.field("pool", _pool(ctx), "wlb_username")
    return base64.b64encode(f"{user}:{secrets.get('password', '')}".encode()).decode()


def _timeout(ctx: Context) -> float:
    try:
        return float(ctx.db.field("pool", _pool(ctx), "other_config").get("wlb_timeout", _DEFAULT_TIMEOUT))
    except ValueError:
        return _DEFAULT_TIMEOUT


def _post(ctx: Context, host: str, port: int, path: str, body: str, headers: dict[str, str], timeout: float) -> bytes:
    """One HTTPS POST as Remote_requests.perform_request makes it, its failures in xapi's words."""
    verify = bool(ctx.db.field("pool", _pool(ctx), "wlb_verify_cert"))
    context = ssl.create_default_context() if verify else ssl._create_unverified_context()
    conn = http.client.HTTPSConnection(host, port, timeout=timeout, context=context)
    try:
        conn.request("POST", path, body=body.encode(), headers={"Host": host, **headers, "Connection": "close"})
        resp = conn.getresponse()
        data = resp.read()
    except TimeoutError:
        raise errors.XapiError("WLB_TIMEOUT", timeout) from None
    except ConnectionRefusedError:
        raise errors.XapiError("WLB_CONNECTION_REFUSED") from None
    except socket.gaierror:
        raise errors.XapiError("WLB_UNKNOWN_HOST") from None
    except ssl.SSLCertVerificationError as exc:
        raise errors.XapiError("SSL_VERIFY_ERROR", exc.verify_message or str(exc)) from None
    except OSError as exc:
        if "No route to host" in str(exc):
            raise errors.XapiError("WLB_UNKNOWN_HOST") from None
        raise errors.XapiError("WLB_CONNECTION_RESET") from None
    finally:
        conn.close()
    if resp.status in (401, 403):
        raise errors.XapiError("WLB_AUTHENTICATION_FAILED")
    if resp.status >= 300:
        raise errors.XapiError("WLB_CONNECTION_RESET")
    return data


def _request(ctx: Context, meth: str, params: str, url: str | None = None, auth: str | None = None) -> ET.Element:
    """perform_wlb_request: the inner <meth>Result element of a successful reply."""
    host, port = _split_host_port(url if url is not None else ctx.db.field("pool", _pool(ctx), "wlb_url"))
    headers = {
        "SOAPAction": f'"http://schemas.citrix.com/DWM/IWorkloadBalance/{meth}"',
        "Content-Type": "text/xml; charset=utf-8",
        "Authorization": "Basic " + (auth if auth is not None else _auth(ctx)),
    }
    data = _post(ctx, host, port, _PATH, _body(meth, params), headers, _timeout(ctx))
    try:
        root = ET.fromstring(data)
    except ET.ParseError as exc:
        raise errors.XapiError("WLB_MALFORMED_RESPONSE", meth, str(exc), "") from None
    try:
        inner = _descend(root, ["Body", f"{meth}Response", f"{meth}Result"])
    except _ParseFailure:
        try:
            text = _leaf(_descend(root, ["Body", "Fault", "Reason", "Text"]))
        except _ParseFailure:
            raise errors.XapiError(
                "WLB_MALFORMED_RESPONSE",
                meth,
                "Expected data is missing or corrupt. No exception found.",
                data.decode(),
            ) from None
        raise errors.XapiError("WLB_INTERNAL_ERROR", "Exception:", text) from None
    try:
        code = _leaf(_child(inner, "ResultCode"))
    except _ParseFailure:
        code = "0"  # no ResultCode: xapi assumes success
    if code != "0":
        try:
            message = _leaf(_child(inner, "ErrorMessage"))
        except _ParseFailure:
            message = ""
        raise errors.XapiError("WLB_INTERNAL_ERROR", code, message)
    return inner


def _childless(elem: ET.Element) -> bool:
    return len(elem) == 0


# -- configuring --------------------------------------------------------------------------------
@api("pool.initialize_wlb", "wlb_url", "wlb_username", "wlb_password", "xenserver_username", "xenserver_password")
def initialize_wlb(
    ctx: Context, wlb_url: str, wlb_username: str, wlb_password: str, xenserver_username: str, xenserver_password: str
) -> None:
    master_address = ctx.db.field("host", ctx.pool.master, "address")
    params = "\n".join(
        (
            _param("Password", str(xenserver_password)),
            _pool_uuid(ctx),
            _param("UserName", str(xenserver_username)),
            _param("XenServerUrl", f"http://{master_address}:80/"),
        )
    )
    auth = base64.b64encode(f"{wlb_username}:{wlb_password}".encode()).decode()
    inner = _request(ctx, "AddXenServer", params, url=str(wlb_url), auth=auth)
    try:
        _child(inner, "Id")  # a successful AddXenServerResult carries the pool's id at WLB
    except _ParseFailure as exc:
        raise errors.XapiError("WLB_MALFORMED_RESPONSE", "AddXenServer", str(exc), "") from None
    with ctx.db.lock:
        ctx.pool.settings["wlb"] = {"password": str(wlb_password)}
        ctx.db.set("pool", _pool(ctx), wlb_url=str(wlb_url), wlb_username=str(wlb_username))


@api("pool.deconfigure_wlb")
def deconfigure_wlb(ctx: Context) -> None:
    """RemoveXenServer; whatever WLB answers, the pool forgets it (CA-60147, CA-93312)."""
    _assert_initialized(ctx)
    try:
        _request(ctx, "RemoveXenServer", _pool_uuid(ctx))
    except errors.XapiError:
        pass
    with ctx.db.lock:
        ctx.pool.settings.pop("wlb", None)
        ctx.db.set("pool", _pool(ctx), wlb_url="", wlb_username="", wlb_enabled=False)


@api("pool.send_wlb_configuration", "config")
def send_wlb_configuration(ctx: Context, config: object) -> None:
    conf = datamodel.coerce("(string -> string) map", config, "pool", "config")
    _assert_initialized(ctx)
    pairs = "".join(
        f"<b:KeyValueOfstringstring>{_param('b:Key', k)}{_param('b:Value', v)}</b:KeyValueOfstringstring>\n"
        for k, v in conf.items()
    )
    params = (
        '\n    <OptimizationParms xmlns:b="http://schemas.microsoft.com/2003/10/Serialization/Arrays">\n'
        f"      {pairs}\n    </OptimizationParms>\n    {_pool_uuid(ctx)}\n"
    )
    inner = _request(ctx, "SetXenPoolConfiguration", params)
    if not _childless(inner):
        raise errors.XapiError("WLB_MALFORMED_RESPONSE", "SetXenPoolConfiguration", "Expected blank result", "")


@api("pool.retrieve_wlb_configuration")
def retrieve_wlb_configuration(ctx: Context) -> dict[str, str]:
    _assert_initialized(ctx)
    inner = _request(ctx, "GetXenPoolConfiguration", _pool_uuid(ctx))
    try:
        parms = _child(inner, "OptimizationParms")
        return {_leaf(_child(kv, "Key")): _leaf(_child(kv, "Value")) for kv in parms}
    except _ParseFailure as exc:
        raise errors.XapiError("WLB_MALFORMED_RESPONSE", "GetXenPoolConfiguration", str(exc), "") from None


@api("pool.send_test_post", "host", "port", "body")
def send_test_post(ctx: Context, host: str, port: object, body: str) -> str:
    """Remote_requests.send_test_post: an HTTPS POST of `body` to host:port/, its reply's body."""
    n = datamodel.coerce("int", port, "pool", "port")
    data = _post(ctx, str(host), n, "/", str(body), {}, 30.0)
    return data.decode(errors="replace")


# -- recommendations ----------------------------------------------------------------------------
def _by_uuid(ctx: Context, cls: str, uuid: str, meth: str) -> str:
    found = ctx.db.find(cls, lambda r: r["uuid"] == uuid)
    if len(found) != 1:
        raise errors.XapiError("WLB_MALFORMED_RESPONSE", meth, "Invalid VM or host UUID", "unknown")
    return found[0]


def _number(text: str, meth: str) -> str:
    try:
        float(text)
    except ValueError:
        raise errors.XapiError(
            "WLB_MALFORMED_RESPONSE", "unknown", "Could not parse star rating/recID/optID", meth
        ) from None
    return text


@api("VM.retrieve_wlb_recommendations", "vm")
def vm_retrieve_wlb_recommendations(ctx: Context, vm: str) -> dict[str, list[str]]:
    """VMGetRecommendations: one recommendation per live host, [WLB, stars, id] or, for a host the
    VM cannot start on (zero stars, or xapi's own placement check), [WLB, 0.0, id, reason]."""
    from . import ops

    meth = "VMGetRecommendations"
    ctx.db.get("VM", vm)
    _assert_enabled(ctx)
    inner = _request(ctx, meth, f"{_pool_uuid(ctx)}\n<VmUuid>{ctx.db.field('VM', vm, 'uuid')}</VmUuid>")
    try:
        recs = list(_child(inner, "Recommendations"))
        parsed = [
            (
                _leaf(_child(r, "HostUuid")),
                _leaf(_child(r, "RecommendationId")),
                _leaf(_child(r, "ZeroScoreReason")),
                _leaf(_child(r, "Stars")),
            )
            for r in recs
        ]
    except _ParseFailure as exc:
        raise errors.XapiError("WLB_MALFORMED_RESPONSE", meth, str(exc), "") from None
    live = [h for h, r in ctx.db.tables["host"].items() if ctx.db.get("host_metrics", r["metrics"])["live"]]
    out: dict[str, list[str]] = {}
    for host_uuid, rec_id, zero_reason, stars in parsed:
        host = _by_uuid(ctx, "host", host_uuid, meth)
        score = float(_number(stars, meth))
        _number(rec_id, meth)
        if score == 0.0:
            out[host] = ["WLB", "0.0", rec_id, zero_reason]
            continue
        if zero_reason != "None":
            raise errors.XapiError(
                "WLB_MALFORMED_RESPONSE", meth, "Recommendation has both a non-zero score and a reason for zero", ""
            )
        try:
            ops.assert_can_boot_here(ctx.pool, vm, host)
            out[host] = ["WLB", repr(score), rec_id]
        except errors.XapiError as e:
            out[host] = ["WLB", "0.0", rec_id, ";".join(e.description)]
    if recs and set(out) != set(live):
        raise errors.XapiError(
            "WLB_MALFORMED_RESPONSE",
            meth,
            "VM recommendations must only target live hosts and target all of them",
            "Unknown",
        )
    return out


def _kv_rows(inner: ET.Element, meth: str) -> list[dict[str, str]]:
    if _childless(inner):
        return []
    try:
        return [{_local(kv.tag): _leaf(kv) for kv in row} for row in _child(inner, "Recommendations")]
    except _ParseFailure as exc:
        raise errors.XapiError("WLB_MALFORMED_RESPONSE", meth, str(exc), "") from None


def _dom0(ctx: Context, host_uuid: str, meth: str) -> str:
    return str(ctx.db.field("host", _by_uuid(ctx, "host", host_uuid, meth), "control_domain"))


@api("host.retrieve_wlb_evacuate_recommendations", "self")
def retrieve_wlb_evacuate_recommendations(ctx: Context, self: str) -> dict[str, list[str]]:
    meth = "HostGetRecommendations"
    uuid = ctx.db.field("host", self, "uuid")
    _assert_enabled(ctx)
    inner = _request(ctx, meth, f"<HostUuid>{uuid}</HostUuid>\n{_pool_uuid(ctx)}")
    out: dict[str, list[str]] = {}
    for row in _kv_rows(inner, meth):
        host, rec_id = row.get("HostUuid"), row.get("RecommendationId")
        if host is None or rec_id is None:
            raise errors.XapiError("WLB_MALFORMED_RESPONSE", meth, "Missing VmUuid, RecID or HostUuid", "unknown")
        vm = _by_uuid(ctx, "VM", row["VmUuid"], meth) if row.get("VmUuid") else _dom0(ctx, host, meth)
        out[vm] = ["WLB", host, _number(rec_id, meth)]
    return out


@api("pool.retrieve_wlb_recommendations")
def retrieve_wlb_recommendations(ctx: Context) -> dict[str, list[str]]:
    meth = "GetOptimizationRecommendations"
    _assert_enabled(ctx)
    inner = _request(ctx, meth, _pool_uuid(ctx))
    rows = _kv_rows(inner, meth)
    opt_id = ""
    if rows:
        try:
            opt_id = _leaf(_child(inner, "OptimizationId"))
        except _ParseFailure as exc:
            raise errors.XapiError("WLB_MALFORMED_RESPONSE", meth, str(exc), "") from None
    out: dict[str, list[str]] = {}
    for row in rows:
        to, frm, reason, rec_id = (
            row.get(k) for k in ("MoveToHostUuid", "MoveFromHostUuid", "Reason", "RecommendationId")
        )
        if reason is None or rec_id is None:
            raise errors.XapiError(
                "WLB_MALFORMED_RESPONSE", meth, "Missing VmToMoveUuid, RecID, MoveToHostUuid, or Reason", "unknown"
            )
        if row.get("VmToMoveUuid") and to is not None:
            vm = _by_uuid(ctx, "VM", row["VmToMoveUuid"], meth)
            out[vm] = ["WLB", to, _number(opt_id, meth), _number(rec_id, meth), reason]
        elif frm is not None:  # a host to power off: the recommendation names its control domain
            out[_dom0(ctx, frm, meth)] = ["WLB", frm, _number(opt_id, meth), _number(rec_id, meth), reason]
        else:
            raise errors.XapiError(
                "WLB_MALFORMED_RESPONSE", meth, "Missing VmToMoveUuid, RecID, MoveToHostUuid, or Reason", "unknown"
            )
    return out
