"""Which GPUs a model serves on, and one engine per GPU behind one object.

A multi-GPU instance (ml.g5.12xlarge: 4 A10G; ml.p5.48xlarge: 8 H100) would otherwise use
its first GPU only.  The two servers place models differently:

- The Hugging Face DLC's multi-model-server starts one worker process per GPU and tells
  each its own (``context.system_properties["gpu_id"]``): that worker's engine goes on
  that GPU, never all of them on the first.
- Our server is one process: it loads one engine per visible GPU (``RERANK_GPUS`` caps how
  many) and sends each request to the engine with the fewest requests in flight; requests
  that land on the same engine are batched together there.

A replica is a whole :class:`Reranker`; :class:`Replicas` answers the same calls.
"""

from __future__ import annotations

import dataclasses
import threading

from .engine import Reranker
from .settings import Settings


def devices_for(settings: Settings, gpu_id: int | None, visible: int) -> list[str]:
    """The device of each engine: ``gpu_id`` is the GPU a DLC worker was given (None
    under our server), ``visible`` how many GPUs torch sees."""
    if settings.device == "cpu" or settings.device.startswith("cuda:") or visible < 1:
        return [settings.device]
    if gpu_id is not None:
        return [f"cuda:{gpu_id}"]
    count = min(settings.gpus or visible, visible)
    return [settings.device] if count == 1 else [f"cuda:{i}" for i in range(count)]


def load(model_dir: str, gpu_id: int | None = None, settings: Settings | None = None,
         visible: int | None = None):
    """The model a hook serves: one engine, or one per GPU."""
    settings = settings or Settings.from_env()
    if visible is None:
        import torch

        visible = torch.cuda.device_count() if torch.cuda.is_available() else 0
    devices = devices_for(settings, gpu_id, visible)
    if len(devices) == 1:
        return Reranker.from_dir(model_dir, dataclasses.replace(settings, device=devices[0]))
    return Replicas([Reranker.from_dir(model_dir, dataclasses.replace(settings, device=d))
                     for d in devices])


class Replicas:
    """Engines on several devices, answering as one engine."""

    def __init__(self, engines: list[Reranker]):
        self.engines = engines
        self.settings = engines[0].settings
        self.name = engines[0].name
        self.backends = [e.backend for e in engines]
        self._in_flight = [0] * len(engines)
        self._lock = threading.Lock()

    def rerank(self, request, cancel=None):
        index = self._take()
        try:
            return self.engines[index].rerank(request, cancel=cancel)
        finally:
            with self._lock:
                self._in_flight[index] -= 1

    def _take(self) -> int:
        """The engine with the fewest requests in flight (the first of equals)."""
        with self._lock:
            index = min(range(len(self.engines)), key=self._in_flight.__getitem__)
            self._in_flight[index] += 1
            return index

    def check_body_documents(self, count: int) -> None:
        self.engines[0].check_body_documents(count)

    def describe(self) -> dict:
        info = dict(self.engines[0].describe())
        info["device"] = ",".join(str(e.describe().get("device")) for e in self.engines)
        info["replicas"] = len(self.engines)
        return info

    def observe(self, observer) -> None:
        for engine in self.engines:
            engine.observe(observer)

    def health(self) -> bool:
        return all(engine.health() for engine in self.engines)

    def close(self, timeout: float = 10.0) -> None:
        for engine in self.engines:
            engine.close(timeout)
