"""Engine level: every peer scores the same requests, interleaved, in one process.

Requests are run round-robin (request 1 by every peer, then request 2, ...; the peer
order rotates each round), so a noisy neighbour on a shared machine slows everyone alike
and the ratios stay fair.  Each peer gets an untimed warm-up first.
"""

from __future__ import annotations

import dataclasses
import gc
import resource
import time
from collections.abc import Callable

import numpy as np

from .flops import Shape
from .metrics import Deviation, percentile
from .peers import Peer
from .workloads import Workload


@dataclasses.dataclass
class PeerSpec:
    """A peer to build lazily, so a failing or missing one is skipped with its reason."""

    name: str
    build: Callable[[], Peer]


class Reference:
    """A plain fp32 ``AutoModelForSequenceClassification`` forward pass, one pair at a time
    (no padding at all): what "scores within 1e-5" is measured against."""

    def __init__(self, model_dir, max_length: int, device: str = "cpu"):
        from transformers import AutoTokenizer

        self.model_dir = str(model_dir)
        self.device = device
        self.tokenizer = AutoTokenizer.from_pretrained(self.model_dir)
        self.model = None  # loaded on first score(): lengths alone need only the tokenizer
        self.max_length = max_length

    def _load(self):
        import torch
        from transformers import AutoModelForSequenceClassification

        self.model = AutoModelForSequenceClassification.from_pretrained(
            self.model_dir, dtype=torch.float32).to(self.device).eval()
        return self.model

    def lengths(self, query: str, documents: list[str]) -> list[int]:
        enc = self.tokenizer([query] * len(documents), documents, truncation="only_second",
                             max_length=self.max_length)
        return [len(ids) for ids in enc["input_ids"]]

    def score(self, query: str, documents: list[str]) -> np.ndarray:
        import torch

        model = self.model or self._load()
        out = []
        with torch.inference_mode():
            for doc in documents:
                inputs = self.tokenizer(query, doc, truncation="only_second",
                                        max_length=self.max_length, return_tensors="pt")
                inputs = {k: v.to(self.device) for k, v in inputs.items()}
                logits = model(**inputs).logits.float().cpu().numpy()[0]
                out.append(float(logits[0]) if len(logits) == 1 else float(logits[1] - logits[0]))
        return np.asarray(out)

    def close(self) -> None:
        self.model = None
        gc.collect()


def model_max_length(model_dir) -> int:
    """The engine's rule (reranker.model_dir), with the engine's default cap."""
    from reranker import model_dir as model_facts
    from reranker.settings import Settings

    return model_facts.read(model_dir).usable_length(Settings().max_length)


class WorkloadRun:
    """Timings, token counts and scores of every peer over one workload."""

    def __init__(self, workload: Workload, peers: dict[str, Peer], shape: Shape,
                 lengths: list[list[int]]):
        self.workload = workload
        self.peers = peers
        self.shape = shape
        self.lengths = lengths
        self.latencies = {name: [] for name in peers}
        self.cpu_seconds = {name: 0.0 for name in peers}
        self.computed = {name: 0 for name in peers}
        self.scores: dict[str, list[np.ndarray]] = {name: [] for name in peers}

    def run(self, advance: Callable[[str], None]) -> None:
        names = list(self.peers)
        for i, request in enumerate(self.workload.requests):
            pairs = [(request.query, d) for d in request.documents]
            for name in names[i % len(names):] + names[:i % len(names)]:
                peer = self.peers[name]
                advance(f"{self.workload.name} {peer.label} request {i + 1}")
                start, cpu = time.perf_counter(), process_cpu_seconds()
                scores = peer.score(request.query, request.documents)
                self.latencies[name].append(time.perf_counter() - start)
                self.cpu_seconds[name] += process_cpu_seconds() - cpu
                self.scores[name].append(np.asarray(scores, dtype=np.float64))
                self.computed[name] += peer.computed_tokens(pairs, self.lengths[i])

    def summary(self, gemm: dict, references: list[np.ndarray], top_k: int) -> dict:
        real = sum(sum(x) for x in self.lengths)
        useful = sum(self.shape.flops(x) for x in self.lengths)
        fp32_scores = self.scores.get("engine-fp32")
        out = {}
        for name, peer in self.peers.items():
            lat = self.latencies[name]
            seconds = sum(lat)
            flops_per_s = useful / seconds
            row = {
                "label": peer.label,
                "kind": peer.kind,
                "requests": len(lat),
                "pairs_per_s": self.workload.pairs / seconds,
                # Pairs per second of CPU the whole process used meanwhile: on a shared
                # machine wall time moves 2-4x with neighbours, this far less.
                "pairs_per_cpu_s": self.workload.pairs / max(self.cpu_seconds[name], 1e-9),
                "p50_ms": 1000 * percentile(lat, 50),
                "p95_ms": 1000 * percentile(lat, 95),
                "latencies_ms": [round(1000 * x, 2) for x in lat],
                "padding_efficiency": real / self.computed[name],
                "model_flops_per_s": flops_per_s,
                "share_of_fp32_gemm": share(flops_per_s, gemm.get("float32")),
                "flops_dtype": peer.flops_dtype,
                "share_of_own_gemm": share(flops_per_s, gemm.get(peer.flops_dtype)),
            }
            if references:
                dev = Deviation(top_k)
                for scores, ref in zip(self.scores[name], references):
                    dev.add(scores, ref)
                row["vs_plain_forward"] = dev.summary()
            if fp32_scores is not None:
                dev = Deviation(top_k)
                for scores, ref in zip(self.scores[name], fp32_scores):
                    dev.add(scores, ref)
                row["vs_engine_fp32"] = dev.summary()
            out[name] = row
        return {
            "description": self.workload.description,
            "requests": len(self.workload.requests),
            "pairs_per_request": self.workload.pairs / len(self.workload.requests),
            "real_tokens_per_pair": real / self.workload.pairs,
            "useful_flops_per_request": useful / len(self.workload.requests),
            "reference_requests": len(references),
            "results": out,
        }


def process_cpu_seconds() -> float:
    """User + system CPU time of this process, every thread included."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def share(rate: float, peak: float | None) -> float | None:
    return rate / peak if peak else None


def build_peers(specs: list[PeerSpec], log: Callable[[str], None]) -> tuple[dict, list]:
    peers, skipped = {}, []
    for spec in specs:
        try:
            peers[spec.name] = spec.build()
        except Exception as exc:  # a missing optional peer must not stop the benchmark
            skipped.append({"peer": spec.name, "reason": f"{type(exc).__name__}: {exc}"})
            log(f"skipped {spec.name}: {exc}")
    return peers, skipped


def warm_up(peers: dict[str, Peer], workload: Workload, docs: int = 8) -> None:
    request = workload.requests[0]
    for peer in peers.values():
        peer.score(request.query, request.documents[:docs])


def close_all(peers: dict[str, Peer]) -> None:
    for peer in peers.values():
        peer.close()
    peers.clear()
    gc.collect()
