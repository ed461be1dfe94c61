"""One way to read settings from environment variables into a dataclass's fields.

Three layers use it, each with its own prefix so that none can be mistaken for another:
the engine's ``Settings`` (``RERANK_*``), the server's ``ServerConfig`` (``SERVE_*`` and
SageMaker's own names) and the deploy tool's ``DeployConfig`` (``DEPLOY_*``).  A field's
annotation says how its text is read; a value that does not read raises the layer's own
error class with a message naming the variable.  Shipped in model.tar.gz with the engine,
so it runs on the DLC's Python too: standard library only.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

TRUE = ("1", "true", "yes", "on")
FALSE = ("0", "false", "no", "off")


def kind(field: dataclasses.Field) -> str:
    """``bool``, ``int``, ``float`` or ``str``: the first type named by the annotation."""
    name = field.type if isinstance(field.type, str) else getattr(field.type, "__name__",
                                                                     str(field.type))
    return name.split("|")[0].strip()


def parse(field: dataclasses.Field, raw, name: str, error: type[Exception] = ValueError):
    """``raw`` (text from the environment, or a TOML value) as ``field``'s type."""
    expected = kind(field)
    try:
        if expected == "bool":
            return _boolean(raw)
        if expected == "int":
            # TOML hands numbers over typed: 2.9 or true is no count, and is never cut to one.
            if isinstance(raw, bool) or (isinstance(raw, float) and not raw.is_integer()):
                raise ValueError(raw)
            return int(raw)
        if expected == "float":
            if isinstance(raw, bool):
                raise ValueError(raw)
            return float(raw)
    except (TypeError, ValueError, OverflowError):
        raise error(f"{name}={raw!r} is not a valid {expected}") from None
    return str(raw)


def variables(cls, prefix: str) -> dict[str, tuple[str, ...]]:
    """Field ``x`` of dataclass ``cls`` -> (``<PREFIX>X``,)."""
    return {f.name: (prefix + f.name.upper(),) for f in dataclasses.fields(cls)}


def read(cls, env: Mapping[str, str], names: Mapping[str, Sequence[str]],
         error: type[Exception] = ValueError) -> dict:
    """The fields ``env`` sets: per field the first of its variables that is not blank."""
    fields = {f.name: f for f in dataclasses.fields(cls)}
    values = {}
    for field_name, candidates in names.items():
        for variable in candidates:
            raw = env.get(variable)
            if raw is not None and str(raw).strip() != "":
                values[field_name] = parse(fields[field_name], str(raw).strip(), variable,
                                           error)
                break
    return values


def unknown(env: Mapping[str, str], prefix: str, names: Mapping[str, Sequence[str]]
            ) -> list[str]:
    """Variables that start with ``prefix`` but name no field: typos, or settings of an
    older version."""
    known = {variable for candidates in names.values() for variable in candidates}
    return sorted(k for k in env if k.startswith(prefix) and k not in known)


def _boolean(raw) -> bool:
    if isinstance(raw, bool):
        return raw
    lowered = str(raw).strip().lower()
    if lowered in TRUE:
        return True
    if lowered in FALSE:
        return False
    raise ValueError(raw)
