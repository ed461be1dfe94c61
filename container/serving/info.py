"""What is served, for clients that ask before they call: TEI's ``GET /info`` and the
OpenAI-style ``GET /v1/models`` that vLLM and Infinity answer (clients read the model's name
there to put it in their requests).

Both read the engine's ``describe()`` (duck-typed: a custom model_fn may return any object,
and then only the model directory's name is known).
"""

from __future__ import annotations

import os

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

import reranker


def served(request: Request) -> dict:
    loader = request.app.state.loader
    engine = loader.describe().get("engine") or {}
    name = engine.get("model") or os.path.basename(os.path.normpath(loader.model_dir))
    return {**engine, "model": name}


def tei_info(request: Request) -> Response:
    engine, config = served(request), request.app.state.config
    settings = getattr(request.app.state.loader.model, "settings", None)
    return JSONResponse({
        "model_id": engine["model"],
        "model_dtype": engine.get("dtype"),
        "model_type": {"reranker": {"num_labels": engine.get("num_labels")}},
        "max_input_length": engine.get("max_length"),
        "max_batch_tokens": engine.get("batch_tokens"),
        "max_client_batch_size": getattr(settings, "max_documents", None),
        "max_concurrent_requests": config.max_concurrency,
        "version": reranker.__version__,
        "engine": engine})


def models(request: Request) -> Response:
    loaded = int(request.app.state.loader.loaded_at or 0)
    return JSONResponse({"object": "list", "data": [
        {"id": served(request)["model"], "object": "model", "created": loaded,
         "owned_by": "reranker"}]})
