"""``get_all_records`` over XAPI's JSON-RPC endpoint, for the one big read when a pool loads.

At 10,000 VMs the XML-RPC replies of the classes poolctl reads are ~177 MB and take ~2.8 s to
parse even with expat in C; the same records as JSON are ~62 MB and pydantic-core's parser
(already a dependency) reads them in ~0.35 s. XAPI serves JSON-RPC on ``/jsonrpc`` beside
XML-RPC (the C#, Java, Go and PowerShell SDKs speak it). The Python SDK speaks XML-RPC only,
so everything else - login, events, power, migration - stays on the SDK, and this reuses the
SDK session's handle. A pool that does not serve ``/jsonrpc`` (404, 405, 501, or a reply that
is not JSON) is read over XML-RPC instead; the connector remembers that.

Over JSON-RPC XAPI sends integers as numbers, not strings; translate.py reads both.
"""

from __future__ import annotations

import http.client
import itertools
import json
import xmlrpc.client

import pydantic_core
import XenAPI

from poolctl.backends.xen.connection import Connector
from poolctl.backends.xen.translate import CLASSES, FIELDS, Raw

PATH = "/jsonrpc"
NOT_SERVED = frozenset({404, 405, 501})
# Biggest first: the VM reply is read while little else is in memory.
ORDER = ("vm", "vbd", "vdi", "vif", "vm_guest_metrics")
_ids = itertools.count(1)


class NotServed(Exception):
    """This pool has no JSON-RPC endpoint; read over XML-RPC."""


def read_classes(connector: Connector, handle: str, classes: list[str]) -> Raw:
    """``classes`` (lowercase names of ``CLASSES``), cut to ``FIELDS``. Raises ``NotServed``
    (read over XML-RPC instead) or the error of the first class that failed.

    Two connections take turns with one request always ahead: while poolctl parses a reply,
    XAPI is already producing the next one, which waits in the socket. Parsing one reply at a
    time keeps the peak memory to one class's full records (~90 MB for 10,000 VMs)."""
    classes = sorted(classes, key=lambda c: ORDER.index(c) if c in ORDER else len(ORDER))
    out: Raw = {}
    if not classes:
        return out
    with _Call(connector) as first, _Call(connector) as second:
        calls = (first, second)
        calls[0].send(f"{CLASSES[classes[0]]}.get_all_records", [handle])
        for i, cls in enumerate(classes):
            if i + 1 < len(classes):
                calls[(i + 1) % 2].send(f"{CLASSES[classes[i + 1]]}.get_all_records", [handle])
            result = calls[i % 2].receive()
            if not isinstance(result, dict):
                raise xmlrpc.client.ResponseError(
                    f"{CLASSES[cls]}.get_all_records over JSON-RPC returned {type(result).__name__}"
                )
            fields = FIELDS[cls]
            out[cls] = {ref: {k: rec[k] for k in fields if k in rec} for ref, rec in result.items()}
            del result
    return out


class _Call:
    """One keep-alive connection: ``send`` a call, later ``receive`` its result."""

    def __init__(self, connector: Connector):
        self._connector = connector
        self._conn: http.client.HTTPConnection | None = None

    def __enter__(self) -> _Call:
        return self

    def __exit__(self, *_exc: object) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def send(self, method: str, params: list[str]) -> None:
        if self._conn is None:
            self._conn = self._connector.http_connection()
        body = json.dumps({"jsonrpc": "2.0", "method": method, "params": params, "id": next(_ids)})
        self._conn.request("POST", PATH, body.encode(), {"Content-Type": "application/json", "User-Agent": "poolctl"})

    def receive(self) -> object:
        assert self._conn is not None, "receive() before send()"
        response = self._conn.getresponse()
        data = response.read()
        if response.status in NOT_SERVED:
            raise NotServed(f"HTTP {response.status}")
        if response.status != 200:
            raise xmlrpc.client.ProtocolError(self._connector.where + PATH, response.status, response.reason, {})
        try:
            reply = pydantic_core.from_json(data)
        except ValueError:
            raise NotServed("the reply is not JSON") from None
        del data
        if not isinstance(reply, dict) or ("result" not in reply and "error" not in reply):
            raise NotServed("the reply is not a JSON-RPC response")
        error = reply.get("error")
        if error is not None:
            raise XenAPI.Failure(_details(error))
        return reply.get("result")


def _details(error: object) -> list[str]:
    """XAPI's error as the SDK's ``Failure.details``: [code, *params].
    JSON-RPC v2 sends {code, message: CODE, data: [params]}; v1 the list itself."""
    if isinstance(error, dict):
        data = error.get("data")
        params = data if isinstance(data, list) else ([] if data is None else [data])
        return [str(error.get("message", "")), *(str(p) for p in params)]
    if isinstance(error, list):
        return [str(p) for p in error]
    return [str(error)]
