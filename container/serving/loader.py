"""Loading the model in the background, so the server listens (and /ping says 503) at once.

SageMaker polls /ping until it answers 200: that must mean "loaded and warmed up"
(model_fn warms up), never "the process is alive".  A failed load is fatal: it is logged
and the server exits non-zero, which SageMaker reports as a failed endpoint.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable

from .hooks import Hooks, RequestContext, load_hooks

log = logging.getLogger("serving")

# /ping is polled every few seconds: the runtime's health check (on CUDA it waits for the
# forward pass in progress) runs off the event loop, at most once per this many seconds.
HEALTH_INTERVAL = 5.0
# A ping waits this long for a check in progress (SageMaker gives /ping 2 s), and a check
# still running after HEALTH_HUNG seconds (a hung GPU) reads as unhealthy.
HEALTH_WAIT = 1.0
HEALTH_HUNG = 10.0


class ModelLoader:
    def __init__(self, model_dir: str, program: str, on_failure: Callable[[], None],
                 on_loaded: Callable[[ModelLoader], None] = lambda loader: None):
        self.model_dir = model_dir
        self.program = program
        self.on_failure = on_failure
        # Called with the loader once the model is loaded, before /ping says 200.
        self.on_loaded = on_loaded
        self.hooks: Hooks | None = None
        self.model = None
        self.load_seconds: float | None = None
        self.loaded_at: float | None = None  # time.time() when it became ready
        self._ready = threading.Event()
        self._healthy = True
        self._health_checked = float("-inf")  # when the last check started
        self._health_check: asyncio.Future | None = None

    @property
    def ready(self) -> bool:
        return self._ready.is_set()

    def start(self) -> None:
        threading.Thread(target=self._load, name="model-loader", daemon=True).start()

    def _load(self) -> None:
        started = time.perf_counter()
        try:
            self.hooks = load_hooks(self.model_dir, self.program)
            self.model = self.hooks.load_model(self.model_dir, RequestContext({}, self.model_dir))
            self.load_seconds = time.perf_counter() - started
            self.on_loaded(self)
        except BaseException:
            log.exception("model failed to load", extra={"event": "load_failed",
                                                          "model_dir": self.model_dir})
            self.on_failure()
            return
        self.loaded_at = time.time()
        self._ready.set()
        log.info("model ready", extra={"event": "ready", **self.describe(),
                                       "load_seconds": round(self.load_seconds, 3)})

    def describe(self) -> dict:
        """Model, device, dtype and engine settings for the start-up line (duck-typed: a
        custom model_fn may return any object)."""
        info = {"model_dir": self.model_dir, "hooks": self.hooks.sources if self.hooks else {}}
        describe = getattr(self.model, "describe", None)
        if callable(describe):
            engine = describe()
            info.update(model=engine.get("model"), device=engine.get("device"),
                        dtype=engine.get("dtype"), engine=engine)
        settings = getattr(self.model, "settings", None)
        if callable(getattr(settings, "public", None)):
            info["settings"] = settings.public()
        return info

    async def healthy(self) -> bool:
        """The model's own health (``health()``, duck-typed: True when it has none), as of
        the last check; a check older than HEALTH_INTERVAL is redone first."""
        now = time.monotonic()
        if self._health_check is None and now - self._health_checked >= HEALTH_INTERVAL:
            self._health_checked = now
            self._health_check = asyncio.ensure_future(asyncio.to_thread(self._check_health))
        check = self._health_check
        if check is not None:
            await asyncio.wait({check}, timeout=HEALTH_WAIT)
            if check.done():
                self._healthy, self._health_check = check.result(), None
            elif time.monotonic() - self._health_checked > HEALTH_HUNG:
                return False
        return self._healthy

    def _check_health(self) -> bool:
        check = getattr(self.model, "health", None)
        try:
            return bool(check()) if callable(check) else True
        except Exception:
            log.exception("health check failed", extra={"event": "unhealthy"})
            return False

    def close(self, timeout: float) -> None:
        """The model's ``close()``, waited for ``timeout`` seconds at most (the process
        exits after this, so a close that hangs is left behind)."""
        close = getattr(self.model, "close", None)
        if callable(close):
            thread = threading.Thread(target=close, name="model-close", daemon=True)
            thread.start()
            thread.join(timeout)
