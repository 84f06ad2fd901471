"""RPC dispatch and envelopes: XML-RPC {Status, Value | ErrorDescription}, JSON-RPC v1 and v2."""

from __future__ import annotations

import json
import logging
import threading
import xmlrpc.client
from collections import Counter
from dataclasses import replace
from typing import TYPE_CHECKING

from . import dr_sessions, errors, wire
from .registry import Context, canonical, resolve

if TYPE_CHECKING:
    from .state import PoolState

log = logging.getLogger(__name__)


class CallStats(Counter[str]):
    """Calls served per method name (canonical spelling, `Async.` kept). Thread-safe increments."""

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()

    def record(self, method: str) -> None:
        with self._lock:
            self[method] += 1

    def snapshot(self) -> Counter[str]:
        with self._lock:
            return Counter(self)

    def reset(self) -> None:
        with self._lock:
            self.clear()


class Dispatcher:
    def __init__(self, pool: PoolState) -> None:
        self.pool = pool
        self.stats = CallStats()
        self.closing = threading.Event()
        # the request being served on this thread (its User-Agent, for session logins); call()
        # keeps its (method, params, host) signature
        self._request = threading.local()

    def call(self, method: str, params: list[object], host: str) -> object:
        name, is_async = canonical(method)
        self.stats.record(f"Async.{name}" if is_async else name)
        if name.startswith("system.isAlive:"):  # gen_server.ml: echoes its first parameter
            return params[0] if params else ""
        call, is_async = resolve(method)
        call.check_count(name, params)  # then the session, then async support: xapi's order
        ctx = Context(self.pool, host, closing=self.closing, user_agent=getattr(self._request, "user_agent", None))
        args = list(params)
        if call.needs_session:
            ctx.session = self.pool.sessions.check(args.pop(0))
            other = dr_sessions.foreign(self.pool).get(ctx.session)
            if other is not None:  # a session on another database (VDI.open_database)
                dr_sessions.assert_allowed(name)
                ctx = replace(ctx, pool=other, host=other.master)
            if host != self.pool.master and not self.pool.sessions.is_local(ctx.session):
                # session_check.ml: an external session used on a member (Non_master_login_on_slave)
                raise errors.host_is_slave(self.pool.db.field("host", self.pool.master, "address"))
        if is_async and not call.async_ok:
            raise errors.XapiError("Fault", f"No async mode for this operation (rpc: {name})")
        log.debug("call %s", name)
        if is_async:
            return self.pool.tasks.spawn(call.name, ctx.host, lambda task: call.fn(replace(ctx, task=task), *args))
        result = call.fn(ctx, *args)
        return "" if result is None else result  # void travels as an empty string

    # -- XML-RPC ----------------------------------------------------------------------------
    def xmlrpc(self, body: bytes, host: str, user_agent: str | None = None) -> bytes:
        self._request.user_agent = user_agent
        try:
            params, method = xmlrpc.client.loads(body, use_builtin_types=False)
        except Exception as exc:
            raise errors.HttpError(f"Xmlrpc.Parse_error: {exc}") from None
        if not method:
            raise errors.HttpError("Xmlrpc.Parse_error: no methodName")
        try:
            if method == "system.listMethods":  # api_server.ml: the bare array, no {Status, Value}
                return wire.xml_bare(self.call(method, list(params), host))
            return wire.xml_success(self.call(method, list(params), host))
        except errors.XapiError as exc:
            return wire.xml_failure(exc.description)
        except Exception as exc:
            log.exception("internal error in %s", method)
            return wire.xml_failure(errors.internal_error(f"{type(exc).__name__}: {exc}").description)

    # -- JSON-RPC -----------------------------------------------------------------------------
    def jsonrpc(self, body: bytes, host: str, user_agent: str | None = None) -> bytes:
        self._request.user_agent = user_agent
        try:
            req = json.loads(body)
            method, params, req_id = req["method"], req.get("params", []), req["id"]
            if not isinstance(method, str) or not isinstance(params, list):
                raise ValueError("method must be a string and params an array")
        except Exception as exc:
            raise errors.HttpError(f"Jsonrpc.Malformed_method_request: {exc}") from None
        v2 = req.get("jsonrpc") == "2.0"
        try:
            result = self.call(method, params, host)
        except errors.XapiError as exc:
            if v2:
                return wire.json_dumps(
                    {"jsonrpc": "2.0", "error": {"code": 1, "message": exc.code, "data": exc.params}, "id": req_id}
                )
            return wire.json_dumps({"result": None, "error": exc.description, "id": req_id})
        except Exception as exc:
            log.exception("internal error in %s", method)
            err = errors.internal_error(f"{type(exc).__name__}: {exc}")
            if v2:
                return wire.json_dumps(
                    {"jsonrpc": "2.0", "error": {"code": 1, "message": err.code, "data": err.params}, "id": req_id}
                )
            return wire.json_dumps({"result": None, "error": err.description, "id": req_id})
        return wire.json_result(result, req_id, v2)
