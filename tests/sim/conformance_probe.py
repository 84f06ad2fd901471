"""Probe a served simulator against poolctl/sim/xapi/datamodel.json through the XenAPI SDK.

Three figures per class, each "implemented / total":
- fields: every datamodel field is in `get_record` of an object of the class, with its type as it
  travels over XML-RPC (ints as strings, datetimes as DateTime, refs as OpaqueRef strings...);
- setters: every RW field's `set_<field>` takes a value of its type and `get_<field>` reads it back;
- messages: every message is known (not MESSAGE_METHOD_UNKNOWN) and counts its parameters as XAPI
  does (MESSAGE_PARAMETER_COUNT_MISMATCH without the session) -- or is on the simulator's
  NOT_IMPLEMENTED list and answers NOT_IMPLEMENTED.
"""

from __future__ import annotations

import json
import re
import xmlrpc.client
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import XenAPI

TABLE_PATH = Path(__file__).resolve().parents[2] / "poolctl" / "sim" / "xapi" / "datamodel.json"
_INT = re.compile(r"-?\d+")
# event records travel as xen-api's Event_types.event (ocaml/xapi-types/event_types.ml), not as
# the datamodel's event class says: id and timestamp are strings, and there is no obj_uuid
WIRE_TYPE = {"event.id": "string", "event.timestamp": "string"}
NOT_SENT = {"event.obj_uuid": "Event_types.event has no obj_uuid: XAPI never sends it"}


def _vlan(api: Any) -> str:
    net = api.network.create(
        {"name_label": "conformance VLAN", "name_description": "", "MTU": "1500", "other_config": {}}
    )
    pif = api.pool.create_VLAN("eth1", net, "4000")[0]
    return str(api.PIF.get_VLAN_master_of(pif))


_MAKE = {
    "VLAN": _vlan,
    "blob": lambda api: api.blob.create("text/plain", False),
    "Repository": lambda api: api.Repository.introduce(
        "conformance", "", "https://repo.example/base", "https://repo.example/src", False, ""
    ),
    "secret": lambda api: api.secret.create({"value": "conformance", "other_config": {}}),
}


def load_table() -> dict[str, Any]:
    return json.loads(TABLE_PATH.read_text())


# the classes probed: the table's "probed" list, written by scripts/derive_datamodel.py (the
# table holds a few more, metrics and SM, that are derived but not probed)
LISTED: tuple[str, ...] = tuple(load_table()["probed"])


@dataclass
class Figure:
    done: int = 0
    total: int = 0
    missing: list[str] = field(default_factory=list)

    def add(self, ok: bool, what: str) -> None:
        self.total += 1
        self.done += ok
        if not ok:
            self.missing.append(what)

    def __str__(self) -> str:
        pct = 100.0 * self.done / self.total if self.total else 100.0
        return f"{self.done}/{self.total} ({pct:.1f} %)"


@dataclass
class Coverage:
    fields: Figure = field(default_factory=Figure)
    setters: Figure = field(default_factory=Figure)
    messages: Figure = field(default_factory=Figure)
    known: Figure = field(default_factory=Figure)  # answered anything but MESSAGE_METHOD_UNKNOWN
    not_implemented: dict[str, str] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)  # wrong answers, not just missing ones

    def report(self) -> str:
        lines = [
            "XAPI datamodel conformance (classes: " + ", ".join(LISTED) + ")",
            f"  fields in get_record with the right type: {self.fields}",
            f"  RW fields whose setter works:             {self.setters}",
            f"  messages implemented:                     {self.messages}",
            f"  messages known (not METHOD_UNKNOWN):      {self.known}",
            "  not sent by XAPI either: " + ", ".join(f"{k} ({v})" for k, v in NOT_SENT.items()),
            f"  NOT_IMPLEMENTED list ({len(self.not_implemented)}):",
        ]
        by_reason: dict[str, list[str]] = {}
        for name, why in sorted(self.not_implemented.items()):
            by_reason.setdefault(why, []).append(name)
        for why, names in by_reason.items():
            lines.append(f"    {why} ({len(names)}): {', '.join(names)}")
        if self.problems:
            lines.append(f"  problems ({len(self.problems)}):")
            lines += [f"    {p}" for p in self.problems[:50]]
        return "\n".join(lines)


# -- types over XML-RPC ------------------------------------------------------------------------
def type_ok(ty: str, value: object, enums: dict[str, list[str]]) -> bool:
    if ty.endswith(" set"):
        return isinstance(value, list) and all(type_ok(ty[:-4], v, enums) for v in value)
    if ty.endswith(" map"):
        m = re.fullmatch(r"\((.+?) -> (.+)\) map", ty)
        if not m or not isinstance(value, dict):
            return False
        return all(type_ok(m.group(1), k, enums) and type_ok(m.group(2), v, enums) for k, v in value.items())
    if ty.endswith(" ref"):
        return isinstance(value, str) and value.startswith("OpaqueRef:")
    if ty.endswith(" record"):
        return isinstance(value, dict)
    if ty.startswith("enum "):
        values = enums.get(ty[5:])
        return isinstance(value, str) and (values is None or value in values)
    return {
        "string": lambda v: isinstance(v, str),
        "int": lambda v: isinstance(v, str) and _INT.fullmatch(v) is not None,  # XAPI sends ints as strings
        "float": lambda v: isinstance(v, float),
        "bool": lambda v: isinstance(v, bool),
        "datetime": lambda v: isinstance(v, xmlrpc.client.DateTime),
    }.get(ty, lambda v: False)(value)


def sample(ty: str, current: object, enums: dict[str, list[str]], name: str) -> object:
    """A value of `ty` different from `current` where one can be made up without knowing the pool."""
    if ty == "string":
        return f"conformance {name}"
    if ty == "int":
        return str(int(str(current)) + 1) if isinstance(current, str) and _INT.fullmatch(current) else "1"
    if ty == "float":
        return (current if isinstance(current, float) else 0.0) + 0.5
    if ty == "bool":
        return not current
    if ty == "datetime":
        return xmlrpc.client.DateTime("20260101T00:00:00Z")
    if ty.startswith("enum "):
        values = [v for v in enums.get(ty[5:], []) if v != current]
        return values[0] if values else current
    if ty == "string set":
        return ["conformance"]
    if ty == "(string -> string) map":
        return {"conformance": name}
    return current  # refs, sets of refs, other maps: the current value is the one valid one known


def same(a: object, b: object) -> bool:
    if isinstance(a, list) and isinstance(b, list):
        return sorted(map(str, a)) == sorted(map(str, b))
    if isinstance(a, xmlrpc.client.DateTime) and isinstance(b, xmlrpc.client.DateTime):
        return a.value == b.value
    if isinstance(a, float) or isinstance(b, float):
        return float(a) == float(b)  # type: ignore[arg-type]
    return a == b


# -- raw calls through the SDK's transport ------------------------------------------------------
def raw(sess: XenAPI.Session, method: str, *args: object, session: bool = True) -> dict[str, Any]:
    params = (sess._session, *args) if session else args
    return sess._ServerProxy__request(method, params)


def error_of(reply: dict[str, Any]) -> list[str] | None:
    return None if reply.get("Status") == "Success" else [str(x) for x in reply.get("ErrorDescription", [])]


class Prober:
    def __init__(self, sess: XenAPI.Session, table: dict[str, Any], not_implemented: dict[str, str]):
        self.sess, self.api = sess, sess.xenapi
        self.classes = table["classes"]
        self.cov = Coverage(not_implemented=dict(not_implemented))

    def pick(self, cls: str) -> str | None:
        if cls == "session":
            return self.sess._session
        try:
            refs = self.api.__getattr__(f"{cls}.get_all")()
        except XenAPI.Failure:
            return None
        if not refs and cls == "task":  # the API makes these on demand: make one to look at
            refs = [self.api.task.create("conformance", "")]
        if not refs and cls in _MAKE:  # classes the lab has no object of: make one as a client would
            refs = [_MAKE[cls](self.api)]
        if not refs and cls == "message":
            vm_uuid = self.api.VM.get_uuid(self.api.VM.get_all()[0])
            refs = [self.api.message.create("CONFORMANCE", "3", "VM", vm_uuid, "probe")]
        if cls == "VM":  # a halted, ordinary VM: its setters are not refused for power state
            recs = self.api.VM.get_all_records()
            plain = [r for r in refs if not recs[r]["is_a_template"] and not recs[r]["is_control_domain"]]
            halted = [r for r in plain if recs[r]["power_state"] == "Halted"]
            refs = halted or plain or refs
        return refs[0] if refs else None

    def record(self, cls: str, ref: str | None) -> dict[str, Any] | None:
        if cls == "event":
            return self._event_record()
        if ref is None:
            return None
        reply = raw(self.sess, f"{cls}.get_record", ref)
        return reply["Value"] if error_of(reply) is None else None

    def _event_record(self) -> dict[str, Any] | None:
        reply = raw(self.sess, "event.from", ["pool"], "", "1.0")
        if error_of(reply) is not None:
            return None
        events = reply["Value"].get("events", [])
        return events[0] if events else None

    def probe_fields(self, cls: str, rec: dict[str, Any] | None) -> None:
        c = self.classes[cls]
        for f in c["fields"]:
            what = f"{cls}.{f['name']}"
            if what in NOT_SENT:
                continue
            ty = WIRE_TYPE.get(what, f["type"])
            ok = rec is not None and f["name"] in rec and type_ok(ty, rec[f["name"]], c["enums"])
            self.cov.fields.add(ok, what)
            if rec is not None and f["name"] in rec and not ok:
                self.cov.problems.append(f"{what}: {f['type']} expected, got {rec[f['name']]!r}")

    def probe_setters(self, cls: str, ref: str | None, rec: dict[str, Any] | None) -> None:
        c = self.classes[cls]
        for f in c["fields"]:
            if f["qualifier"] != "RW":
                continue
            name = f"{cls}.set_{f['name']}"
            if name in self.cov.not_implemented:
                self.cov.setters.add(False, name)
                continue
            ok = False
            if ref is not None and rec is not None and f["name"] in rec:
                current = rec[f["name"]]
                for value in (sample(f["type"], current, c["enums"], f["name"]), current):
                    if error_of(raw(self.sess, name, ref, value)) is not None:
                        continue
                    got = raw(self.sess, f"{cls}.get_{f['name']}", ref)
                    ok = error_of(got) is None and same(got["Value"], value)
                    if not ok:
                        self.cov.problems.append(f"{name}({value!r}) then get: {got.get('Value')!r}")
                    break
            self.cov.setters.add(ok, name)

    def probe_messages(self, cls: str) -> None:
        for m in self.classes[cls]["messages"]:
            name = f"{cls}.{m['name']}"
            n = len(m["params"])
            # more parameters than any call takes, defaults included: a count mismatch, not a call
            reply = raw(self.sess, name, *([""] * (n + 3)), session=m["session"])
            err = error_of(reply) or []
            known = bool(err) and err[0] != "MESSAGE_METHOD_UNKNOWN"
            counted = err[:1] == ["MESSAGE_PARAMETER_COUNT_MISMATCH"] and len(err) == 4 and int(err[2]) <= n
            counted = counted and int(err[3]) == n + 3
            self.cov.known.add(known, name)
            if known and not counted:
                self.cov.problems.append(f"{name} with {n + 3} parameters answered {err}")
            if name in self.cov.not_implemented:
                got = error_of(raw(self.sess, name, *([""] * n), session=m["session"])) or []
                if got[:1] != ["NOT_IMPLEMENTED"]:
                    self.cov.problems.append(f"{name} is listed as not implemented but answered {got}")
                self.cov.messages.add(False, name)
                continue
            self.cov.messages.add(known and counted, name)

    def run(self, classes: tuple[str, ...] = LISTED) -> Coverage:
        for cls in classes:
            ref = self.pick(cls) if cls != "event" else None
            rec = self.record(cls, ref)
            self.probe_fields(cls, rec)
            self.probe_setters(cls, ref, rec)
            self.probe_messages(cls)
        return self.cov
