"""Errors answered with their own status where the serving context can set one (the DLC).

The Hugging Face toolkit turns any exception a hook raises into HTTP 400 with the
exception's text, so on the DLC a 413, 415, 422 or 406 would all read as 400.  Its model
server (multi-model-server) lets a handler set each request's status on the context
(``set_response_status``) and answers whatever body the handler returns.  So where the
context can, ``input_fn`` and ``predict_fn`` hand a request's error on as a ``Refusal``
instead of raising it, and ``output_fn`` answers it with the error's status and the same
JSON body our server sends.  Our server's context sets no status: there the hooks raise,
and the server maps the error (container/serving/errors.py).

The model server also keeps serving after ``model_fn`` fails; ``loaded`` then stands a
``FailedLoad`` in for the model, which answers 503 with the reason (and loads again in the
background after a passing failure), where the toolkit would load again on every request.
"""

from __future__ import annotations

import functools
import gc
import http
import logging
import threading
import time

from .backends.base import ModelLoadError
from .errors import ModelNotLoaded, RerankError
from .wire import encode_json

log = logging.getLogger(__name__)

INTERNAL = {"error": {"type": "internal_error", "message": "the model server failed on this"
                      " request; its log has the traceback"}}
# Seconds between attempts to load a model that failed to load under the model server.
RELOAD_SECONDS = 60.0


class Refusal:
    """A request's error, caught under a context that answers statuses, on its way to
    output_fn; ``error`` is None for an untyped failure (answered 500, logged)."""

    def __init__(self, error: RerankError | None):
        self.error = error


def answers_status(context) -> bool:
    return callable(getattr(context, "set_response_status", None))


def carried(hook):
    """For input_fn and predict_fn: a Refusal passes through; an error becomes one where
    the context answers statuses, and is raised elsewhere."""

    @functools.wraps(hook)
    def door(*args, **kwargs):
        if args and isinstance(args[0], Refusal):
            return args[0]
        context = _context(args, kwargs)
        try:
            return hook(*args, **kwargs)
        except RerankError as exc:
            if not answers_status(context):
                raise
            return Refusal(exc)
        except Exception:
            if not answers_status(context):
                raise
            log.exception("internal error")
            return Refusal(None)

    return door


def answered(hook):
    """For output_fn: a Refusal (or an error of its own: a 406) is answered with its status
    and JSON body where the context answers statuses, and raised elsewhere."""

    @functools.wraps(hook)
    def door(prediction, *args, **kwargs):
        context = _context((prediction, *args), kwargs)
        try:
            if isinstance(prediction, Refusal):
                if prediction.error is None:
                    return _answer(context, 500, INTERNAL)
                raise prediction.error
            return hook(prediction, *args, **kwargs)
        except RerankError as exc:
            if not answers_status(context):
                raise
            return _answer(context, exc.status, exc.to_dict())
        except Exception:
            if not answers_status(context):
                raise
            log.exception("internal error")
            return _answer(context, 500, INTERNAL)

    return door


def _answer(context, status: int, body: dict) -> bytes:
    try:
        phrase = http.HTTPStatus(status).phrase
    except ValueError:  # 499, which the standard library does not name
        phrase = ""
    context.set_response_status(status, phrase)
    return encode_json(body)


def _context(args: tuple, kwargs: dict):
    """A hook's context: its third argument (after the data and the content type, the
    model or the accept value), positional as the toolkit and our server pass it."""
    return kwargs.get("context", args[2] if len(args) > 2 else None)


def loaded(load, context):
    """``load()``, the model ``model_fn`` returns.  Where the context answers statuses (the
    DLC), a failure is logged and a ``FailedLoad`` stands in: the model server keeps serving
    after a failed load, and the toolkit would load again on every request and answer its
    400; elsewhere (our server, which then stops) the error is raised."""
    try:
        return load()
    except Exception as exc:
        if not answers_status(context):
            raise
        log.exception("the model did not load")
        return FailedLoad(load, exc)


class FailedLoad:
    """A model that did not load: each request is refused at once with 503 and the reason.
    A model the engine refuses (ModelLoadError) stays refused; any other failure (memory)
    is loaded again in the background, at most every ``RELOAD_SECONDS`` while requests come,
    and serves once it loads."""

    def __init__(self, load, error: Exception, clock=time.monotonic):
        self._load, self._clock = load, clock
        # The reason only: the exception's traceback would hold the failed load's tensors.
        self._reason = f"{type(error).__name__}: {error}"
        self._retry = not isinstance(error, ModelLoadError)
        self._tried = clock()
        self._model = None
        self._loading = False
        self._lock = threading.Lock()

    def rerank(self, *args, **kwargs):
        return self._ready().rerank(*args, **kwargs)

    def check_body_documents(self, count: int) -> None:
        self._ready().check_body_documents(count)

    def _ready(self):
        with self._lock:
            if self._model is not None:
                return self._model
            if (self._retry and not self._loading
                    and self._clock() - self._tried >= RELOAD_SECONDS):
                self._loading, self._tried = True, self._clock()
                threading.Thread(target=self._reload, name="reranker-reload",
                                 daemon=True).start()
            again = (f"; it is loaded again at most every {RELOAD_SECONDS:.0f} s"
                     if self._retry else "")
            raise ModelNotLoaded(f"the model did not load ({self._reason}){again}")

    def _reload(self) -> None:
        gc.collect()  # what the failed attempt left, before the next one allocates
        _empty_gpu_cache()
        try:
            model, reason = self._load(), None
        except Exception as exc:
            log.exception("the model did not load again")
            model, reason = None, f"{type(exc).__name__}: {exc}"
        with self._lock:
            self._model, self._loading = model, False
            self._reason = reason or self._reason
            self._tried = self._clock()


def _empty_gpu_cache() -> None:
    try:
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    except ImportError:
        pass
