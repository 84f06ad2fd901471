"""Calling XAPI's JSON-RPC endpoint with plain urllib: how a test gives a VM a name XML-RPC
cannot carry (XML 1.0 has no ESC or BEL), the way any JSON-RPC client could."""

from __future__ import annotations

import json
import urllib.request


class JsonRpc:
    def __init__(self, url: str, username: str, password: str):
        self.url = url.rstrip("/") + "/jsonrpc"
        self.session = self.call("session.login_with_password", username, password, "1.0", "poolctl-tests")

    def call(self, method: str, *params: object) -> object:
        body = json.dumps({"jsonrpc": "2.0", "method": method, "params": list(params), "id": 1}).encode()
        req = urllib.request.Request(self.url, data=body, headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as resp:
            reply = json.loads(resp.read())
        if reply.get("error"):
            raise AssertionError(f"{method}: {reply['error']}")
        return reply["result"]

    def api(self, method: str, *params: object) -> object:
        """A call that takes the session first, as every XAPI call but login does."""
        return self.call(method, self.session, *params)

    def rename_vm(self, old: str, new: str) -> str:
        (ref,) = self.api("VM.get_by_name_label", old)  # type: ignore[misc]
        self.api("VM.set_name_label", ref, new)
        return str(ref)
