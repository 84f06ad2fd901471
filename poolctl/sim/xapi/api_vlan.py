"""VLANs and NIC introduction (xapi_vlan.ml, xapi_pif.ml, xapi_pool.ml): a VLAN is a tagged
physical PIF, an untagged PIF on the VLAN's network (device of the tagged one, MAC
fe:ff:ff:ff:ff:ff, VLAN = tag) and a VLAN record joining them; PIF.forget / introduce / scan
drop and bring back a physical NIC's PIF (the host keeps the NIC, nics.py)."""

from __future__ import annotations

from . import datamodel, errors, nics
from .registry import Context, api
from .schema import new_record

VLAN_MAC = "fe:ff:ff:ff:ff:ff"  # xapi_vlan.ml: the dummy MAC of a VLAN's untagged PIF


def _assert_no_other_local_pifs(ctx: Context, host: str, network: str) -> None:
    others = ctx.db.find("PIF", lambda r: r["network"] == network and r["host"] == host)
    if others:
        raise errors.XapiError("NETWORK_ALREADY_CONNECTED", host, others[0])


@api("VLAN.create", "tagged_PIF", "tag", "network")
def vlan_create(ctx: Context, tagged_PIF: str, tag: object, network: str) -> str:
    vlan_tag = datamodel.coerce("int", tag, "VLAN", "tag")
    db = ctx.db
    with db.lock:
        net = db.get("network", network)
        if not net["managed"]:
            raise errors.XapiError("NETWORK_UNMANAGED", network)
        pif = db.get("PIF", tagged_PIF)
        host = pif["host"]
        _assert_no_other_local_pifs(ctx, host, network)
        if not pif["managed"]:
            raise errors.XapiError("PIF_UNMANAGED", tagged_PIF)
        if pif["bond_slave_of"] != datamodel.NULL:
            raise errors.XapiError("CANNOT_ADD_VLAN_TO_BOND_SLAVE", tagged_PIF)
        if pif["VLAN_master_of"] != datamodel.NULL:
            raise errors.XapiError("PIF_IS_VLAN", tagged_PIF)
        if not 0 <= vlan_tag <= 4094:
            raise errors.XapiError("VLAN_TAG_INVALID", vlan_tag)
        if db.find("VLAN", lambda r: r["tagged_PIF"] == tagged_PIF and r["tag"] == vlan_tag):
            raise errors.XapiError("PIF_VLAN_EXISTS", pif["device"])
        vlan = db.create("VLAN", new_record("VLAN", tagged_PIF=tagged_PIF, tag=vlan_tag))
        untagged = db.create(
            "PIF",
            new_record(
                "PIF",
                device=pif["device"],
                network=network,
                host=host,
                MAC=VLAN_MAC,
                MTU=pif["MTU"],
                VLAN=vlan_tag,
                metrics=pif["metrics"],
                physical=False,
                currently_attached=False,
                ip_configuration_mode="None",
                netmask="",
                VLAN_master_of=vlan,
                primary_address_type=pif["primary_address_type"],
                managed=True,
            ),
        )
        db.set("VLAN", vlan, untagged_PIF=untagged)
        db.add_to("PIF", tagged_PIF, "VLAN_slave_of", vlan)
        db.add_to("network", network, "PIFs", untagged)
        db.add_to("host", host, "PIFs", untagged)
        db.set("PIF", untagged, currently_attached=True)  # Xapi_pif.plug
        return vlan


@api("VLAN.destroy", "self")
def vlan_destroy(ctx: Context, self: str) -> None:
    db = ctx.db
    with db.lock:
        rec = db.get("VLAN", self)
        untagged = rec["untagged_PIF"]
        if not db.exists("PIF", untagged):  # an orphaned record
            db.destroy("VLAN", self)
            return
        pif = db.get("PIF", untagged)
        if pif["bond_slave_of"] != datamodel.NULL or pif["bond_master_of"]:
            raise errors.XapiError("PIF_ALREADY_BONDED", untagged)
        if pif["management"]:  # assert_not_slave_management_pif, then Xapi_pif.unplug's own check
            raise errors.XapiError("PIF_IS_MANAGEMENT_INTERFACE", untagged)
        if pif["VLAN"] < 0:
            raise errors.XapiError("PIF_IS_PHYSICAL")
        tagged = rec["tagged_PIF"]
        if db.exists("PIF", tagged):
            db.remove_from("PIF", tagged, "VLAN_slave_of", self)
        db.destroy("VLAN", self)
        nics.forget(ctx.pool, untagged)


@api("PIF.create_VLAN", "device", "network", "host", "VLAN")
def pif_create_vlan(ctx: Context, device: str, network: str, host: str, VLAN: object) -> str:
    db = ctx.db
    with db.lock:
        base = [
            p
            for p in db.get("host", host)["PIFs"]
            if db.get("PIF", p)["device"] == device and db.get("PIF", p)["VLAN"] == -1
        ]
        if not base:
            raise errors.XapiError("INVALID_VALUE", "device", device)
        vlan = vlan_create(ctx, base[0], VLAN, network)
        return str(db.field("VLAN", vlan, "untagged_PIF"))


@api("PIF.destroy", "self")
def pif_destroy(ctx: Context, self: str) -> None:
    with ctx.db.lock:
        rec = ctx.db.get("PIF", self)
        if rec["VLAN"] < 0:
            raise errors.XapiError("PIF_IS_PHYSICAL")
        vlan_destroy(ctx, rec["VLAN_master_of"])


@api("pool.create_VLAN", "device", "network", "VLAN")
def pool_create_vlan(ctx: Context, device: str, network: str, VLAN: object) -> list[str]:
    """One VLAN PIF per host; any failure destroys those made so far and is raised."""
    created: list[str] = []
    with ctx.db.lock:
        for host in ctx.db.refs("host"):
            try:
                created.append(pif_create_vlan(ctx, device, network, host, VLAN))
            except errors.XapiError:
                for pif in created:
                    pif_destroy(ctx, pif)
                raise
        return created


@api("pool.create_VLAN_from_PIF", "pif", "network", "VLAN")
def pool_create_vlan_from_pif(ctx: Context, pif: str, network: str, VLAN: object) -> list[str]:
    """The VLAN on every live host's PIF of the given PIF's network (bonds included)."""
    db = ctx.db
    created: list[str] = []
    with db.lock:
        base_net = db.get("PIF", pif)["network"]
        for base in db.get("network", base_net)["PIFs"]:
            host = db.get("PIF", base)["host"]
            if not db.get("host_metrics", db.get("host", host)["metrics"])["live"]:
                continue
            try:
                created.append(vlan_create(ctx, base, VLAN, network))
            except errors.XapiError:
                for vlan in created:
                    vlan_destroy(ctx, vlan)
                raise
        return [db.get("VLAN", v)["untagged_PIF"] for v in created]


# -- NICs --------------------------------------------------------------------------------------
@api("PIF.forget", "self")
def pif_forget(ctx: Context, self: str) -> None:
    db = ctx.db
    with db.lock:
        rec = db.get("PIF", self)
        if rec["management"]:
            raise errors.XapiError("PIF_IS_MANAGEMENT_INTERFACE", self)
        if rec["bond_slave_of"] != datamodel.NULL or rec["bond_master_of"]:
            raise errors.XapiError("PIF_ALREADY_BONDED", self)
        if rec["VLAN_slave_of"]:
            raise errors.XapiError("PIF_VLAN_STILL_EXISTS", self)
        if rec["VLAN"] != -1:
            raise errors.XapiError("PIF_VLAN_STILL_EXISTS", self)
        if rec["tunnel_access_PIF_of"] or rec["tunnel_transport_PIF_of"]:
            raise errors.XapiError("PIF_TUNNEL_STILL_EXISTS", self)
        if rec["sriov_physical_PIF_of"] or rec["sriov_logical_PIF_of"]:
            raise errors.XapiError("PIF_SRIOV_STILL_EXISTS", self)
        nics.forget(ctx.pool, self)


@api("PIF.introduce", "host", "MAC", "device", "managed")
def pif_introduce(ctx: Context, host: str, MAC: str, device: str, managed: object) -> str:
    is_managed = datamodel.coerce("bool", managed, "PIF", "managed")
    db = ctx.db
    with db.lock:
        db.get("host", host)
        table = nics.host_nics(ctx.pool, host)
        mac = str(MAC).lower() or table.get(str(device), ("", 0))[0]
        if not _valid_mac(mac):
            raise errors.XapiError("MAC_INVALID", mac)
        if any(db.get("PIF", p)["device"] == device for p in db.get("host", host)["PIFs"]):
            raise errors.XapiError("DUPLICATE_PIF_DEVICE_NAME", device)
        if table.get(str(device), ("", 0))[0].lower() != mac:
            raise errors.XapiError(
                "COULD_NOT_FIND_NETWORK_INTERFACE_WITH_SPECIFIED_DEVICE_NAME_AND_MAC_ADDRESS", device, mac
            )
        return nics.introduce(ctx.pool, host, str(device), table[str(device)][0], is_managed)


def _valid_mac(mac: str) -> bool:
    parts = mac.split(":")
    return len(parts) == 6 and all(len(p) == 2 and all(c in "0123456789abcdef" for c in p) for p in parts)


@api("PIF.scan", "host")
def pif_scan(ctx: Context, host: str) -> None:
    """Every NIC of the host without a PIF gets one again (xapi_pif.scan)."""
    db = ctx.db
    with db.lock:
        present = {db.get("PIF", p)["device"] for p in db.get("host", host)["PIFs"]}
        for device, (mac, _) in sorted(nics.host_nics(ctx.pool, host).items()):
            if device not in present:
                nics.introduce(ctx.pool, host, device, mac, True)


@api(
    "PIF.db_introduce",
    "device",
    "network",
    "host",
    "MAC",
    "MTU",
    "VLAN",
    "physical",
    "ip_configuration_mode",
    "IP",
    "netmask",
    "gateway",
    "DNS",
    "bond_slave_of",
    "VLAN_master_of",
    "management",
    "other_config",
    "disallow_unplug",
    "ipv6_configuration_mode",
    "IPv6",
    "ipv6_gateway",
    "primary_address_type",
    "managed",
    "properties",
)
def pif_db_introduce(ctx: Context, *args: object) -> str:
    """xapi_pif.pool_introduce: the record as given (bond_slave_of is ignored), unplugged."""
    message = datamodel.messages("PIF")["db_introduce"]
    values = {name: datamodel.coerce(ty, v, "PIF", name) for (ty, name), v in zip(message.params, args, strict=True)}
    values.pop("bond_slave_of")
    db = ctx.db
    with db.lock:
        db.get("host", values["host"])
        db.get("network", values["network"])
        pif = db.create("PIF", new_record("PIF", **values, currently_attached=False))
        db.add_to("network", values["network"], "PIFs", pif)
        db.add_to("host", values["host"], "PIFs", pif)
        return pif


@api("PIF.db_forget", "self")
def pif_db_forget(ctx: Context, self: str) -> None:
    with ctx.db.lock:
        nics.forget(ctx.pool, self)
