"""JSON text to Python values, refusing what would break later and repairing lone surrogates.

Python's ``json`` accepts things no later step can handle: ``NaN``/``Infinity`` and
``1e400`` (not JSON, and unrenderable), integers past 4300 digits (a ValueError), duplicate
keys (silently the last one wins, while other parsers keep the first), nesting deep enough
to overflow the renderer.  Each becomes a 400 naming what was wrong.

Lone surrogates (``"\\ud800"``) are valid JSON escapes (RFC 8259 8.2) that no UTF-8 text
can hold, so the tokenizer and the response encoder both fail on them.  They are replaced
by U+FFFD, as tokenizers and ``bytes.decode(errors="replace")`` do for invalid text: one
broken character in an indexed document (a Java string cut mid-pair, which Jackson writes as
an escape) must not fail a whole search.  A leading byte order mark is ignored (RFC 8259
8.1 allows it); bytes that are not UTF-8 are refused by the caller, since then the body is
not JSON at all.
"""

from __future__ import annotations

import json
import math
import re

from .errors import InvalidJSON

MAX_DEPTH = 64
MAX_NUMBER_DIGITS = 4300  # CPython's own int/str conversion limit
REPLACEMENT = "\ufffd"

_SURROGATE = re.compile("[\ud800-\udfff]")
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")


class _Refused(Exception):
    """Raised inside json's hooks; turned into InvalidJSON with a readable message."""

    def __init__(self, message: str, field: str = "body"):
        super().__init__(message)
        self.message = message
        self.field = field


def loads(text: str):
    """Parse one JSON text by the rules above; raise InvalidJSON naming the problem."""
    if text.startswith("\ufeff"):
        text = text[1:]
    repair = _may_hold_surrogates(text)
    duplicated: list[_Duplicated] = []
    try:
        value = json.loads(text, parse_constant=_constant, parse_float=_float,
                           parse_int=_int, object_pairs_hook=_object_hook(repair, duplicated))
    except _Refused as exc:
        raise InvalidJSON(exc.message, field=exc.field) from None
    except json.JSONDecodeError as exc:
        raise InvalidJSON(f"the body is not valid JSON: {exc.msg} at line {exc.lineno}"
                          f" column {exc.colno}", field="body") from None
    except RecursionError:
        raise _too_deep() from None
    if duplicated:
        raise _duplicate_error(value, duplicated[0])
    return _checked(value, 0, repair)


def _may_hold_surrogates(text: str) -> bool:
    if _SURROGATE_ESCAPE.search(text):
        return True
    try:
        text.encode("utf-8")  # a str handed in by Python code may hold raw surrogates
    except UnicodeEncodeError:
        return True
    return False


def _constant(name: str):
    raise _Refused(f"{name} is not valid JSON; send a finite number or null")


def _float(literal: str) -> float:
    value = float(literal)
    if not math.isfinite(value):
        raise _Refused(f"the number {literal[:40]} is out of range")
    return value


def _int(literal: str) -> int:
    if len(literal) > MAX_NUMBER_DIGITS:
        raise _Refused(f"an integer in the body has {len(literal)} digits; the limit is"
                       f" {MAX_NUMBER_DIGITS}")
    return int(literal)


class _Duplicated(dict):
    """An object that had ``key`` twice.  Parsing goes on, for json builds objects inner
    first and cannot say where one sits: the finished tree gives the key's path."""

    key = ""


def _object_hook(repair: bool, duplicated: list[_Duplicated]):
    def build(pairs: list[tuple[str, object]]) -> dict:
        if repair:
            pairs = [(_fix(key), value) for key, value in pairs]
        obj = dict(pairs)
        if len(obj) != len(pairs):
            seen: set[str] = set()
            obj = _Duplicated(obj)
            obj.key = next(k for k, _ in pairs if k in seen or seen.add(k))
            duplicated.append(obj)
        return obj
    return build


def _duplicate_error(root, obj: _Duplicated) -> InvalidJSON:
    """400 naming the twice-sent key by its path: ``documents[0].text``, not ``text``."""
    where = _path_to(root, obj)
    field = f"{where}.{obj.key}" if where else obj.key
    return InvalidJSON(f"the key {obj.key!r} appears more than once in"
                       f" {where or 'the body'}", field=field)


def _path_to(root, target) -> str:
    """The path of ``target`` within ``root`` (``""``: the root itself), searched without
    recursion: the depth limit is checked later."""
    stack = [(root, "")]
    while stack:
        item, path = stack.pop()
        if item is target:
            return path
        children = item.items() if isinstance(item, dict) else enumerate(item)
        for key, child in children:
            if isinstance(child, (dict, list)):
                step = f"[{key}]" if isinstance(item, list) else f".{key}" if path else key
                stack.append((child, path + step))
    return ""


def _checked(value, depth: int, repair: bool):
    """Depth check for every container; surrogate repair of strings when needed."""
    if not repair:
        _check_depth(value)
        return value
    if isinstance(value, str):
        return _fix(value)
    if not isinstance(value, (list, dict)):
        return value
    if depth >= MAX_DEPTH:
        raise _too_deep()
    if isinstance(value, list):
        return [_checked(item, depth + 1, repair) for item in value]
    return {key: _checked(item, depth + 1, repair) for key, item in value.items()}


def _check_depth(value) -> None:
    """The same depth rule without rebuilding anything (the common case: no surrogates)."""
    level, depth = ([value] if isinstance(value, (list, dict)) else []), 0
    while level:
        if depth >= MAX_DEPTH:
            raise _too_deep()
        deeper = []
        for item in level:
            for child in (item.values() if isinstance(item, dict) else item):
                if isinstance(child, (list, dict)):
                    deeper.append(child)
        level, depth = deeper, depth + 1


def _fix(text: str) -> str:
    return _SURROGATE.sub(REPLACEMENT, text)


def _too_deep() -> InvalidJSON:
    return InvalidJSON(f"the body nests JSON deeper than {MAX_DEPTH} levels", field="body")
