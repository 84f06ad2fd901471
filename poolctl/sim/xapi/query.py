"""The expression language of get_all_records_where (xapi's db_filter), e.g.
`field "is_a_template"="false" and not (field "power_state"="Halted")`.
Values compare as xapi stores them: strings, with bools as "true"/"false" and ints in decimal."""

from __future__ import annotations

import re
from collections.abc import Callable

from . import errors
from .schema import Record

_TOKEN = re.compile(r'\s*(?:(?P<str>"(?:[^"\\]|\\.)*")|(?P<word>[A-Za-z_]+)|(?P<sym>[=()]))')
Predicate = Callable[[Record], bool]


def _db_string(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _tokens(expr: str) -> list[str]:
    out: list[str] = []
    pos = 0
    expr = expr.rstrip()
    while pos < len(expr):
        m = _TOKEN.match(expr, pos)
        if not m:
            raise errors.XapiError("INVALID_VALUE", "expr", expr)
        out.append(m.group(m.lastgroup or 0))
        pos = m.end()
    return out


def compile_where(expr: str) -> Predicate:
    tokens = _tokens(str(expr))
    pos = 0

    def take() -> str:
        nonlocal pos
        if pos >= len(tokens):
            raise errors.XapiError("INVALID_VALUE", "expr", expr)
        pos += 1
        return tokens[pos - 1]

    def term() -> Predicate:
        tok = take()
        low = tok.lower()
        if low == "not":
            inner = term()
            return lambda rec: not inner(rec)
        if tok == "(":
            inner = disjunction()
            if take() != ")":
                raise errors.XapiError("INVALID_VALUE", "expr", expr)
            return inner
        if low in ("true", "false"):
            constant = low == "true"
            return lambda rec: constant
        if low == "field":
            name = take().strip('"')
            if take() != "=":
                raise errors.XapiError("INVALID_VALUE", "expr", expr)
            value = take().strip('"')
            return lambda rec: name in rec and _db_string(rec[name]) == value
        raise errors.XapiError("INVALID_VALUE", "expr", expr)

    def conjunction() -> Predicate:
        left = term()
        while pos < len(tokens) and tokens[pos].lower() == "and":
            take()
            right = term()
            left = (lambda a, b: lambda rec: a(rec) and b(rec))(left, right)
        return left

    def disjunction() -> Predicate:
        left = conjunction()
        while pos < len(tokens) and tokens[pos].lower() == "or":
            take()
            right = conjunction()
            left = (lambda a, b: lambda rec: a(rec) or b(rec))(left, right)
        return left

    predicate = disjunction()
    if pos != len(tokens):
        raise errors.XapiError("INVALID_VALUE", "expr", expr)
    return predicate
