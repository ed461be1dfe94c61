"""Validation of request fields: each failure names the field and what was expected."""

from __future__ import annotations

import functools
import os

from ..errors import InvalidRequest, PayloadTooLarge
from ..settings import Settings, SettingsError

_MISSING = object()


def _kind(value) -> str:
    if value is None:
        return "null"
    return {bool: "a boolean", int: "an integer", float: "a number", str: "a string",
            list: "an array", dict: "an object"}.get(type(value), type(value).__name__)


def require_object(body, field: str = "body") -> dict:
    if not isinstance(body, dict):
        raise InvalidRequest(f"{field} must be a JSON object, got {_kind(body)}", field=field)
    return body


def text(body: dict, field: str, *, label: str | None = None, allow_empty: bool = False) -> str:
    label = label or field
    value = body.get(field, _MISSING)
    if value is _MISSING:
        raise InvalidRequest(f"{label} is required", field=label)
    if not isinstance(value, str):
        raise InvalidRequest(f"{label} must be a string, got {_kind(value)}", field=label)
    if not allow_empty and not value.strip():
        raise InvalidRequest(f"{label} must not be empty", field=label)
    return value


def array(body: dict, field: str, *, documents: bool = True) -> list:
    """A non-empty array; ``documents``: its items are documents (or pairs), held to
    RERANK_MAX_DOCUMENTS."""
    value = body.get(field, _MISSING)
    if value is _MISSING:
        raise InvalidRequest(f"{field} is required", field=field)
    if not isinstance(value, list):
        raise InvalidRequest(f"{field} must be an array, got {_kind(value)}", field=field)
    if not value:
        raise InvalidRequest(f"{field} must not be empty", field=field)
    if documents:
        check_count(len(value), field)
    return value


def check_count(count: int, field: str) -> None:
    """413 for an array longer than RERANK_MAX_DOCUMENTS before any pair is made of it: a
    few kilobytes of gzip can hold millions of empty strings, each a pair to build before
    the engine refuses them.  The engine checks its own setting again; this one is read from
    the environment, where the server and the DLC take it."""
    limit = _document_limit(os.environ.get(_LIMIT_VARIABLE))
    if limit is not None and count > limit:
        raise PayloadTooLarge(f"{count} documents in one request; the limit is {limit}"
                              " (RERANK_MAX_DOCUMENTS): split them across requests", field=field)


_LIMIT_VARIABLE = "RERANK_MAX_DOCUMENTS"


@functools.lru_cache(maxsize=4)
def _document_limit(raw: str | None) -> int | None:
    """The setting's value, read as Settings reads it (once per value); None when it does
    not read (the engine refused to load on it: nothing to hold to here)."""
    env = {} if raw is None else {_LIMIT_VARIABLE: raw}
    try:
        return Settings.from_env(env).max_documents
    except SettingsError:
        return None


def strings(body: dict, field: str, *, documents: bool = True) -> list[str]:
    values = array(body, field, documents=documents)
    for i, value in enumerate(values):
        if not isinstance(value, str):
            raise InvalidRequest(f"{field}[{i}] must be a string, got {_kind(value)}",
                                 field=f"{field}[{i}]")
    return values


def string_or_strings(body: dict, field: str) -> list[str]:
    """A field that holds one text as a string, or several as an array (vLLM, Elasticsearch)."""
    value = body.get(field, _MISSING)
    if isinstance(value, str):
        return [value]
    if value is not _MISSING and not isinstance(value, list):
        raise InvalidRequest(f"{field} must be a string or an array of strings, got"
                             f" {_kind(value)}", field=field)
    return strings(body, field)


def positive_int(body: dict, field: str, *, required: bool = False,
                 label: str | None = None) -> int | None:
    label = label or field
    value = body.get(field, _MISSING)
    if value is _MISSING or (value is None and not required):
        if required:
            raise InvalidRequest(f"{label} is required", field=label)
        return None
    value = _integral(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidRequest(f"{label} must be a positive integer, got {_kind(value)}",
                             field=label)
    if value < 1:
        raise InvalidRequest(f"{label} must be a positive integer, got {value}", field=label)
    return value


def _integral(value):
    # bool is an int in Python (kept a bool, so it is refused); 3.0 is accepted as 3, 3.5
    # is not.
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def boolean(body: dict, field: str, default: bool) -> bool:
    value = body.get(field, _MISSING)
    if value is _MISSING or value is None:
        return default
    if not isinstance(value, bool):
        raise InvalidRequest(f"{field} must be true or false, got {_kind(value)}", field=field)
    return value


def choice(body: dict, field: str, options: tuple[str, ...], default: str | None, *,
           label: str | None = None) -> str | None:
    label = label or field
    value = body.get(field, _MISSING)
    if value is _MISSING or value is None:
        return default
    if not isinstance(value, str) or value.lower() not in options:
        raise InvalidRequest(f"{label} must be one of {list(options)}", field=label)
    return value.lower()


def model(body: dict) -> None:
    """``model`` (Cohere, vLLM): a string or null, and ignored: the endpoint serves one."""
    if not isinstance(body.get("model"), (str, type(None))):
        raise InvalidRequest(f"model must be a string, got {_kind(body['model'])}",
                             field="model")


def priority(body: dict) -> None:
    """vLLM's ``priority``: absent or 0, since requests are served in arrival order."""
    if "priority" not in body:
        return
    value = body["priority"]
    if isinstance(value, bool) or _integral(value) != 0:  # false == 0 in Python
        raise InvalidRequest("priority must be 0: requests are served in arrival order",
                             field="priority")


def long_documents(body: dict) -> tuple[str | None, int | None]:
    """Our extension on every dialect: ``long_documents`` and Cohere's ``max_chunks_per_doc``."""
    mode = choice(body, "long_documents", ("truncate", "chunk"), None)
    chunks = positive_int(body, "max_chunks_per_doc")
    if chunks is not None and mode is None:
        mode = "chunk"
    return mode, chunks


def instruction(body: dict) -> str | None:
    """LLM rerankers' optional task instruction (our extension on every query dialect)."""
    if body.get("instruction") is None:
        return None
    return text(body, "instruction")


def token_cap(body: dict) -> int | None:
    """vLLM's ``truncate_prompt_tokens``: a positive cap on a pair's tokens; -1 or null is the
    model's own limit."""
    if body.get("truncate_prompt_tokens") in (None, -1):
        return None
    return positive_int(body, "truncate_prompt_tokens")


def activation(body: dict) -> bool:
    """vLLM's ``use_activation`` (``activation`` and ``softmax`` are its older names): false
    asks for raw logits instead of 0..1 scores."""
    for name in ("use_activation", "activation", "softmax"):
        if body.get(name) is not None:
            return boolean(body, name, True)
    return True
