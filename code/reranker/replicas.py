"""Which GPUs a model serves on, and one engine per GPU behind one object.

A multi-GPU instance (ml.g5.12xlarge: 4 A10G; ml.p5.48xlarge: 8 H100) would otherwise use
its first GPU only.  The two servers place models differently:

- The Hugging Face DLC's multi-model-server starts one worker process per GPU and tells
  each its own (``context.system_properties["gpu_id"]``): that worker's engine goes on
  that GPU, never all of them on the first.
- Our server is one process: it loads one engine per visible GPU (``RERANK_GPUS`` caps how
  many) and sends each request to the engine with the least work outstanding; requests
  that land on the same engine are batched together there.

A request's work is estimated by :func:`weight`, the characters of its pairs: a pair's
tokens, and so its cost, grow with its text, up to what the engine scores of it (the
model's limit, or its chunk windows).  A request of 100 long passages then weighs what it
costs, where counting requests weighed it as one 1-document request and could leave one
GPU with most of the work.  Characters are counted without tokenizing, so routing adds
next to nothing to a request's latency.

A replica is a whole :class:`Reranker`; :class:`Replicas` answers the same calls.
"""

from __future__ import annotations

import dataclasses
import threading

from .engine import Reranker
from .request import RerankRequest
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
         visible: int | None = None, threads: int = 0):
    """The model a hook serves: one engine, or one per GPU.  ``threads``: CPU threads where
    RERANK_THREADS says none (a model server's share of the cores)."""
    settings = settings or Settings.from_env()
    if threads and not settings.threads:
        settings = dataclasses.replace(settings, threads=threads)
    if visible is None:
        import torch

        visible = torch.cuda.device_count() if torch.cuda.is_available() else 0
    devices = devices_for(settings, gpu_id, visible)
    if len(devices) == 1:
        return Reranker.from_dir(model_dir, dataclasses.replace(settings, device=devices[0]))
    return Replicas([Reranker.from_dir(model_dir, dataclasses.replace(settings, device=d))
                     for d in devices])


# Characters a token covers at most, about (English averages four): a pair's weight stops
# growing where the engine stops scoring it.
CHARS_PER_TOKEN = 6


def weight(request: RerankRequest, most: int | None = None) -> int:
    """The request's work, estimated without tokenizing: the characters of each pair, at
    most ``most`` (what the engine scores of a pair), plus one so that a pair of empty
    strings (still a model row) counts."""
    most = most or float("inf")
    return sum(int(min(len(query) + len(text), most)) + 1 for query, text in request.pairs)


def scored_chars(engine: Reranker, request: RerankRequest) -> int:
    """About the most characters of one pair ``engine`` scores: its token limit, times the
    windows of chunk mode."""
    windows = engine.max_chunks(request) if engine.chunk_mode(request) else 1
    return engine.max_length * CHARS_PER_TOKEN * windows


def least(outstanding: list[int]) -> int:
    """The index of the engine with the least work outstanding (the first of equals)."""
    return min(range(len(outstanding)), key=outstanding.__getitem__)


class Replicas:
    """Engines on several devices, answering as one engine."""

    def __init__(self, engines: list[Reranker]):
        self.engines = engines
        self.settings = engines[0].settings
        self.name = engines[0].name
        self.backends = [e.backend for e in engines]
        # Each engine's sum of the weights of the requests it is scoring.
        self._outstanding = [0] * len(engines)
        self._lock = threading.Lock()

    def rerank(self, request: RerankRequest, cancel=None):
        work = weight(request, scored_chars(self.engines[0], request))
        index = self._take(work)
        try:
            return self.engines[index].rerank(request, cancel=cancel)
        finally:
            with self._lock:
                self._outstanding[index] -= work

    def _take(self, work: int) -> int:
        """The engine the request goes to, charged with its work until it finishes."""
        with self._lock:
            index = least(self._outstanding)
            self._outstanding[index] += work
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
