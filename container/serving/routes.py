"""HTTP routing: GET /ping, POST /invocations, POST /endpoints/{name}/invocations, and the
native rerank APIs: POST /rerank (TEI's, or the Cohere shape Infinity and vLLM answer
there), POST /v1/rerank, /v2/rerank (Cohere) and POST /score, /v1/score (vLLM); GET /info
(TEI's) and GET /v1/models (vLLM's and Infinity's) say what is served.

The native routes are /invocations with the dialect fixed by the route (for /rerank, a
choice of two, made by the body): the hooks get it as the context's ``dialect``
(reranker/context.py), which wins over a ``dialect=`` the client sends in
X-Amzn-SageMaker-Custom-Attributes, so the same hooks parse, score and render.

Handlers stay on the event loop only to route, read and admit; the hooks run in the
predict thread pool, where concurrent requests meet in the engine's batcher.  The body is
read before admission, so a slow client holds no slot.  A client that hangs up cancels
its rows in the batcher and is logged as 499.  Every answer is JSON: typed errors keep
their status and body, anything else is our fault (500, with the request id to find the
traceback in the log).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import threading

from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from reranker.errors import clip

from . import info, openapi, runtime_api
from .body import read_body
from .errors import ClientGone, DeadlineExceeded, NotReady, ShuttingDown, Unhealthy, is_typed
from .hooks import RequestContext

log = logging.getLogger("serving")

JSON = "application/json"


async def ping(request: Request) -> Response:
    loader = request.app.state.loader
    if not loader.ready:
        return error_response(request, NotReady())
    if not await loader.healthy():
        return error_response(request, Unhealthy())
    return JSONResponse({"status": "ok"})


def when_ready(answer):
    """A GET route that describes the model: 503 until it is loaded."""
    async def endpoint(request: Request) -> Response:
        if not request.app.state.loader.ready:
            return error_response(request, NotReady())
        return answer(request)
    return endpoint


async def invocations(request: Request, dialect: str | None = None) -> Response:
    try:
        return await _invoke(request, dialect)
    except ClientDisconnect:
        return error_response(request, ClientGone())
    except Exception as exc:  # every failure answers JSON; none escapes as plain text
        return error_response(request, exc)
    except asyncio.CancelledError:
        # uvicorn cancels what is still running when the shutdown deadline passes: the
        # client gets a 503 it may retry elsewhere rather than a dropped connection.
        return error_response(request, ShuttingDown())


async def runtime_invocations(request: Request) -> Response:
    response = await invocations(request)
    if response.status_code >= 300:
        return runtime_api.model_error(response, request.state.request_id)
    return runtime_api.success(response)


def native(dialect: str):
    """A route whose body is always in ``dialect``."""
    async def endpoint(request: Request) -> Response:
        return await invocations(request, dialect)
    return endpoint


async def _invoke(request: Request, dialect: str | None) -> Response:
    state = request.app.state
    loader = state.loader
    if not loader.ready:
        raise NotReady()
    config = state.config
    body = await read_body(request, config.max_payload_bytes, config.body_timeout)
    give_back = state.admission.take()
    cancel = threading.Event()  # drops the request's rows from the batcher when set
    context = RequestContext(dict(request.headers), loader.model_dir, dialect=dialect,
                             cancel=cancel)
    call = functools.partial(loader.hooks.invoke, loader.model, body,
                             request.headers.get("content-type"),
                             request.headers.get("accept"), context)
    try:
        work = asyncio.get_running_loop().run_in_executor(state.executor, call)
    except BaseException:
        give_back()
        raise
    # The slot is given back when the work ends, not when this handler returns: work a
    # client left still holds a thread until it sees ``cancel``.
    work.add_done_callback(give_back)
    try:
        payload, result = await _unless_disconnected(request, work, config.request_timeout)
    finally:
        cancel.set()  # a no-op once the work is done; else nobody waits for it
    request.state.log.update(_summary(result))
    return Response(payload, media_type=getattr(result, "content_type", JSON))


async def _unless_disconnected(request: Request, work: asyncio.Future, deadline: float):
    """``work``'s result; ClientDisconnect as soon as the client hangs up, DeadlineExceeded
    once ``deadline`` seconds have passed (0: none)."""
    watcher = asyncio.ensure_future(_disconnect(request))
    try:
        await asyncio.wait({work, watcher}, timeout=deadline or None,
                           return_when=asyncio.FIRST_COMPLETED)
        if work.done():
            return work.result()
        if watcher.done():
            raise ClientDisconnect()
        raise DeadlineExceeded(deadline)
    finally:
        watcher.cancel()
        # Abandoned work still ends (Cancelled, or a result nobody reads): retrieve it
        # quietly, or asyncio logs "exception was never retrieved".
        work.add_done_callback(lambda done: done.cancelled() or done.exception())


async def _disconnect(request: Request) -> None:
    """Returns when the client closes the connection (the body has been read already, so
    the only message left to receive is the disconnect)."""
    while (await request.receive())["type"] != "http.disconnect":
        pass


def _summary(result) -> dict:
    """What the request log says about a RerankResult (duck-typed: custom hooks may differ)."""
    inner = getattr(result, "request", None)
    pairs = getattr(inner, "pairs", None)
    return {"dialect": getattr(inner, "dialect", None),
            "documents": len(pairs) if pairs is not None else None,
            "tokens": getattr(result, "tokens", None),
            "top_score": _top_score(result)}


def _top_score(result) -> float | None:
    """The best document's 0..1 relevance: how sure the reranker is of its first hit (a
    drift signal when it falls across requests)."""
    relevance = getattr(result, "relevance", None)
    try:
        return round(float(max(relevance)), 6) if len(relevance) else None
    except (TypeError, ValueError):
        return None


def error_response(request: Request, exc: BaseException) -> Response:
    if is_typed(exc):
        body, status = exc.to_dict(), exc.status
    else:
        log.error("internal error", exc_info=exc,
                  extra={"event": "internal_error", "request_id": request.state.request_id})
        status = 500
        body = {"error": {"type": "internal_error", "request_id": request.state.request_id,
                          "message": "the server failed on this request; the log has the "
                                     "traceback under this request id"}}
    request.state.log["error"] = body["error"].get("type")
    headers = {"Retry-After": "1"} if status == 503 else None
    if getattr(exc, "leaves_body_unread", False):
        headers = {"Connection": "close"}  # what is left of it would read as a request
    return JSONResponse(body, status_code=status, headers=headers)


async def http_error(request: Request, exc: HTTPException) -> Response:
    """Starlette's 404 and 405, in our JSON shape (405 keeps its Allow header)."""
    kind = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
    path = clip(request.url.path, 200)  # never echo a 64 KB path back whole
    message = {404: f"no route for {path}; use {_served(request.app.routes)}",
               405: f"{request.method} is not allowed on {path}"}.get(
        exc.status_code, str(exc.detail))
    request.state.log["error"] = kind
    return JSONResponse({"error": {"type": kind, "message": message}},
                        status_code=exc.status_code, headers=exc.headers)


def _served(routes) -> str:
    """The app's own routes (with /metrics where it is on), so the list never goes stale."""
    served = [f"{'POST' if 'POST' in route.methods else 'GET'} {route.path}"
              for route in routes
              if getattr(route, "methods", None) and "{" not in route.path]
    return ", ".join(served[:-1]) + " or " + served[-1]


async def internal_error(request: Request, exc: Exception) -> Response:
    return error_response(request, exc)


ROUTES = [
    Route("/ping", ping, methods=["GET"]),
    Route("/invocations", invocations, methods=["POST"]),
    Route("/endpoints/{name}/invocations", runtime_invocations, methods=["POST"]),
    Route("/rerank", native("rerank"), methods=["POST"]),
    Route("/v1/rerank", native("cohere"), methods=["POST"]),
    Route("/v2/rerank", native("cohere"), methods=["POST"]),
    Route("/score", native("score"), methods=["POST"]),
    Route("/v1/score", native("score"), methods=["POST"]),
    Route("/info", when_ready(info.tei_info), methods=["GET"]),
    Route("/v1/models", when_ready(info.models), methods=["GET"]),
    Route("/openapi.json", openapi.openapi, methods=["GET"]),
]
