"""Objects XAPI creates beside a host or a running domain: host_cpu records (one per physical
CPU, from the host's cpu_info) and consoles (xapi_xenops: an RFB console for an HVM guest, a
vt100 one for a PV domain, destroyed when the domain goes away)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .db import NULL_REF
from .schema import new_record

if TYPE_CHECKING:
    from .db import Database


def create_host_cpus(db: Database, host: str, count: int) -> list[str]:
    info = db.get("host", host)["cpu_info"]
    refs = [
        db.create(
            "host_cpu",
            new_record(
                "host_cpu",
                host=host,
                number=i,
                vendor=info.get("vendor", ""),
                speed=int(float(info.get("speed", "0"))),
                modelname=info.get("modelname", ""),
                family=int(info.get("family", "0")),
                model=int(info.get("model", "0")),
                stepping=info.get("stepping", ""),
                flags=info.get("flags", ""),
                features=info.get("features", ""),
                utilisation=0.02,
            ),
        )
        for i in range(count)
    ]
    db.set("host", host, host_CPUs=refs)
    return refs


def create_console(db: Database, vm: str) -> str:
    with db.lock:
        rec = db.get("VM", vm)
        host = rec["resident_on"]
        address = db.get("host", host)["address"] if host != NULL_REF and db.exists("host", host) else ""
        hvm = rec["domain_type"] != "pv"
        ref = db.create("console", new_record("console", protocol="rfb" if hvm else "vt100", VM=vm))
        uuid = db.get("console", ref)["uuid"]
        db.set("console", ref, location=f"https://{address}/console?uuid={uuid}")
        db.set("VM", vm, consoles=[*rec["consoles"], ref])
        return ref


def destroy_consoles(db: Database, vm: str) -> None:
    with db.lock:
        for ref in db.get("VM", vm)["consoles"]:
            if db.exists("console", ref):
                db.destroy("console", ref)
        db.set("VM", vm, consoles=[])
