"""Every knob of the engine, read once from the environment (``RERANK_*``).

The same variables configure the SageMaker container (passed as the model's
environment), our own image and the local server, so the table in docs/engine.md is the
whole story.  Invalid values fail at start-up with a message naming the variable.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Mapping

from . import cpu, envconfig

_PREFIX = "RERANK_"

_DTYPES = ("auto", "float32", "bfloat16", "float16")
_DEVICES = ("auto", "cpu", "cuda")
_BACKENDS = ("auto", "torch", "onnx", "openvino")
_LONG_DOC = ("truncate", "chunk")
_PRECISIONS = ("auto", "exact", "fast")
_CHOICES = ("dtype", "device", "backend", "long_documents", "precision", "cpu_features",
            "onnx_runtime")
_ONNX_RUNTIMES = ("onnxruntime", "openvino")
# The dtypes each precision allows when RERANK_DTYPE is set too.
_PRECISION_DTYPES = {"exact": ("auto", "float32"), "fast": ("auto", "bfloat16", "float16")}


@dataclasses.dataclass(frozen=True)
class Settings:
    """Engine settings.  Field ``x`` is read from ``RERANK_X``; defaults are documented here."""

    # Upper bound on tokens per (query, document) pair; the model's own limit wins if lower.
    max_length: int = 512
    # Share of a pair's room a query keeps when it and its document are both too long
    # (0.5: longest-first truncation, as CrossEncoder cuts).
    max_query_share: float = 0.5
    # Padded tokens (rows x longest row) per forward pass; 0 takes the backend's preferred
    # budget (ONNX Runtime fp32: 512), else 1024 for fp32 on CPU, 2048 for bf16/int8 on
    # CPU, 16384 on GPU.
    batch_tokens: int = 0
    # Rows per forward pass, whatever the token budget.
    max_batch_rows: int = 256
    # "exact": fp32, scores as a plain forward pass gives them.  "fast": the matrix units'
    # precision, bf16 on CPUs with AMX/avx512_bf16 (fp32 where the CPU has no bf16
    # arithmetic: bf16 would be slower there), bf16 or fp16 on CUDA; ranks kept (Kendall
    # tau >= 0.99 vs fp32, docs/BENCHMARKS.md).  "auto": exact on CPU, fast on CUDA.
    # With RERANK_BACKEND=auto the runtime is the measured fastest for the precision and
    # CPU kind (reranker.backends.choice).
    precision: str = "auto"
    # "auto": from RERANK_PRECISION (fp32 on CPU, bf16 on CUDA when supported else fp16).
    dtype: str = "auto"
    # "auto" (the GPU when torch can use one), "cpu", "cuda", or one GPU: "cuda:1".
    device: str = "auto"
    # GPUs our server loads an engine on, one each (0: every GPU it sees); the DLC's
    # workers each take the GPU multi-model-server gives them (reranker.replicas).
    gpus: int = 0
    # "torch", "onnx", "openvino", or "auto": the fastest runtime measured for this CPU kind
    # and RERANK_PRECISION that the directory and packages allow (torch on CUDA; see
    # reranker.loading.plan and reranker.backends.choice).
    backend: str = "auto"
    # ONNX file the onnx backend runs: "auto" (onnx/model.onnx if present, else
    # onnx/model_int8.onnx), "fp32", "int8", or a file name inside onnx/.
    onnx_model: str = "auto"
    # Runtime for the ONNX file: "onnxruntime", or "openvino" (optional package; fp32, or
    # bf16 with RERANK_PRECISION=fast on CPUs with AMX/avx512_bf16).
    onnx_runtime: str = "onnxruntime"
    # Documents per request; larger requests get 413 (clients split them).
    max_documents: int = 1000
    # Documents of all the lines of one application/jsonlines body together (413 above);
    # 0: RERANK_MAX_DOCUMENTS.  Raise it for Batch Transform's MultiRecord, whose bodies
    # carry as many lines as fit in MaxPayloadInMB.
    max_body_documents: int = 0
    # Characters per document and per query before a request is refused (413).
    max_chars: int = 200_000
    # "truncate" (the references' behaviour) or "chunk": overlapping windows, max score.
    long_documents: str = "truncate"
    # Tokens shared by consecutive chunks in "chunk" mode.
    chunk_overlap: int = 64
    # Chunks per document in "chunk" mode, so a huge page cannot monopolise the model.
    max_chunks: int = 16
    # Rows whose scores are kept for repeated requests (the same query and document, cut
    # the same way), least recently used out; 0: no cache (reranker.score_cache).  About
    # 300 bytes a row: 100000 rows take some 30 MB.
    cache_rows: int = 0
    # Refuse pickle (pytorch_model.bin) weights unless set; even then loaded weights-only.
    allow_pickle: bool = False
    trust_remote_code: bool = False
    # CPU threads of the runtime; 0: one per core the process may use (fewer under a quota).
    threads: int = 0
    # The CPU to plan for instead of this one's /proc/cpuinfo ("auto"): amx, avx512_bf16,
    # plain, or a comma-separated flag list (reranker.cpu).  For tests and for hosts that
    # hide their CPU flags.
    cpu_features: str = "auto"
    # Model name reported in responses; default is the model directory's name.
    model_name: str = ""
    # Run one forward pass at load time so the first request is not the slow one.
    warmup: bool = True
    # LLM rerankers: torch.compile each decoder layer's MLP and RMSNorms (needs a C++
    # compiler on CPU, Triton on CUDA; compiled during the warm-up, seconds at load).
    # Measured on CPU: +11-23% pairs/s in bf16, +0-10% in fp32 (docs/models.md).
    compile: bool = False
    # LLM rerankers (docs/models.md).  The family's profile, when the directory's config
    # does not say it (or to override it): "qwen3-reranker", "qwen3-reranker-seq-cls",
    # "bge-reranker-v2-gemma", "mxbai-rerank-v2" or "chat-template"; "" recognises it.
    profile: str = ""
    # The instruction when a request sends none; "" keeps the profile's default.
    instruction: str = ""
    # Tokens per prompt (template, instruction, query and document) for LLM rerankers;
    # the model's own limit wins when lower.  RERANK_MAX_LENGTH is the cross-encoders'.
    llm_max_length: int = 4096

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides) -> Settings:
        env = os.environ if env is None else env
        values = envconfig.read(cls, env, VARIABLES, SettingsError)
        values = {k: v.lower() if k in _CHOICES else v for k, v in values.items()}
        values.update(overrides)
        settings = cls(**values)
        settings.validate()
        return settings

    def validate(self) -> None:
        _check(self.max_length >= 8, "max_length", "must be at least 8")
        _check(0.05 <= self.max_query_share <= 0.9, "max_query_share", "must be in [0.05, 0.9]")
        _check(self.batch_tokens >= 0, "batch_tokens", "must be >= 0")
        _check(self.max_batch_rows >= 1, "max_batch_rows", "must be >= 1")
        _check(self.dtype in _DTYPES, "dtype", f"must be one of {_DTYPES}")
        _check(self.device in _DEVICES or re.fullmatch(r"cuda:\d+", self.device) is not None,
               "device", f"must be one of {_DEVICES} or cuda:<index>")
        _check(self.gpus >= 0, "gpus", "must be >= 0 (0: every GPU)")
        _check(self.precision in _PRECISIONS, "precision", f"must be one of {_PRECISIONS}")
        allowed = _PRECISION_DTYPES.get(self.precision, _DTYPES)
        _check(self.dtype in allowed, "dtype",
               f"{self.dtype!r} contradicts RERANK_PRECISION={self.precision}; use one of"
               f" {allowed}")
        problem = cpu.check(self.cpu_features)
        _check(problem is None, "cpu_features", problem or "")
        _check(self.backend in _BACKENDS, "backend", f"must be one of {_BACKENDS}")
        _check(self.onnx_runtime in _ONNX_RUNTIMES, "onnx_runtime",
               f"must be one of {_ONNX_RUNTIMES}")
        _check(self.max_documents >= 1, "max_documents", "must be >= 1")
        _check(self.max_body_documents >= 0, "max_body_documents", "must be >= 0")
        _check(self.max_chars >= 1, "max_chars", "must be >= 1")
        _check(self.long_documents in _LONG_DOC, "long_documents", f"must be one of {_LONG_DOC}")
        _check(self.chunk_overlap >= 0, "chunk_overlap", "must be >= 0")
        _check(self.max_chunks >= 1, "max_chunks", "must be >= 1")
        _check(self.cache_rows >= 0, "cache_rows", "must be >= 0 (0: no cache)")
        _check(self.threads >= 0, "threads", "must be >= 0")
        _check(self.llm_max_length >= 16, "llm_max_length", "must be at least 16")

    def batch_tokens_for(self, device_type: str, dtype: str = "float32") -> int:
        if self.batch_tokens:
            return self.batch_tokens
        if device_type == "cuda":
            return 16384
        # fp32 on CPU is fastest with small, cache-sized batches; AMX bf16/int8 kernels
        # want larger matrices (docs/BENCHMARKS.md).
        return 1024 if dtype == "float32" else 2048

    def public(self) -> dict:
        """Settings as logged at start-up (nothing secret lives here)."""
        return dataclasses.asdict(self)


def _check(ok: bool, field: str, message: str) -> None:
    if not ok:
        raise SettingsError(f"{_PREFIX}{field.upper()} {message}")


class SettingsError(ValueError):
    """A configuration mistake: raised at start-up, never per request."""


# Field x is read from RERANK_X (the names the deploy tool checks before it sends them).
VARIABLES = envconfig.variables(Settings, _PREFIX)
