"""XML-RPC responses parsed by ElementTree's C parser instead of ``xmlrpc.client``'s Unmarshaller.

The stdlib Unmarshaller runs Python for every element (start, data, end); ``VM.get_all_records``
at 10,000 VMs is ~75 MB and ~3 million elements, ~4 s of it. Here expat builds elements in C and
Python only walks finished ones. The reply is fed as it arrives and every finished sibling is
converted and dropped at once, so the tree never holds more than one chunk's worth.

The values are those ``xmlrpc.client.Unmarshaller`` (``use_builtin_types=False``) gives: untyped
``<value>`` is a string, int/i1/i2/i4/i8/biginteger, boolean ("0"/"1" only), double/float,
bigdecimal, string, nil, base64 (``Binary``), dateTime.iso8601 (``DateTime``), array, struct;
a ``<fault>`` raises ``Fault``. tests/backends/xen/test_unmarshal.py holds it to that on real replies.
One difference: a namespace prefix that the document never declares is an XML error here.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections import deque
from collections.abc import Callable
from decimal import Decimal
from typing import Any, Protocol, cast
from xmlrpc.client import Binary, DateTime, Fault, ResponseError

from poolctl.gcpause import gc_paused

CHUNK = 64 << 10  # larger chunks keep more elements alive across collections: slower

# Every element is a GC-tracked object: 3 million of them trigger thousands of collections that
# find the chunk's elements still alive (1.7 s of a 3.3 s parse of VM.get_all_records at 10,000
# VMs). The collector is paused per chunk (gc_paused), so collections fall between chunks, when
# those elements are gone.


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1] if tag[0] == "{" else tag


def _boolean(text: str) -> bool:
    if text == "0":
        return False
    if text == "1":
        return True
    raise TypeError("bad boolean value")


def _datetime(text: str) -> DateTime:
    value = DateTime()
    value.decode(text)
    return value


def _base64(text: str) -> Binary:
    value = Binary()
    value.decode(text.encode("ascii"))
    return value


_SCALARS: dict[str, Callable[[str], Any]] = {
    "string": str,
    "int": int,
    "i4": int,
    "i8": int,
    "i1": int,
    "i2": int,
    "biginteger": int,
    "boolean": _boolean,
    "double": float,
    "float": float,
    "bigdecimal": Decimal,
    "dateTime.iso8601": _datetime,
    "base64": _base64,
    "nil": lambda _text: None,
}


# In a XenAPI reply methodResponse/params/param/value/struct/member[Value]/value/struct holds
# get_all_records' records (depth 7); each is a member whose value/struct (depth 10) is one record.
RECORDS_DEPTH = 7
RECORD_DEPTH = 10


class _EventParser(Protocol):
    """``ET.XMLParser`` with the C parser's event hook (what ``ET.XMLPullParser`` uses), which
    typeshed leaves out: private, but the one way to turn events off after the root."""

    def feed(self, data: bytes) -> None: ...

    def close(self) -> object: ...

    def _setevents(self, events: deque[tuple[str, ET.Element]], names: tuple[str, ...]) -> None: ...


class Unmarshaller:
    """``feed(bytes)`` as the reply arrives, then ``close()`` -> the params tuple.

    With ``fields``, a ``get_all_records`` reply's records keep only those fields, cut as they
    arrive: the rest are never converted (at 10,000 VMs, 17 of ~100 fields are read)."""

    def __init__(self, fields: frozenset[str] | None = None) -> None:
        self._fields = fields
        self._events: deque[tuple[str, ET.Element]] = deque()
        self._parser = cast(_EventParser, ET.XMLParser(target=ET.TreeBuilder()))
        # a "start" event only until the root is seen: afterwards no per-element Python at all
        self._parser._setevents(self._events, ("start",))
        self._root: ET.Element | None = None
        # struct/data elements whose finished children were converted already: a struct's dict,
        # a data's list (the element's tag says which)
        self._partial: dict[ET.Element, Any] = {}

    def feed(self, data: bytes) -> None:
        with gc_paused():
            self._parser.feed(data)
            if self._root is None and self._events:
                self._root = self._events[0][1]
                self._parser._setevents(self._events, ())
                self._events.clear()
            if self._root is not None:
                self._prune(self._root)

    def close(self) -> tuple[Any, ...]:
        with gc_paused():
            return self._close()

    def _close(self) -> tuple[Any, ...]:
        self._parser.close()
        root = self._root
        if root is None:
            raise ResponseError("empty reply")
        kind = next((c for c in root if _local(c.tag) in ("params", "fault")), None)
        if kind is None:
            raise ResponseError()
        if _local(kind.tag) == "fault":
            raise Fault(**self._value(kind[0]))
        fields = self._fields
        records = self._records(root) if fields is not None else None
        if fields is not None and records is not None:
            out = self._partial.setdefault(records, {})
            for m in records:
                self._record_member(m, out, fields)
            del records[:]
        return tuple(self._value(p[0]) for p in kind if len(p))

    def _prune(self, root: ET.Element) -> None:
        """Convert and drop the finished children along the open path (all but each last child)."""
        node, depth, fields = root, 0, self._fields
        while len(node):
            if len(node) > 1:
                tag = _local(node.tag)
                if tag == "struct":
                    out: dict[str, Any] | None = self._partial.get(node)
                    if out is None:
                        out = self._partial[node] = {}
                    if fields is not None and depth == RECORDS_DEPTH:
                        for m in node[:-1]:
                            self._record_member(m, out, fields)
                    else:
                        keep = fields if depth == RECORD_DEPTH else None
                        member = self._member
                        for m in node[:-1]:
                            member(m, out, keep)
                    del node[:-1]
                elif tag == "data":
                    items: list[Any] | None = self._partial.get(node)
                    if items is None:
                        items = self._partial[node] = []
                    value = self._value
                    items.extend([value(v) if len(v) else (v.text or "") for v in node[:-1]])
                    del node[:-1]
            node = node[-1]
            depth += 1

    def _records(self, root: ET.Element) -> ET.Element | None:
        outer = root.find("params/param/value/struct")
        for m in outer if outer is not None else ():
            if m.findtext("name") == "Value":
                return m.find("value/struct")
        return None

    def _record_member(self, member: ET.Element, out: dict[str, Any], keep: frozenset[str]) -> None:
        """One ``ref: record`` of get_all_records, the record cut to ``keep``."""
        parts = {_local(p.tag): p for p in member}
        value = parts.get("value")
        if "name" not in parts or value is None:
            raise ResponseError("struct member without a name or a value")
        if len(value) != 1 or _local(value[0].tag) != "struct":
            out[parts["name"].text or ""] = self._value(value)
            return
        st = value[0]
        rec: dict[str, Any] | None = self._partial.pop(st, None)
        if rec is None:
            rec = {}
        convert = self._value
        for m in st:
            if len(m) == 2:
                n, v = m
                if n.tag == "name" and v.tag == "value":
                    key = n.text or ""
                    if key in keep:
                        rec[key] = convert(v) if len(v) else (v.text or "")
                    continue
            self._member(m, rec, keep)
        out[parts["name"].text or ""] = rec

    def _member(self, member: ET.Element, out: dict[str, Any], keep: frozenset[str] | None = None) -> None:
        name = value = None
        for part in member:
            tag = _local(part.tag)
            if tag == "name":
                name = part.text or ""
            elif tag == "value":
                value = part
        if name is None or value is None:
            raise ResponseError("struct member without a name or a value")
        if keep is None or name in keep:
            out[name] = self._value(value)

    def _value(self, el: ET.Element) -> Any:
        if not len(el):  # no type element: a string
            return el.text or ""
        typed = el[0]
        tag = typed.tag
        if tag == "struct":
            return self._struct(typed)
        if tag == "array":
            return self._array(typed)
        convert = _SCALARS.get(tag)
        if convert is None:
            tag = _local(tag)
            if tag in ("struct", "array"):
                return self._struct(typed) if tag == "struct" else self._array(typed)
            convert = _SCALARS.get(tag)
            if convert is None:
                raise ResponseError(f"unknown tag {tag!r}")
        return convert(typed.text or "")

    def _struct(self, st: ET.Element) -> dict[str, Any]:
        out: dict[str, Any] | None = self._partial.pop(st, None)
        if out is None:
            out = {}
        value = self._value
        for m in st:
            if len(m) == 2:  # the usual <member><name>k</name><value>..</value></member>, inline
                n, v = m
                if n.tag == "name" and v.tag == "value":
                    out[n.text or ""] = value(v) if len(v) else (v.text or "")
                    continue
            self._member(m, out)
        return out

    def _array(self, arr: ET.Element) -> list[Any]:
        data = arr[0] if len(arr) == 1 and arr[0].tag == "data" else arr.find("data")
        if data is None:
            data = next((c for c in arr if _local(c.tag) == "data"), None)
            if data is None:
                return []
        items: list[Any] | None = self._partial.pop(data, None)
        if items is None:
            items = []
        value = self._value
        items.extend([value(v) if len(v) else (v.text or "") for v in data])
        return items


def parse(data: bytes, fields: frozenset[str] | None = None) -> tuple[Any, ...]:
    """A whole reply at once (tests, small bodies)."""
    u = Unmarshaller(fields)
    for i in range(0, len(data), CHUNK):
        u.feed(data[i : i + CHUNK])
    return u.close()
