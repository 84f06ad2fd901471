"""The network interfaces a simulated host physically has (what xapi_pif.ml's make_tables reads
from the host as device_to_mac_table): every physical PIF the pool was built with, kept after
PIF.forget so that PIF.scan or PIF.introduce can bring it back, as on a real host."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .schema import new_record

if TYPE_CHECKING:
    from .state import PoolState


def host_nics(pool: PoolState, host: str) -> dict[str, tuple[str, int]]:
    """device -> (MAC, MTU) of the host's NICs."""
    table: dict[str, dict[str, tuple[str, int]]] = pool.settings.setdefault("nics", {})  # type: ignore[assignment]
    if host not in table:
        db = pool.db
        table[host] = {
            rec["device"]: (rec["MAC"], int(rec["MTU"]))
            for rec in (db.get("PIF", p) for p in db.get("host", host)["PIFs"])
            if rec["physical"]
        }
    return table[host]


def introduce(pool: PoolState, host: str, device: str, mac: str, managed: bool) -> str:
    """xapi_pif.introduce_internal for a physical NIC: a new network (xapi names it after the
    device) unless one already has this device's bridge, and a PIF on it."""
    db = pool.db
    _, mtu = host_nics(pool, host)[device]
    bridge = f"xenbr{device[3:]}" if device.startswith("eth") else f"xapi{device}"
    nets = db.find("network", lambda r: r["bridge"] == bridge)
    if nets:
        network = nets[0]
    else:
        network = db.create(
            "network",
            new_record("network", name_label=f"Pool-wide network associated with {device}", bridge=bridge, MTU=mtu),
        )
    pif = db.create(
        "PIF",
        new_record(
            "PIF",
            device=device,
            network=network,
            host=host,
            MAC=mac,
            MTU=mtu,
            physical=True,
            managed=managed,
            ip_configuration_mode="None",
            netmask="",
            currently_attached=False,
        ),
    )
    db.add_to("network", network, "PIFs", pif)
    db.add_to("host", host, "PIFs", pif)
    return pif


def forget(pool: PoolState, pif: str) -> None:
    db = pool.db
    rec = db.get("PIF", pif)
    if rec["physical"]:
        host_nics(pool, rec["host"])  # remember the NIC before its PIF goes
    if db.exists("network", rec["network"]):
        db.remove_from("network", rec["network"], "PIFs", pif)
    if db.exists("host", rec["host"]):
        db.remove_from("host", rec["host"], "PIFs", pif)
    db.destroy("PIF", pif)
