"""The ASGI app: routes, shared state, and the model loading behind the listening socket."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from starlette.applications import Starlette
from starlette.exceptions import HTTPException

from . import routes
from .admission import Admission
from .config import ServerConfig
from .loader import ModelLoader
from .requestlog import RequestLog
from .shutdown import phases


def build_app(config: ServerConfig, on_failure: Callable[[], None] = lambda: None):
    loader = ModelLoader(config.model_dir, config.program, on_failure)
    # One thread per admitted request: each waits in the batcher while others join it.
    executor = ThreadPoolExecutor(max_workers=config.max_concurrency,
                                  thread_name_prefix="predict")

    @contextlib.asynccontextmanager
    async def lifespan(app):
        loader.start()  # in the background: uvicorn binds the port right after this
        yield
        executor.shutdown(wait=False, cancel_futures=True)
        loader.close(timeout=phases(config.shutdown_timeout).close)

    app = Starlette(routes=routes.ROUTES, lifespan=lifespan,
                    exception_handlers={HTTPException: routes.http_error,
                                        Exception: routes.internal_error})
    # Starlette redirects /invocations/ to /invocations on the client's Host header: an
    # open redirect.  Paths match exactly; anything else is a JSON 404.
    app.router.redirect_slashes = False
    app.state.config = config
    app.state.loader = loader
    app.state.admission = Admission(config.max_concurrency)
    app.state.executor = executor
    return RequestLog(app)
