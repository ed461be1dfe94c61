"""Loading the model in the background, so the server listens (and /ping says 503) at once.

SageMaker polls /ping until it answers 200: that must mean "loaded and warmed up"
(model_fn warms up), never "the process is alive".  A failed load is fatal: it is logged
and the server exits non-zero, which SageMaker reports as a failed endpoint.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from .hooks import Hooks, RequestContext, load_hooks

log = logging.getLogger("serving")


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
        self._ready = threading.Event()

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

    def close(self) -> None:
        close = getattr(self.model, "close", None)
        if callable(close):
            close()
