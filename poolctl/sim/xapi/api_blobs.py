"""Blobs (xapi_blob.ml): blob.create/destroy and <class>.create_new_blob, which names the new
blob in the object's `blobs` map. Contents travel over HTTP /blob (blobs.py)."""

from __future__ import annotations

from . import blobs, datamodel
from .registry import Context, api
from .schema import EPOCH, new_record


@api("blob.create", "mime_type", "public")
def blob_create(ctx: Context, mime_type: str, public: object) -> str:
    is_public = datamodel.coerce("bool", public, "blob", "public")
    record = new_record(
        "blob",
        mime_type=str(mime_type) or "application/octet-stream",
        public=is_public,
        size=0,
        last_updated=EPOCH,
    )
    return ctx.db.create("blob", record)


@api("blob.destroy", "self")
def blob_destroy(ctx: Context, self: str) -> None:
    """xapi removes the name from every VM's blobs map; db_gc drops the other classes' dangling
    entries, which the simulator does at once."""
    db = ctx.db
    with db.lock:
        db.get("blob", self)
        for cls in ("pool", "host", "VM", "SR", "network"):
            for ref, rec in db.tables[cls].items():
                if self in rec["blobs"].values():
                    db.set(cls, ref, blobs={k: v for k, v in rec["blobs"].items() if v != self})
        blobs.contents(ctx.pool).pop(self, None)
        db.destroy("blob", self)


def _register(cls: str, param: str) -> None:
    def create_new_blob(ctx: Context, obj: str, name: str, mime_type: str, public: object) -> str:
        with ctx.db.lock:
            ctx.db.get(cls, obj)
            blob = blob_create(ctx, mime_type, public)
            ctx.db.set_key(cls, obj, "blobs", str(name), blob)
            return blob

    api(f"{cls}.create_new_blob", param, "name", "mime_type", "public")(create_new_blob)


for _cls, _param in (("pool", "pool"), ("host", "host"), ("VM", "vm"), ("SR", "sr"), ("network", "network")):
    _register(_cls, _param)
