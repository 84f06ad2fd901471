"""Further VIF, network, PIF, message and session calls: IP locking and configuration,
network purposes, PIF plug/unplug and IP reconfiguration, message.destroy_many,
session.change_password and logout_subject_identifier (xapi_vif.ml, xapi_pif.ml, ...)."""

from __future__ import annotations

import hmac

from . import datamodel, errors
from .registry import Context, api


def _set_add(ctx: Context, cls: str, ref: str, field: str, value: object, add: bool) -> None:
    item = str(value)
    with ctx.db.lock:
        current = ctx.db.field(cls, ref, field)
        new = ([*current, item] if item not in current else current) if add else [x for x in current if x != item]
        ctx.db.set(cls, ref, **{field: list(new)})


for _v in ("4", "6"):
    api(f"VIF.add_ipv{_v}_allowed", "self", "value")(
        lambda ctx, self, value, _f=f"ipv{_v}_allowed": _set_add(ctx, "VIF", self, _f, value, True)
    )
    api(f"VIF.remove_ipv{_v}_allowed", "self", "value")(
        lambda ctx, self, value, _f=f"ipv{_v}_allowed": _set_add(ctx, "VIF", self, _f, value, False)
    )


@api("VIF.configure_ipv4", "self", "mode", "address", "gateway")
def configure_ipv4(ctx: Context, self: str, mode: str, address: str, gateway: str) -> None:
    datamodel.coerce("enum vif_ipv4_configuration_mode", mode, "VIF", "mode")
    addresses = [str(address)] if address else []
    ctx.db.set("VIF", self, ipv4_configuration_mode=str(mode), ipv4_addresses=addresses, ipv4_gateway=str(gateway))


@api("VIF.configure_ipv6", "self", "mode", "address", "gateway")
def configure_ipv6(ctx: Context, self: str, mode: str, address: str, gateway: str) -> None:
    datamodel.coerce("enum vif_ipv6_configuration_mode", mode, "VIF", "mode")
    addresses = [str(address)] if address else []
    ctx.db.set("VIF", self, ipv6_configuration_mode=str(mode), ipv6_addresses=addresses, ipv6_gateway=str(gateway))


def _trunk(ctx: Context, vif: str, value: object, add: bool) -> None:
    vlan = datamodel.coerce("int", value, "VIF", "value")
    with ctx.db.lock:
        current = ctx.db.field("VIF", vif, "trunks")
        new = sorted({*current, vlan}) if add else [t for t in current if t != vlan]
        ctx.db.set("VIF", vif, trunks=new)


@api("VIF.add_trunks", "self", "value")
def add_trunks(ctx: Context, self: str, value: object) -> None:
    _trunk(ctx, self, value, True)


@api("VIF.remove_trunks", "self", "value")
def remove_trunks(ctx: Context, self: str, value: object) -> None:
    _trunk(ctx, self, value, False)


@api("network.add_purpose", "self", "value")
def add_purpose(ctx: Context, self: str, value: str) -> None:
    datamodel.coerce("enum network_purpose", value, "network", "value")
    _set_add(ctx, "network", self, "purpose", value, True)


@api("network.remove_purpose", "self", "value")
def remove_purpose(ctx: Context, self: str, value: str) -> None:
    _set_add(ctx, "network", self, "purpose", value, False)


@api("PIF.plug", "self")
def pif_plug(ctx: Context, self: str) -> None:
    ctx.db.set("PIF", self, currently_attached=True)


@api("PIF.unplug", "self")
def pif_unplug(ctx: Context, self: str) -> None:
    with ctx.db.lock:
        rec = ctx.db.get("PIF", self)
        if rec["management"]:
            raise errors.XapiError("PIF_IS_MANAGEMENT_INTERFACE", self)
        if rec["disallow_unplug"]:
            raise errors.XapiError("PIF_DOES_NOT_ALLOW_UNPLUG", self)
        ctx.db.set("PIF", self, currently_attached=False)


@api("PIF.reconfigure_ip", "self", "mode", "IP", "netmask", "gateway", "DNS")
def reconfigure_ip(ctx: Context, self: str, mode: str, IP: str, netmask: str, gateway: str, DNS: str) -> None:
    datamodel.coerce("enum ip_configuration_mode", mode, "PIF", "mode")
    if mode == "Static" and not IP:
        raise errors.XapiError("INVALID_IP_ADDRESS_SPECIFIED", "IP")
    ctx.db.set(
        "PIF",
        self,
        ip_configuration_mode=str(mode),
        IP=str(IP),
        netmask=str(netmask),
        gateway=str(gateway),
        DNS=str(DNS),
    )


@api("PIF.reconfigure_ipv6", "self", "mode", "IPv6", "gateway", "DNS")
def reconfigure_ipv6(ctx: Context, self: str, mode: str, IPv6: str, gateway: str, DNS: str) -> None:
    datamodel.coerce("enum ipv6_configuration_mode", mode, "PIF", "mode")
    ctx.db.set(
        "PIF",
        self,
        ipv6_configuration_mode=str(mode),
        IPv6=[str(IPv6)] if IPv6 else [],
        ipv6_gateway=str(gateway),
        DNS=str(DNS),
    )


@api("PIF.set_primary_address_type", "self", "primary_address_type")
def set_primary_address_type(ctx: Context, self: str, primary_address_type: str) -> None:
    datamodel.coerce("enum primary_address_type", primary_address_type, "PIF", "primary_address_type")
    ctx.db.set("PIF", self, primary_address_type=str(primary_address_type))


@api("PIF.set_property", "self", "name", "value")
def set_property(ctx: Context, self: str, name: str, value: str) -> None:
    with ctx.db.lock:
        props = ctx.db.field("PIF", self, "properties")
        if name not in props:
            raise errors.XapiError("INVALID_VALUE", "name", name)
        ctx.db.set("PIF", self, properties={**props, str(name): str(value)})


@api("message.destroy_many", "messages")
def destroy_many(ctx: Context, messages: object) -> None:
    if not isinstance(messages, (list, tuple)):
        raise errors.field_type_error("messages")
    for ref in messages:
        ctx.pool.messages.destroy(str(ref))


@api("session.change_password", "old_pwd", "new_pwd")
def change_password(ctx: Context, old_pwd: str, new_pwd: str) -> None:
    """xapi_session.change_password for the local superuser: the old password must match."""
    if not hmac.compare_digest(str(old_pwd).encode(), ctx.pool.password.encode()):
        raise errors.XapiError("CHANGE_PASSWORD_REJECTED", "Authentication failure")
    ctx.pool.password = str(new_pwd)


@api("session.logout_subject_identifier", "subject_identifier")
def logout_subject_identifier(ctx: Context, subject_identifier: str) -> None:
    """No external authentication: no session belongs to a subject identifier."""
