"""Blob contents over HTTP /blob, as xapi_blob.ml's handler serves them: GET returns the bytes
with the blob's mime type (a public blob needs no session), PUT stores them and sets size and
last_updated. The contents live in memory (xapi keeps them in /var/lib/xcp/blobs)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .schema import now

if TYPE_CHECKING:
    from .state import PoolState


def contents(pool: PoolState) -> dict[str, bytes]:
    return pool.settings.setdefault("blob_contents", {})  # type: ignore[return-value]


def _blob(pool: PoolState, query: dict[str, str]) -> str | None:
    db = pool.db
    ref = query.get("ref")
    if ref is not None:
        return ref if db.exists("blob", ref) else None
    uuid = query.get("uuid", "")
    found = db.find("blob", lambda r: r["uuid"] == uuid)
    return found[0] if found else None


def handle(pool: PoolState, method: str, query: dict[str, str], body: bytes) -> tuple[int, bytes, str]:
    """(HTTP status, body, content type) for a GET or PUT on /blob."""
    if "ref" not in query and "uuid" not in query:
        return 400, b"", "text/plain"
    db = pool.db
    with db.lock:
        blob = _blob(pool, query)
        if blob is None:
            return 404, b"Unknown reference\n", "text/plain"
        rec = db.get("blob", blob)
        public_get = method == "GET" and rec["public"]
        if not public_get and not pool.sessions.valid(query.get("session_id")):
            return 403, b"Forbidden\n", "text/plain"
        if method == "GET":
            data = contents(pool).get(blob)
            if data is None:  # never written: xapi finds no file
                return 404, b"", "text/plain"
            return 200, data, str(rec["mime_type"])
        contents(pool)[blob] = body
        db.set("blob", blob, size=len(body), last_updated=now())
        return 200, b"", "text/plain"
