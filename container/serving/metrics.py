"""Prometheus metrics of one server, served on GET /metrics for SageMaker to scrape.

SageMaker's detailed observability scrapes a container's ``/metrics`` on port 8080 every
60 s and publishes what it finds to CloudWatch (docs/serving.md, Metrics).  Each app has
its own registry, never prometheus_client's global one, so several apps can live in one
process.  Three sources feed it:

- the engine, through its observer hook (``reranker/observe.py``): tokenize time and
  queue wait per request, and every forward pass (time, rows, tokens, padding);
- the HTTP layer (``requestmetrics.py``): requests by route, dialect and status,
  latency, requests in flight, shed and cancelled requests;
- :class:`StateCollector`, read at scrape time: model ready, load time and identity,
  tokens per second over the last minute, process resources, GPU memory on CUDA.

A scrape only reads this registry: it takes no engine lock, no admission slot and no
predict thread, so it answers while every request is busy.  It renders on a thread of
the event loop's default pool, so the loop keeps serving meanwhile (a few hundred lines
take tens of milliseconds of Python on a busy CPU).
"""

from __future__ import annotations

import asyncio
import logging
import math
import sys
import threading
import time
from collections.abc import Callable, Iterable

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    disable_created_metrics,
)
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from starlette.requests import Request
from starlette.responses import Response

log = logging.getLogger("serving")

PREFIX = "reranker_"
# Seconds: from a cached tokenizer call (<1 ms) to a real-time endpoint's 60 s limit, and on
# to the hour an async endpoint or a Batch Transform call may take.
SECONDS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
           30.0, 60.0, 300.0, 900.0, 3600.0)
ROWS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)
TOKENS = (64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384, 32768)
EFFICIENCY = (0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99, 1.0)
SCORES = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99)
RATE_WINDOW = 60  # seconds behind reranker_tokens_per_second

# Each counter and histogram would also get a *_created series (its start time): twice the
# series in CloudWatch, which bills per series, for nothing a rate() needs.  The switch is
# prometheus_client's, for the whole process, and must be set before any metric exists.
disable_created_metrics()


class Metrics:
    """The instruments of one app; also the engine's observer (tokenized, waited,
    forwarded, cached)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic,
                 gpu_memory: Callable[[object], list] | None = None):
        self.registry = CollectorRegistry()
        self.token_rate = WindowRate(RATE_WINDOW, clock)
        self.state = StateCollector(self.token_rate, gpu_memory or cuda_memory)
        self._define_requests()
        self._define_engine()
        self.registry.register(self.state)
        ProcessCollector(registry=self.registry)  # CPU seconds, resident memory, open fds

    def _define_requests(self) -> None:
        r = self.registry
        self.requests = Counter(PREFIX + "requests", "HTTP requests answered, by route "
                                "template, wire format (dialect) and status code",
                                ("route", "dialect", "status"), registry=r)
        self.request_seconds = Histogram(PREFIX + "request_duration_seconds",
                                         "Time from a scoring request's arrival to the end of "
                                         "its answer (errors and sheds are not timed)",
                                         ("route",), buckets=SECONDS, registry=r)
        self.in_flight = Gauge(PREFIX + "requests_in_flight", "Scoring requests being "
                               "handled now (admitted or not yet refused)", registry=r)
        self.shed = Counter(PREFIX + "requests_shed", "Scoring requests answered 503, by "
                            "reason (overloaded, model_loading, shutting_down, deadline_exceeded)",
                            ("route", "reason"), registry=r)
        self.cancelled = Counter(PREFIX + "requests_cancelled", "Requests whose client "
                                 "disconnected before the response started", ("route",),
                                 registry=r)
        self.documents = Counter(PREFIX + "documents", "Documents (query-document pairs) "
                                 "in successfully answered requests", registry=r)
        self.top_score = Histogram(PREFIX + "top_relevance_score", "The best document's "
                                   "0..1 relevance per answered request: falling, the "
                                   "candidates or the queries have drifted from what the "
                                   "model knows", buckets=SCORES, registry=r)

    def _define_engine(self) -> None:
        r = self.registry
        self.tokenize_seconds = Histogram(PREFIX + "tokenize_duration_seconds",
                                          "Time to tokenize one request's pairs",
                                          buckets=SECONDS, registry=r)
        self.queue_seconds = Histogram(PREFIX + "queue_duration_seconds",
                                       "Time one request waited in the batcher before the "
                                       "model worker took it", buckets=SECONDS, registry=r)
        self.forward_seconds = Histogram(PREFIX + "forward_duration_seconds",
                                         "Time of one forward pass (one batch)",
                                         buckets=SECONDS, registry=r)
        self.batch_rows = Histogram(PREFIX + "batch_rows", "Rows (pairs or chunks) per "
                                    "forward pass", buckets=ROWS, registry=r)
        self.batch_tokens = Histogram(PREFIX + "batch_tokens", "Real tokens (no padding) "
                                      "per forward pass", buckets=TOKENS, registry=r)
        self.padding_efficiency = Histogram(PREFIX + "batch_padding_efficiency",
                                            "Real tokens / computed tokens (rows x padded "
                                            "length) per forward pass",
                                            buckets=EFFICIENCY, registry=r)
        self.tokens = Counter(PREFIX + "tokens", "Real tokens scored by the model "
                              "(rate() gives tokens per second)", registry=r)
        self.padded_tokens = Counter(PREFIX + "padded_tokens", "Tokens computed, padding "
                                     "included", registry=r)
        self.cache_rows = Counter(PREFIX + "score_cache_rows", "Rows looked up in the score "
                                  "cache (RERANK_CACHE_ROWS), by result: hit (answered "
                                  "without the model) or miss", ("result",), registry=r)

    # The engine's observer (reranker.observe.Observer): called from request threads and
    # the batcher's worker thread; prometheus_client's instruments are thread-safe.
    def tokenized(self, seconds: float, rows: int, tokens: int) -> None:
        self.tokenize_seconds.observe(seconds)

    def waited(self, seconds: float) -> None:
        self.queue_seconds.observe(seconds)

    def forwarded(self, seconds: float, rows: int, tokens: int, padded_tokens: int) -> None:
        self.forward_seconds.observe(seconds)
        self.batch_rows.observe(rows)
        self.batch_tokens.observe(tokens)
        self.padding_efficiency.observe(tokens / padded_tokens if padded_tokens else 1.0)
        self.tokens.inc(tokens)
        self.padded_tokens.inc(padded_tokens)
        self.token_rate.add(tokens)

    def cached(self, hits: int, misses: int) -> None:
        self.cache_rows.labels("hit").inc(hits)
        self.cache_rows.labels("miss").inc(misses)

    def attach(self, loader) -> None:
        """Called by the model loader once the model is loaded, before /ping says 200."""
        self.state.loader = loader
        self.state.info = _model_info(loader)
        observe = getattr(loader.model, "observe", None)
        if not callable(observe):  # a custom model_fn may return anything
            return
        try:
            observe(self)
        except Exception:  # some other observe(): serve anyway, without engine metrics
            log.warning("the model's observe() did not take the metrics observer; the "
                        "engine metrics stay empty", exc_info=True)

    def render(self, accept: str | None) -> tuple[bytes, str]:
        encoder, content_type = choose_encoder(accept or "")
        return encoder(self.registry), content_type


async def scrape(request: Request) -> Response:
    """GET /metrics, from the registry alone (no engine lock, no admission slot)."""
    metrics: Metrics = request.app.state.metrics
    body, content_type = await asyncio.to_thread(metrics.render, request.headers.get("accept"))
    return Response(body, headers={"Content-Type": content_type})


class StateCollector:
    """Gauges read when scraped, not kept up to date on the hot path."""

    def __init__(self, token_rate: WindowRate, gpu_memory: Callable[[object], list]):
        self.token_rate = token_rate
        self.gpu_memory = gpu_memory
        self.loader = None  # set once the model is loaded
        self.info: dict[str, str] = {}

    def describe(self) -> Iterable[Metric]:
        return []  # the families below vary (GPU ones exist only on CUDA)

    def collect(self) -> Iterable[Metric]:
        loader = self.loader
        yield _gauge("model_ready", "1 once the model is loaded and warm (GET /ping 200)",
                     1.0 if loader is not None and loader.ready else 0.0)
        yield _gauge("tokens_per_second", f"Real tokens scored per second over the last "
                     f"{RATE_WINDOW} s", self.token_rate.per_second())
        if loader is None:
            return
        yield _gauge("model_load_seconds", "Seconds the model took to load and warm up",
                     loader.load_seconds)
        info = GaugeMetricFamily(PREFIX + "model_info", "The model served (value 1)",
                                 labels=list(self.info))
        info.add_metric(list(self.info.values()), 1.0)
        yield info
        yield from self._gpu(loader.model)

    def _gpu(self, model) -> Iterable[Metric]:
        try:
            devices = self.gpu_memory(model)
        except Exception:  # a scrape must answer even if the driver misbehaves
            log.warning("reading GPU memory failed", exc_info=True)
            return
        if not devices:
            return
        allocated = GaugeMetricFamily(PREFIX + "gpu_memory_allocated_bytes", "GPU memory "
                                      "held by tensors (torch.cuda.memory_allocated)",
                                      labels=["device"])
        peak = GaugeMetricFamily(PREFIX + "gpu_memory_max_allocated_bytes", "Peak GPU "
                                 "memory held by tensors since start "
                                 "(torch.cuda.max_memory_allocated)", labels=["device"])
        for device, now, most in devices:
            allocated.add_metric([device], now)
            peak.add_metric([device], most)
        yield allocated
        yield peak


def cuda_memory(model, torch=None) -> list[tuple[str, int, int]]:
    """(device, allocated, max allocated) bytes per GPU the model computes on (one engine,
    or one per GPU: reranker.replicas), else []."""
    backends = getattr(model, "backends", None) or [getattr(model, "backend", None)]
    backends = [b for b in backends if getattr(b, "device_type", None) == "cuda"]
    # The engine imported torch already; never import it for the server's sake.
    torch = torch or sys.modules.get("torch")
    if not backends or torch is None:
        return []
    out = []
    for backend in backends:
        index = getattr(getattr(backend, "device", None), "index", None)
        if index is None:
            index = torch.cuda.current_device()
        out.append((f"cuda:{index}", int(torch.cuda.memory_allocated(index)),
                    int(torch.cuda.max_memory_allocated(index))))
    return out


class WindowRate:
    """Events per second over the last ``window`` seconds, in one-second buckets."""

    def __init__(self, window: int, clock: Callable[[], float]):
        self.window = window
        self.clock = clock
        self._counts = [0] * window
        self._seconds = [-1] * window
        self._lock = threading.Lock()  # batcher thread adds, the event loop reads

    def add(self, count: int) -> None:
        second = int(self.clock())
        slot = second % self.window
        with self._lock:
            if self._seconds[slot] != second:
                self._seconds[slot], self._counts[slot] = second, 0
            self._counts[slot] += count

    def per_second(self) -> float:
        now = int(self.clock())
        with self._lock:
            total = sum(c for c, s in zip(self._counts, self._seconds) if now - s < self.window)
        return total / self.window


def _gauge(name: str, documentation: str, value: float | None) -> GaugeMetricFamily:
    return GaugeMetricFamily(PREFIX + name, documentation,
                             value=math.nan if value is None else float(value))


def _model_info(loader) -> dict[str, str]:
    try:
        described = loader.describe()
    except Exception:  # a custom model's describe(); the metrics must not stop serving
        log.warning("describing the model for its metrics failed", exc_info=True)
        described = {}
    engine = described.get("engine") or {}
    return {"model": str(described.get("model") or "unknown"),
            "backend": str(engine.get("backend") or "unknown"),
            "device": str(described.get("device") or "unknown"),
            "dtype": str(described.get("dtype") or "unknown")}
