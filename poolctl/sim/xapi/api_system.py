"""system.*: XML-RPC introspection as xapi answers it (gen_server.ml). Only system.listMethods
exists, without a session: every call name of the API, sync spelling. system.methodHelp and
system.methodSignature are not xapi calls: they answer MESSAGE_METHOD_UNKNOWN like any other
unknown name (as does the simulator, by not registering them)."""

from __future__ import annotations

from .registry import Context, api, known


@api("system.listMethods", session=False, async_ok=False)
def list_methods(ctx: Context) -> list[str]:
    return known()
