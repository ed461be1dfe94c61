"""The model door: the four hooks of ``inference.py``, loaded the way the HF toolkit does.

sagemaker-huggingface-inference-toolkit imports SAGEMAKER_PROGRAM (default inference.py)
from ``<model_dir>/code`` with that directory first on sys.path, takes each hook it
defines and falls back to its defaults for the others, and passes a ``context`` only to
hooks whose signature has room for it.  We do the same, with the image's own
``code/inference.py`` as the defaults, so a model.tar.gz behaves here as on the DLC.
"""

from __future__ import annotations

import importlib.util
import inspect
import sys
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from reranker.errors import Cancelled

HOOKS = ("model_fn", "input_fn", "predict_fn", "output_fn")
# The image's default hooks: the installed inference.py beside the installed engine.  Found
# now, before a model's code/ goes first on sys.path and could shadow either.
IMAGE_PROGRAM = Path(importlib.util.find_spec("reranker").origin).parents[1] / "inference.py"


class RequestContext:
    """The ``context`` a hook receives, shaped like the MMS Context the DLC passes.

    ``context.request_processor[0].get_request_properties()`` are the request's headers,
    so one hook reads a header (e.g. X-Amzn-SageMaker-Custom-Attributes) under both servers.
    Two values are ours alone (reranker/context.py reads them): ``dialect``, a native
    route's fixed dialect, and ``cancel``, set when the client hangs up.
    """

    def __init__(self, headers: Mapping[str, str] | None = None, model_dir: str = "", *,
                 dialect: str | None = None, cancel: threading.Event | None = None):
        self._headers = dict(headers or {})
        self.request_processor = [self]
        self.system_properties = {"model_dir": model_dir}
        self.dialect = dialect
        self.cancel = cancel

    def get_request_properties(self) -> dict:
        return self._headers


# Arguments each hook takes before the optional context.
_ARITY = {"model_fn": 1, "input_fn": 2, "predict_fn": 2, "output_fn": 2}


class Hooks:
    def __init__(self, functions: dict[str, Callable], sources: dict[str, str]):
        self.functions = functions
        self.sources = sources  # hook -> file it came from, for the start-up log
        # Decided once, not per request: inspect.signature is slow on the hot path.
        self._wants_context = {name: _takes_context(fn, _ARITY[name])
                               for name, fn in functions.items()}

    def load_model(self, model_dir: str, context: RequestContext):
        return self._call("model_fn", context, model_dir)

    def invoke(self, model, body: bytes, content_type: str | None, accept: str | None,
               context: RequestContext) -> tuple[bytes, Any]:
        """Request bytes to response bytes; also returns the hook's result for the log."""
        # An output_fn that states its Accept rule (the image's does) has it checked before
        # the model works for an answer it would then refuse.
        check_accept = getattr(self.functions["output_fn"], "check_accept", None)
        if check_accept is not None:
            check_accept(accept)
        _check_wanted(context)
        request = self._call("input_fn", context, body, content_type)
        _check_wanted(context)
        result = self._call("predict_fn", context, request, model)
        payload = self._call("output_fn", context, result, accept)
        if isinstance(payload, str):
            payload = payload.encode("utf-8")
        return bytes(payload), result

    def _call(self, name: str, context: RequestContext, *args):
        if self._wants_context[name]:
            return self.functions[name](*args, context)
        return self.functions[name](*args)


def _check_wanted(context: RequestContext) -> None:
    """Cancelled when nobody waits for the answer any more (the client hung up, or the
    deadline passed): work queued behind a busy pool is dropped before it starts."""
    cancel = getattr(context, "cancel", None)
    if cancel is not None and cancel.is_set():
        raise Cancelled("the client closed the connection or the request's time ran out")


def load_hooks(model_dir: str, program: str = "inference.py") -> Hooks:
    functions: dict[str, Callable] = {}
    sources: dict[str, str] = {}
    user_code = Path(model_dir) / "code"
    if (user_code / program).is_file():
        # The SageMaker contract: a model's code/ comes first, so its inference.py imports
        # the modules shipped beside it, as on the DLC -- except the engine: the server
        # has imported the image's reranker already (its settings parser), and one copy
        # serves, so the errors the server catches are the ones the engine raises.
        sys.path.insert(0, str(user_code))
        _collect(_import(user_code / program, Path(program).stem), functions, sources)
    if len(functions) < len(HOOKS):
        name = "inference" if not functions else "_image_inference"
        _collect(_import(IMAGE_PROGRAM, name), functions, sources)
    return Hooks(functions, sources)


def _import(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def _collect(module, functions: dict, sources: dict) -> None:
    for hook in HOOKS:
        fn = getattr(module, hook, None)
        if callable(fn) and hook not in functions:
            functions[hook] = fn
            sources[hook] = str(module.__file__)


def _takes_context(fn: Callable, arity: int) -> bool:
    """Pass ``context`` only when the hook takes one more argument (the toolkit's rule)."""
    params = inspect.signature(fn).parameters.values()
    return any(p.kind is p.VAR_POSITIONAL for p in params) or len(params) > arity
