"""The ASGI app: routes, shared state, and the model loading behind the listening socket."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.routing import Route

from . import routes
from .admission import Admission
from .auth import ApiKey
from .config import ServerConfig
from .loader import ModelLoader
from .metrics import Metrics, scrape
from .requestlog import RequestLog
from .requestmetrics import RequestMetrics
from .shutdown import phases


def build_app(config: ServerConfig, on_failure: Callable[[], None] = lambda: None):
    metrics = Metrics() if config.metrics else None
    loader = ModelLoader(config.model_dir, config.program, on_failure,
                         on_loaded=metrics.attach if metrics else lambda loader: None)
    # One thread per admitted request: each waits in the batcher while others join it.
    executor = ThreadPoolExecutor(max_workers=config.max_concurrency,
                                  thread_name_prefix="predict")

    @contextlib.asynccontextmanager
    async def lifespan(app):
        loader.start()  # in the background: uvicorn binds the port right after this
        yield
        executor.shutdown(wait=False, cancel_futures=True)
        loader.close(timeout=phases(config.shutdown_timeout).close)

    scraped = [Route(config.metrics_path, scrape, methods=["GET"])] if metrics else []
    app = Starlette(routes=[*routes.ROUTES, *scraped], lifespan=lifespan,
                    exception_handlers={HTTPException: routes.http_error,
                                        Exception: routes.internal_error})
    # Starlette redirects /invocations/ to /invocations on the client's Host header: an
    # open redirect.  Paths match exactly; anything else is a JSON 404.
    app.router.redirect_slashes = False
    app.state.config = config
    app.state.loader = loader
    app.state.admission = Admission(config.max_concurrency)
    app.state.executor = executor
    app.state.metrics = metrics
    gated = ApiKey(app, config.api_key) if config.api_key else app
    # Inside RequestLog, so it reads the fields the handlers log (dialect, error, ...).
    return RequestLog(RequestMetrics(gated, metrics, app.routes) if metrics else gated)
