#!/usr/bin/env python3
"""Derive poolctl/sim/xapi/datamodel.json from a fetched copy of xapi-project/xen-api.

    scripts/derive_datamodel.py /path/to/xen-api.git [--commit REV] [--out FILE]
        [--add-class CLASS]... [--probe CLASS]...

The classes derived are the table's own list (the `classes` of the file rewritten, plus any
--add-class); `probed`, the classes tests/sim/conformance_probe.py probes, is carried over
(plus any --probe). Neither list is kept anywhere else.

The base is `doc/data/xenapi.json`, the datamodel as xen-api's own json_backend prints it from
`ocaml/idl/datamodel*.ml` (fields with type, qualifier and default; messages with parameters,
result and documented errors; implicit getters/setters included). That file is regenerated only
now and then, so fields declared in `ocaml/idl/datamodel*.ml` at the same commit but missing from
it (e.g. VM.groups) are read from the OCaml sources and added, with their implicit accessors, and
marked `"from": "<file>.ml"`. Internal-only and removed fields are left out, as XAPI leaves them
out of records. The xen-api sources are read with `git show`; nothing is written there.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

# The classes to derive are the table's own list: the "classes" of the file being rewritten (its
# order kept) plus any --add-class; "probed" (the classes tests/sim/conformance_probe.py probes)
# is carried over likewise. Neither list is kept anywhere else.
QUALIFIERS = {"RW": "RW", "StaticRO": "RO/constructor", "DynamicRO": "RO/runtime"}
BASIC = {"String": "string", "Int": "int", "Bool": "bool", "Float": "float", "DateTime": "datetime"}


def git_show(repo: Path, commit: str, path: str) -> str:
    return subprocess.run(
        ["git", "--git-dir", str(repo), "show", f"{commit}:{path}"], check=True, capture_output=True, text=True
    ).stdout


def parse_default(raw: str | None, ty: str) -> Any:
    """xenapi.json prints defaults as OCaml-ish text ('""', '{}', 'false', 'OpaqueRef:NULL')."""
    if raw is None:
        return None
    if ty == "string":
        return raw[1:-1] if raw.startswith('"') and raw.endswith('"') else raw
    if ty == "int":
        return int(raw)
    if ty == "float":
        return float(raw)
    if ty == "bool":
        return raw == "true"
    if ty.endswith(" map"):
        return {} if raw == "{}" else None
    if ty.endswith(" set"):
        return [] if raw == "{}" else None
    if ty.endswith(" ref"):
        return "OpaqueRef:NULL"
    return raw  # enums and datetimes travel as their text


# -- the OCaml overlay ------------------------------------------------------------------------
_LABEL = re.compile(r"[~?](\w+)(?::|\b)")
_STRING = re.compile(r'"((?:[^"\\]|\\.)*)"', re.S)


def _balanced(src: str, i: int) -> int:
    opening, closing = src[i], {"(": ")", "[": "]"}[src[i]]
    depth = 0
    while i < len(src):
        c = src[i]
        if c == '"':
            m = _STRING.match(src, i)
            i = m.end() if m else i + 1
            continue
        if c == opening:
            depth += 1
        elif c == closing:
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    return i


def _labels_then_string(src: str, i: int, labels: dict[str, str]) -> tuple[str | None, int]:
    while True:
        while i < len(src) and src[i].isspace():
            i += 1
        if src.startswith(("~", "?"), i):
            m = _LABEL.match(src, i)
            if not m:
                return None, i
            i = m.end()
            if not m.group(0).endswith(":"):
                labels[m.group(1)] = "true"  # punned label
                continue
            while i < len(src) and src[i].isspace():
                i += 1
            if src[i] == '"':
                lit = _STRING.match(src, i)
                end = lit.end() if lit else i + 1
            elif src[i] in "([":
                end = _balanced(src, i)
            else:
                word = re.compile(r"[\w.']+").match(src, i)
                if word is None:
                    return None, i
                end = word.end()
            labels[m.group(1)] = src[i:end]
            i = end
            continue
        m = _STRING.match(src, i)
        return (m.group(1), m.end()) if m else (None, i)


class Types:
    def __init__(self, sources: str) -> None:
        self.refs = dict(re.findall(r'let (_\w+) = "(\w+)"', sources))
        self.enums = dict(re.findall(r'let (\w+) =\s*Enum\s*\(\s*"(\w+)"', sources))

    def of(self, expr: str) -> str | None:
        e = expr.strip()
        while e.startswith("(") and _balanced(e, 0) == len(e):
            e = e[1:-1].strip()
        if e in BASIC:
            return BASIC[e]
        if m := re.fullmatch(r"Ref\s+(_\w+)", e):
            return f"{self.refs[m.group(1)]} ref" if m.group(1) in self.refs else None
        if e.startswith("Set "):
            inner = self.of(e[4:])
            return f"{inner} set" if inner else None
        if e.startswith("Map "):
            args = e[4:].strip()
            if args.startswith("(") and _balanced(args, 0) == len(args):
                parts = _split_top(args[1:-1])
                if len(parts) == 2:
                    k, v = self.of(parts[0]), self.of(parts[1])
                    return f"({k} -> {v}) map" if k and v else None
            return None
        if e in self.enums:
            return f"enum {self.enums[e]}"
        return None


def _split_top(s: str, sep: str = ",") -> list[str]:
    """Split at `sep` outside brackets and string literals."""
    parts, depth, cur, i = [], 0, "", 0
    while i < len(s):
        c = s[i]
        if c == '"':
            lit = _STRING.match(s, i)
            end = lit.end() if lit else i + 1
            cur += s[i:end]
            i = end
            continue
        depth += c in "(["
        depth -= c in ")]"
        if c == sep and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += c
        i += 1
    return [*parts, cur]


def _ocaml_default(expr: str | None, ty: str) -> Any:
    if not expr:
        return None
    e = expr.strip("() ").removeprefix("Some").strip("() ")
    if m := re.fullmatch(r'VString\s+"(.*)"', e) or re.fullmatch(r'VEnum\s+"(\w+)"', e):
        return m.group(1)
    if m := re.fullmatch(r"VInt\s+\(?(-?\d+)L?\)?", e):
        return int(m.group(1))
    if m := re.fullmatch(r"VBool\s+(true|false)", e):
        return m.group(1) == "true"
    if re.fullmatch(r"VSet\s*\[\s*\]", e):
        return []
    if re.fullmatch(r"VMap\s*\[\s*\]", e):
        return {}
    if "null_ref" in e or "VRef" in e:
        return "OpaqueRef:NULL"
    return None


def ocaml_fields(repo: Path, commit: str, classes: tuple[str, ...]) -> dict[str, list[dict[str, Any]]]:
    """Fields declared with `field ... "name" "doc"` inside each class's create_obj."""
    files = [
        p
        for p in subprocess.run(
            ["git", "--git-dir", str(repo), "ls-tree", "--name-only", commit, "ocaml/idl/"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.split()
        if re.fullmatch(r"ocaml/idl/datamodel\w*\.ml", p)
    ]
    texts = {p: git_show(repo, commit, p) for p in files}
    types = Types("\n".join(texts.values()))
    # datamodel_lifecycle.ml names each newer (class, field) pair: it confirms which class a
    # field parsed out of a create_obj belongs to (helper lists sit between objects)
    confirmed = set(re.findall(r'\| "(\w+)", "(\w+)"', texts.get("ocaml/idl/datamodel_lifecycle.ml", "")))
    found: dict[str, list[dict[str, Any]]] = {}
    for path, src in texts.items():
        objs = [
            (m.start(), types.refs.get(m.group(1))) for m in re.finditer(r"create_obj\b[^;]*?~name:(_\w+)", src, re.S)
        ]
        for m in re.finditer(r"(?<![\w'])field(?![\w'])", src):
            owners = [cls for pos, cls in objs if pos < m.start()]
            if not owners or owners[-1] not in classes:
                continue
            labels: dict[str, str] = {}
            name, _ = _labels_then_string(src, m.end(), labels)
            if name is None or (owners[-1], name) not in confirmed:
                continue
            if labels.get("internal_only") == "true" or "Removed" in labels.get("lifecycle", ""):
                continue
            ty = types.of(labels.get("ty", "String"))
            if ty is None:
                continue
            qualifier = QUALIFIERS.get(labels.get("qualifier", "RW"))
            if qualifier is None:
                continue
            field = {"name": name, "type": ty, "qualifier": qualifier, "from": path.rsplit("/", 1)[1]}
            default = _ocaml_default(labels.get("default_value"), ty)
            if default is not None:
                field["default"] = default
            found.setdefault(owners[-1], []).append(field)
    return found


def _session(m: dict[str, Any]) -> int:
    """1 if the message's first parameter is the caller's session (the wire sends it first)."""
    first = m["params"][0] if m["params"] else {}
    return int(first.get("type") == "session ref" and first.get("name") == "session_id")


def db_tables(repo: Path, commit: str) -> list[str]:
    """Classes created with create_obj ~in_db:true: the tables whose sizes event.from's
    valid_ref_counts reports (xapi_event.ml folds over the whole tableset)."""
    files = subprocess.run(
        ["git", "--git-dir", str(repo), "ls-tree", "--name-only", commit, "ocaml/idl/"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    src = "\n".join(git_show(repo, commit, p) for p in files if re.fullmatch(r"ocaml/idl/datamodel\w*\.ml", p))
    refs = dict(re.findall(r'let (_\w+) = "(\w+)"', src))
    starts = [m.start() for m in re.finditer(r"\bcreate_obj\b", src)]
    tables = []
    for i, start in enumerate(starts):
        chunk = src[start : starts[i + 1] if i + 1 < len(starts) else len(src)]
        name, in_db = re.search(r"~name:(_\w+)", chunk), re.search(r"~in_db:(true|false)", chunk)
        if name and in_db and in_db.group(1) == "true" and name.group(1) in refs:
            tables.append(refs[name.group(1)])
    return sorted(set(tables))


_CLASS_FILE = {"VM": "datamodel_vm.ml", "host": "datamodel_host.ml", "pool": "datamodel_pool.ml"}


def ocaml_messages(
    repo: Path, commit: str, known: dict[str, set[str]], classes: tuple[str, ...]
) -> dict[str, list[dict[str, Any]]]:
    """Calls newer than doc/data/xenapi.json: `call ~name:"x" ... ~params:[(ty, name, doc); ...]`
    (or ~versioned_params), taken where datamodel_lifecycle.ml names the (class, call) pair and
    the class's file (datamodel_vm/host/pool.ml, else datamodel.ml) defines the call once."""
    files = {
        p.rsplit("/", 1)[1]: git_show(repo, commit, p)
        for p in subprocess.run(
            ["git", "--git-dir", str(repo), "ls-tree", "--name-only", commit, "ocaml/idl/"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.split()
        if re.fullmatch(r"ocaml/idl/datamodel\w*\.ml", p)
    }
    types = Types("\n".join(files.values()))
    confirmed = set(re.findall(r'\| "(\w+)", "(\w+)"', files.get("datamodel_lifecycle.ml", "")))
    api_errors = dict(
        (k, v)
        for k, v in re.findall(
            r'let (\w+) =\s*add_error "(\w+)"', git_show(repo, commit, "ocaml/xapi-consts/api_errors.ml")
        )
    )
    found: dict[str, list[dict[str, Any]]] = {}
    for cls, name in sorted(confirmed):
        if cls not in classes or name in known.get(cls, set()):
            continue
        src = files[_CLASS_FILE.get(cls, "datamodel.ml")]
        starts = [m.end() for m in re.finditer(rf'\bcall\s+~name:"{name}"', src)]
        if len(starts) != 1:
            continue
        labels: dict[str, str] = {}
        _labels_then_string(src, starts[0], labels)
        if labels.get("internal_only") == "true" or labels.get("hide_from_docs") == "true":
            continue
        params = []
        if "params" in labels:
            for item in _split_top(labels["params"].strip()[1:-1], ";"):
                if not item.strip():
                    continue
                body = item.strip()
                parts = _split_top(body[1:-1] if body.startswith("(") and body.endswith(")") else body)
                ty = types.of(parts[0]) if parts else None
                pname = re.fullmatch(r'\s*"(\w+)"\s*', parts[1]) if len(parts) > 1 else None
                if ty is None or pname is None:
                    params = None
                    break
                params.append({"type": ty, "name": pname.group(1)})
        elif "versioned_params" in labels:
            for block in re.findall(r"\{(.*?)\}", labels["versioned_params"], re.S):
                ty_m = re.search(r"param_type\s*=\s*(.+?)\s*;", block, re.S)
                name_m = re.search(r'param_name\s*=\s*"(\w+)"', block)
                ty = types.of(ty_m.group(1)) if ty_m else None
                if ty is None or name_m is None:
                    params = None
                    break
                params.append({"type": ty, "name": name_m.group(1)})
        if params is None:
            continue
        result = "void"
        if "result" in labels:
            parts = _split_top(labels["result"].strip()[1:-1])
            result = types.of(parts[0]) or "void"
        errs = re.findall(r"Api_errors\.(\w+)", labels.get("errs", ""))
        found.setdefault(cls, []).append(
            {
                "name": name,
                "params": params,
                "session": True,
                "result": result,
                "errors": [api_errors[e] for e in errs if e in api_errors],
                "implicit": False,
                "from": _CLASS_FILE.get(cls, "datamodel.ml"),
            }
        )
    return found


def implicit_accessors(cls: str, field: dict[str, Any]) -> list[dict[str, Any]]:
    name, ty = field["name"], field["type"]
    self_p = {"type": f"{cls} ref", "name": "self"}
    out = [{"name": f"get_{name}", "params": [self_p], "session": True, "result": ty, "errors": [], "implicit": True}]
    if field["qualifier"] == "RW":
        out.append(
            {
                "name": f"set_{name}",
                "params": [self_p, {"type": ty, "name": "value"}],
                "session": True,
                "result": "void",
                "errors": [],
                "implicit": True,
            }
        )
    return out


def derive(repo: Path, commit: str, class_names: tuple[str, ...], probed: tuple[str, ...]) -> dict[str, Any]:
    sha = subprocess.run(
        ["git", "--git-dir", str(repo), "rev-parse", commit], check=True, capture_output=True, text=True
    ).stdout.strip()
    base_sha = subprocess.run(
        ["git", "--git-dir", str(repo), "log", "-1", "--format=%H", sha, "--", "doc/data/xenapi.json"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    doc = {c["name"]: c for c in json.loads(git_show(repo, sha, "doc/data/xenapi.json"))}
    overlay = ocaml_fields(repo, sha, class_names)
    known_messages = {c: {m["name"] for m in doc[c]["messages"]} for c in class_names}
    message_overlay = ocaml_messages(repo, sha, known_messages, class_names)
    classes: dict[str, Any] = {}
    for cls in class_names:
        src = doc[cls]
        fields = []
        for f in src["fields"]:
            field = {"name": f["name"], "type": f["type"], "qualifier": f["qualifier"]}
            default = parse_default(f.get("default"), f["type"])
            if default is not None:
                field["default"] = default
            fields.append(field)
        known = {f["name"] for f in fields}
        messages = [
            {
                "name": m["name"],
                "params": [{"type": p["type"], "name": p["name"]} for p in m["params"][_session(m) :]],
                "session": bool(_session(m)),
                "result": m["result"][0] if m.get("result") else "void",
                "errors": [e["name"] for e in m.get("errors", [])],
                "implicit": bool(m.get("implicit")),
            }
            for m in src["messages"]
        ]
        names = {m["name"] for m in messages}
        for f in overlay.get(cls, []):
            # namespaced fields (memory/static_max) are flattened in the doc: skip their short names
            if f["name"] in known or any(k.endswith("_" + f["name"]) for k in known):
                continue
            known.add(f["name"])
            fields.append(f)
            messages += [a for a in implicit_accessors(cls, f) if a["name"] not in names]
        names = {m["name"] for m in messages}
        messages += [m for m in message_overlay.get(cls, []) if m["name"] not in names]
        enums = {e["name"]: [v["name"] for v in e["values"]] for e in src.get("enums", [])}
        classes[cls] = {"fields": fields, "messages": sorted(messages, key=lambda m: m["name"]), "enums": enums}
    return {
        "source": {
            "repository": "https://github.com/xapi-project/xen-api",
            "commit": sha,
            "doc_data_xenapi_json_commit": base_sha,
            "generated_by": "scripts/derive_datamodel.py",
        },
        "db_tables": db_tables(repo, sha),
        "probed": list(probed),
        "classes": classes,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("repo", type=Path, help="a git directory of xapi-project/xen-api")
    p.add_argument("--commit", default="HEAD")
    p.add_argument("--out", type=Path, default=Path(__file__).parent.parent / "poolctl/sim/xapi/datamodel.json")
    p.add_argument("--add-class", action="append", default=[], help="derive this class too")
    p.add_argument("--probe", action="append", default=[], help="and have the conformance test probe it")
    args = p.parse_args(argv)
    old = json.loads(args.out.read_text()) if args.out.exists() else {"classes": {}, "probed": []}
    names = list(old["classes"])
    names += [c for c in [*args.add_class, *args.probe] if c not in names]
    probed = list(old.get("probed", []))
    probed += [c for c in args.probe if c not in probed]
    if not names:
        p.error("no classes: give --add-class/--probe, or --out a table that lists them")
    table = derive(args.repo, args.commit, tuple(names), tuple(probed))
    args.out.write_text(json.dumps(table, indent=1, sort_keys=False) + "\n")
    for cls, c in table["classes"].items():
        added = [f["name"] for f in c["fields"] if "from" in f]
        print(
            f"{cls}: {len(c['fields'])} fields, {len(c['messages'])} messages"
            + (f"; from .ml: {added}" if added else "")
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
