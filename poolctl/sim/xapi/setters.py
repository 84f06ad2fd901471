"""Field setters with XAPI's checks (ocaml/xapi/xapi_vm.ml, xapi_vm_memory_constraints.ml).

`set_field` is what every setter goes through, generic (api_common) or explicit; the checks
below are the ones XAPI makes for particular fields. The explicit memory calls
(set_memory_limits, set_memory_static_range, ...) are registered here too.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from . import datamodel, errors, lifecycle
from .registry import Context, api

_VCPUS = "VCPU values must satisfy: 0 < VCPUs_at_startup ≤ VCPUs_max"
# the VM operation XAPI's lifecycle checks before each of these setters (its power states there)
_OPERATION = {
    "VCPUs_max": "changing_VCPUs",
    "VCPUs_at_startup": "changing_VCPUs",
    "memory_static_max": "changing_static_range",
    "memory_static_min": "changing_static_range",
    "memory_dynamic_max": "changing_dynamic_range",
    "memory_dynamic_min": "changing_dynamic_range",
    "HVM_shadow_multiplier": "changing_shadow_memory",
    "NVRAM": "changing_NVRAM",
}


def explicit(cls: str, name: str) -> bool:
    """XAPI has an explicit set_<name>(self, value) for some fields it declares read-only."""
    m = datamodel.messages(cls).get(f"set_{name}")
    return m is not None and not m.implicit and [p for _, p in m.params][1:] in (["value"], ["x"])


def _is_dom0(rec: dict[str, Any]) -> bool:
    return bool(rec["is_control_domain"]) and rec["domid"] == 0


def _vcpus_max(ctx: Context, vm: str, rec: dict[str, Any], value: int) -> None:
    if _is_dom0(rec):
        raise errors.internal_error("set_VCPUs_max is not allowed on dom0")
    if value < 1 or value < rec["VCPUs_at_startup"]:
        raise errors.XapiError("INVALID_VALUE", _VCPUS, value)


def _vcpus_at_startup(ctx: Context, vm: str, rec: dict[str, Any], value: int) -> None:
    if _is_dom0(rec):
        raise errors.operation_not_allowed("set_VCPUs_at_startup is not allowed on dom0")
    if value < 1 or value > rec["VCPUs_max"]:
        raise errors.XapiError("INVALID_VALUE", _VCPUS, value)


def assert_memory_valid(rec: dict[str, Any], **new: int) -> None:
    """Vm_memory_constraints.assert_valid_for_current_context."""
    c = {k: int(rec[f"memory_{k}"]) for k in ("static_min", "dynamic_min", "dynamic_max", "static_max")}
    c.update(new)
    if rec["is_control_domain"]:
        if not (c["static_min"] <= c["dynamic_min"] == c["dynamic_max"] == c["static_max"]):
            raise errors.XapiError("MEMORY_CONSTRAINT_VIOLATION_MAXPIN", "control domain")
    elif not (c["static_min"] <= c["dynamic_min"] <= c["dynamic_max"] <= c["static_max"]):
        raise errors.XapiError("MEMORY_CONSTRAINT_VIOLATION_ORDER")


def _memory(key: str) -> Callable[[Context, str, dict[str, Any], int], None]:
    def check(ctx: Context, vm: str, rec: dict[str, Any], value: int) -> None:
        assert_memory_valid(rec, **{key: value})

    return check


def _shadow(ctx: Context, vm: str, rec: dict[str, Any], value: float) -> None:
    if value < 1.0:
        raise errors.XapiError("INVALID_VALUE", "multiplier", value)  # xapi_vm.set_HVM_shadow_multiplier


def _ssh_timeout(ctx: Context, host: str, rec: dict[str, Any], value: int) -> None:
    if not 0 <= value <= 172800:  # xapi_host.set_ssh_enabled_timeout: at most two days
        raise errors.XapiError("INVALID_VALUE", "ssh_enabled_timeout", value)


_CHECKS: dict[tuple[str, str], Callable[..., None]] = {
    ("host", "ssh_enabled_timeout"): _ssh_timeout,
    ("VM", "VCPUs_max"): _vcpus_max,
    ("VM", "VCPUs_at_startup"): _vcpus_at_startup,
    ("VM", "memory_static_max"): _memory("static_max"),
    ("VM", "memory_static_min"): _memory("static_min"),
    ("VM", "memory_dynamic_max"): _memory("dynamic_max"),
    ("VM", "memory_dynamic_min"): _memory("dynamic_min"),
    ("VM", "HVM_shadow_multiplier"): _shadow,
}


def set_field(ctx: Context, cls: str, ref: str, f: datamodel.Field, value: object) -> None:
    db = ctx.db
    with db.lock:
        rec = db.get(cls, ref)
        if cls == "VM" and f.name in _OPERATION:
            _assert_power(ctx, ref, rec, _OPERATION[f.name])
        check = _CHECKS.get((cls, f.name))
        if check is not None:
            check(ctx, ref, rec, value)
        db.set(cls, ref, **{f.name: value})
        if cls == "VM" and f.name in ("is_a_template", "blocked_operations", "power_state"):
            lifecycle.update_allowed(db, ref)


def _assert_power(ctx: Context, vm: str, rec: dict[str, Any], op: str) -> None:
    allowed = lifecycle.SETTER_POWER.get(op, ())
    if rec["is_control_domain"] or rec["power_state"] in allowed:
        return
    raise errors.vm_bad_power_state(vm, list(allowed), rec["power_state"])


def _memory_fields(ctx: Context, vm: str, op: str, **new: object) -> None:
    values = {k: datamodel.coerce("int", v, "VM", k) for k, v in new.items()}
    with ctx.db.lock:
        rec = ctx.db.get("VM", vm)
        _assert_power(ctx, vm, rec, op)
        assert_memory_valid(rec, **values)
        fields = {f"memory_{k}": v for k, v in values.items()}
        if "dynamic_min" in values:
            fields["memory_target"] = values["dynamic_min"]  # xapi keeps target = dynamic_min
        ctx.db.set("VM", vm, **fields)


@api("VM.set_memory_limits", "self", "static_min", "static_max", "dynamic_min", "dynamic_max")
def set_memory_limits(
    ctx: Context, self: str, static_min: object, static_max: object, dynamic_min: object, dynamic_max: object
) -> None:
    _memory_fields(
        ctx,
        self,
        "changing_memory_limits",
        static_min=static_min,
        static_max=static_max,
        dynamic_min=dynamic_min,
        dynamic_max=dynamic_max,
    )


@api("VM.set_memory_static_range", "self", "min", "max")
def set_memory_static_range(ctx: Context, self: str, min: object, max: object) -> None:
    _memory_fields(ctx, self, "changing_static_range", static_min=min, static_max=max)


@api("VM.set_memory_dynamic_range", "self", "min", "max")
def set_memory_dynamic_range(ctx: Context, self: str, min: object, max: object) -> None:
    _memory_fields(ctx, self, "changing_dynamic_range", dynamic_min=min, dynamic_max=max)


@api("VM.set_memory", "self", "value")
def set_memory(ctx: Context, self: str, value: object) -> None:
    """xapi_vm.set_memory: static_max and both dynamic limits to `value`, static_min kept."""
    _memory_fields(ctx, self, "changing_memory_limits", static_max=value, dynamic_min=value, dynamic_max=value)
