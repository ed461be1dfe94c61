"""The engine: a request's pairs in, scores out, one shared model behind a batcher.

Thread-safe: any number of threads may call :meth:`Reranker.rerank` at once; their rows
are scored together by :class:`reranker.batching.Batcher`.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time

import numpy as np

from . import model_dir as model_facts
from . import observe, profiles, score_cache, scoring
from .backends.base import Backend, ModelLoadError
from .batching import Batcher, Unbatched
from .encoding import PairEncoder
from .errors import InvalidRequest, NonFiniteScore, PayloadTooLarge, TooLargeForDevice
from .loading import inspect_model_dir, load_backend
from .prefix_batching import PrefixBatcher
from .profiles import Profile
from .prompts import PromptEncoder, PromptGroup
from .request import RerankRequest, RerankResult
from .settings import Settings

log = logging.getLogger(__name__)

# Two documents of two lengths: see Reranker.warm_up.
WARM_UP_DOCUMENTS = ["warm-up document", "a second warm-up document, longer than the first"]


class Reranker:
    def __init__(self, backend: Backend, tokenizer, facts: model_facts.ModelDir,
                 settings: Settings, name: str, profile: Profile | None = None,
                 prompts: PromptEncoder | None = None):
        scoring.check_num_labels(backend.num_labels)
        self.backend = backend
        self.settings = settings
        self.name = name
        self.profile = profile
        self.id2label = {int(k): v for k, v in (facts.config.get("id2label") or {}).items()}
        self.observer: observe.Observer = observe.NULL
        self.cache = score_cache.ScoreCache(settings.cache_rows) if settings.cache_rows else None
        if settings.instruction and not (profile and profile.takes_instruction):
            raise ModelLoadError(f"RERANK_INSTRUCTION is set but this model"
                                 f" ({profile.name if profile else 'a cross-encoder'}) takes"
                                 " no instruction")
        if profile is not None:
            self._init_prompts(tokenizer, facts, settings, profile, prompts)
            return
        self.prompts = None
        self.max_length = facts.usable_length(settings.max_length)
        self.encoder = PairEncoder(tokenizer, self.max_length, settings.max_query_share,
                                   segments=facts.segments)
        runner = Unbatched if backend.batches_itself else Batcher
        self.batcher = runner(
            backend.forward,
            token_budget=max(_token_budget(backend, settings), self.max_length),
            max_rows=settings.max_batch_rows,
            pad_id=self.encoder.pad_id,
            pad_multiple=_pad_multiple(backend.pad_multiple, self.max_length),
        )

    def _init_prompts(self, tokenizer, facts: model_facts.ModelDir, settings: Settings,
                      profile: Profile, prompts: PromptEncoder | None) -> None:
        """An LLM reranker: prompts from its profile, each query's prefix shared by its
        documents.  ``prompts``: the encoder ``from_dir`` already built (copying a
        150k-token tokenizer takes a second)."""
        self.max_length = min(settings.llm_max_length, profile.max_length, facts.max_length)
        self.encoder = None
        self.prompts = prompts or PromptEncoder(tokenizer, profile, self.max_length)
        self.prompts.max_length = self.max_length
        # A converted seq-cls head's one label already is the formula's result.
        self.formula = profile.formula if profile.head == "causal" else "logit"
        # The backend's budget (CPU: 1024 tokens in every precision, as measured for
        # continuations); a longer row still runs, alone.
        self.batcher = PrefixBatcher(self.backend, token_budget=_token_budget(self.backend,
                                                                              settings),
                                     max_rows=settings.max_batch_rows,
                                     pad_id=self.prompts.pad_id,
                                     pad_multiple=self.backend.pad_multiple)

    @classmethod
    def from_dir(cls, model_dir: str, settings: Settings | None = None) -> Reranker:
        from transformers import AutoTokenizer

        settings = settings or Settings.from_env()
        started = time.perf_counter()
        facts = inspect_model_dir(model_dir)
        tokenizer = AutoTokenizer.from_pretrained(model_dir,
                                                  trust_remote_code=settings.trust_remote_code)
        profile = profiles.recognise(facts.config, tokenizer, model_dir, settings.profile)
        prompts = None if profile is None else PromptEncoder(tokenizer, profile,
                                                             profile.max_length)
        backend = load_backend(model_dir, settings, profile=profile,
                               judged=prompts.judged if prompts else None)
        name = settings.model_name or _model_name(model_dir)
        engine = cls(backend, tokenizer, facts, settings, name, profile=profile, prompts=prompts)
        if settings.warmup or settings.compile:  # compiling belongs at load, never in a request
            engine.warm_up()
        log.info("model loaded", extra={"event": "model_loaded", **engine.describe(),
                                        "load_seconds": round(time.perf_counter() - started, 3)})
        return engine

    def warm_up(self) -> None:
        """One request at load time, so the first user's is not the slow one.  Two documents
        of two lengths: a compiled model (RERANK_COMPILE) specialises one-row batches, and
        both shapes compile here."""
        try:
            self.score("warm-up query", WARM_UP_DOCUMENTS)
        except Exception as exc:
            if not self.settings.compile:
                raise
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise ModelLoadError(f"RERANK_COMPILE=true: compiling the model failed ({first});"
                                 " unset RERANK_COMPILE") from exc

    def observe(self, observer: observe.Observer | None) -> None:
        """Report timings and batch shapes to ``observer`` from now on (None: to nobody)."""
        self.observer = self.batcher.observer = observe.guarded(observer)

    def describe(self) -> dict:
        info = {"model": self.name, "max_length": self.max_length,
                "batch_tokens": self.batcher.token_budget, "num_labels": self.backend.num_labels}
        if self.profile is not None:
            info.update(profile=self.profile.name, head=self.profile.head)
        if self.cache is not None:
            info["cache_rows"] = self.cache.capacity
        info.update(self.backend.describe())
        return info

    def score(self, query: str, documents: list[str], *, raw: bool = False) -> list[float]:
        """Convenience for Python callers: one score per document, in input order (an
        empty list for no documents)."""
        if not documents:
            return []
        request = RerankRequest("python", [(query, d) for d in documents], documents)
        result = self.rerank(request)
        return (result.raw if raw else result.relevance).tolist()

    def rerank(self, request: RerankRequest, cancel: threading.Event | None = None
               ) -> RerankResult:
        """Scores for the request's pairs.  Setting ``cancel`` (its client went away) drops
        the rows not computed yet and raises Cancelled."""
        self._check_limits(request)
        self._check_instruction(request)
        if self.prompts is not None:
            logits, tokens = self._score_prompts(request, cancel)
            self._check_finite(request, logits, range(len(logits)))
            return self._result(request, logits, tokens)
        chunk = self.chunk_mode(request)
        started = time.perf_counter()
        encoded = self.encoder.encode(
            request.pairs,
            chunk=chunk,
            max_chunks=self.max_chunks(request),
            overlap=self.settings.chunk_overlap,
            truncate=request.truncate,
            direction=request.truncation_direction,
            field=request.document_template(),
            max_length=self._token_cap(request),
            max_document_tokens=request.max_document_tokens,
        )
        self.observer.tokenized(time.perf_counter() - started, len(encoded.ids), encoded.tokens)
        with _naming_documents(request, encoded.owner):
            logits = self._forward_rows(encoded.ids, encoded.type_ids, cancel)
        self._check_finite(request, logits, encoded.owner)
        logits = _best_row_per_pair(logits, encoded.owner, len(request.pairs))
        return self._result(request, logits, encoded.tokens)

    def _forward_rows(self, ids: list[list[int]], type_ids: list[list[int]] | None,
                      cancel: threading.Event | None) -> np.ndarray:
        """Logits per row: from the score cache where it holds the row, the rest batched."""
        if self.cache is None:
            return self.batcher.run(ids, type_ids, cancel)
        keys = [score_cache.key(row, type_ids[i] if type_ids else None)
                for i, row in enumerate(ids)]
        found = self.cache.lookup(keys)
        todo = [i for i, row in enumerate(found) if row is None]
        self.observer.cached(len(keys) - len(todo), len(todo))
        if todo:
            try:
                computed = self.batcher.run([ids[i] for i in todo],
                                            [type_ids[i] for i in todo] if type_ids else None,
                                            cancel)
            except TooLargeForDevice as exc:
                exc.row = todo[exc.row]  # its index among all of the request's rows
                raise
            self.cache.store([keys[i] for i in todo], computed)
            for i, row in zip(todo, computed):
                found[i] = row
        return np.stack(found)

    def chunk_mode(self, request: RerankRequest) -> bool:
        """Whether a document too long for one row is scored as windows (the request's
        choice, else RERANK_LONG_DOCUMENTS)."""
        return (request.long_documents or self.settings.long_documents) == "chunk"

    def max_chunks(self, request: RerankRequest) -> int:
        """A request may ask for fewer chunks than RERANK_MAX_CHUNKS, never for more."""
        return min(request.max_chunks or self.settings.max_chunks, self.settings.max_chunks)

    def _result(self, request: RerankRequest, logits: np.ndarray, tokens: int) -> RerankResult:
        return RerankResult(
            request=request,
            logits=logits,
            raw=scoring.raw_scores(logits),
            relevance=scoring.relevance_scores(logits),
            tokens=tokens,
            model=self.name,
            id2label=self.id2label,
        )

    def _check_finite(self, request: RerankRequest, logits: np.ndarray, owner) -> None:
        """A NaN or an infinity is the model's arithmetic failing (fp16 overflows where bf16
        and fp32 do not); answering it as a score would rank that document by accident.
        ``owner``: the pair of each row (several rows per pair in chunk mode)."""
        bad = np.flatnonzero(~np.isfinite(logits).all(axis=1))
        if not len(bad):
            return
        dtype = getattr(self.backend, "dtype", "float32")
        pairs = sorted({int(owner[row]) for row in bad})
        log.error("non-finite score", extra={"event": "non_finite_score", "dtype": dtype,
                                             "pairs": len(pairs)})
        raise NonFiniteScore(
            f"the model computed {logits[bad[0]].tolist()} for {len(pairs)} of"
            f" {len(request.pairs)} documents in {dtype}, which overflowed: set"
            " RERANK_DTYPE=float32 (or bfloat16 on a GPU that has it)",
            field=request.document_name(pairs[0]))

    def check_body_documents(self, count: int) -> None:
        """413 for more documents than RERANK_MAX_BODY_DOCUMENTS in all the lines of one
        jsonlines body, so a body of many lines cannot lift the per-request limit; a line
        counts one document at least (``dialects.run``), so neither can one of many blank
        or broken lines, each of which costs a parse and an answer line."""
        limit = self.settings.max_body_documents or self.settings.max_documents
        variable = ("RERANK_MAX_BODY_DOCUMENTS" if self.settings.max_body_documents
                    else "RERANK_MAX_DOCUMENTS")
        if count > limit:
            raise PayloadTooLarge(f"{count} documents in the lines of one body (a line counts"
                                  f" one at least); the limit is {limit} ({variable}): split"
                                  " the lines across requests", field="body")

    @staticmethod
    def _check_count(count: int, limit: int, variable: str, field: str) -> None:
        if count > limit:
            raise PayloadTooLarge(f"{count} documents in one request; the limit is {limit}"
                                  f" ({variable}): split them across requests", field=field)

    def _score_prompts(self, request: RerankRequest, cancel: threading.Event | None = None
                       ) -> tuple[np.ndarray, int]:
        """One log-odds column per pair: the judged logits through the formula (a
        converted seq-cls head's one label as it is)."""
        chunk = self.chunk_mode(request)
        started = time.perf_counter()
        rows = self.prompts.encode(
            request.pairs,
            instruction=request.instruction or self.settings.instruction or None,
            instruction_field=request.instruction_field,
            query_field=request.query_field,
            truncate=request.truncate,
            direction=request.truncation_direction,
            field=request.document_template(),
            max_length=request.max_tokens,
            max_chunks=self.max_chunks(request) if chunk else 0,
            overlap=self.settings.chunk_overlap,
            max_document_tokens=request.max_document_tokens,
        )
        self.observer.tokenized(time.perf_counter() - started, len(request.pairs), rows.tokens)
        # Several windows of one document (chunk mode): the best one scores it.
        logits = np.full((len(request.pairs), 1), -np.inf, dtype=np.float32)
        # The prefix batcher reports the pair itself.
        with _naming_documents(request, range(len(request.pairs))):
            scored = self._score_groups(rows.groups, cancel)
        for group, judged in zip(rows.groups, scored):
            np.maximum.at(logits[:, 0], group.pairs, _formula(self.formula, judged))
        return logits, rows.tokens

    def _score_groups(self, groups: list[PromptGroup], cancel: threading.Event | None
                      ) -> list[np.ndarray]:
        """Judged logits per group: from the score cache where it holds a continuation
        (keyed with its prefix), the rest through the prefix batcher."""
        if self.cache is None:
            return self.batcher.run(groups, cancel)
        keys = [[score_cache.key(g.prefix, row) for row in g.rows] for g in groups]
        found = [self.cache.lookup(k) for k in keys]
        missing = [[i for i, row in enumerate(f) if row is None] for f in found]
        hits = sum(len(f) - len(m) for f, m in zip(found, missing))
        self.observer.cached(hits, sum(map(len, missing)))
        todo = [(g, m) for g, m in enumerate(missing) if m]
        if todo:
            partial = [PromptGroup(groups[g].prefix, [groups[g].rows[i] for i in m],
                                   [groups[g].pairs[i] for i in m]) for g, m in todo]
            for (g, m), judged in zip(todo, self.batcher.run(partial, cancel)):
                self.cache.store([keys[g][i] for i in m], judged)
                for i, row in zip(m, judged):
                    found[g][i] = row
        return [np.stack(f) for f in found]

    def _check_instruction(self, request: RerankRequest) -> None:
        if request.instruction is None:
            return
        if self.profile is None or not self.profile.takes_instruction:
            kind = self.profile.name if self.profile else "a cross-encoder"
            field = request.instruction_field
            raise InvalidRequest(
                f"{field}: this model ({self.name}, {kind}) takes no instruction; drop the"
                " field", field=field)

    def _token_cap(self, request: RerankRequest) -> int | None:
        """The request's cap on a pair's tokens, refused where it leaves no room for text."""
        smallest = self.encoder.smallest_length()
        if request.max_tokens is not None and request.max_tokens < smallest:
            raise InvalidRequest(f"truncate_prompt_tokens must be at least {smallest} for this"
                                 " model (its special tokens and one token of each text)",
                                 field="truncate_prompt_tokens")
        return request.max_tokens

    def _check_limits(self, request: RerankRequest) -> None:
        self._check_count(len(request.pairs), self.settings.max_documents,
                          "RERANK_MAX_DOCUMENTS", request.documents_field)
        cap = self.settings.max_chars
        if request.instruction is not None and len(request.instruction) > cap:
            # Checked before anything tokenizes it, like a query.
            field = request.instruction_field
            raise PayloadTooLarge(f"{field} has more than {cap} characters (RERANK_MAX_CHARS)",
                                  field=field)
        for i, (query, text) in enumerate(request.pairs):
            if len(query) > cap or len(text) > cap:
                field = (request.query_field.format(i=i) if len(query) > cap
                         else request.document_name(i))
                raise PayloadTooLarge(
                    f"{field} has more than {cap} characters (RERANK_MAX_CHARS)", field=field)

    def health(self) -> bool:
        """The backend's own check (a faulted GPU is unhealthy); may wait for a forward pass."""
        return bool(self.backend.health())

    def close(self, timeout: float = 10.0) -> None:
        """Stop scoring: requests still waiting fail with EngineClosed; returns within
        ``timeout`` seconds."""
        self.batcher.close(timeout)


@contextlib.contextmanager
def _naming_documents(request: RerankRequest, owner):
    """A row too large for the device's memory becomes a 413 naming its document."""
    try:
        yield
    except TooLargeForDevice as exc:
        pair = owner[exc.row]
        field = request.document_name(pair)
        raise TooLargeForDevice(
            f"{field} does not fit in the GPU's memory even scored alone; send it shorter"
            " (or lower RERANK_MAX_LENGTH / RERANK_LLM_MAX_LENGTH)", field=field,
            row=pair) from None


def _formula(formula: str, judged: np.ndarray) -> np.ndarray:
    """log-odds: logit(true) - logit(false), in fp32; logit: logit(true)."""
    judged = judged.astype(np.float32, copy=False)
    return judged[:, 0] - judged[:, 1] if formula == "log-odds" else judged[:, 0]


def _pad_multiple(multiple: int, max_length: int) -> int:
    """Rows padded to a multiple of ``multiple`` (tensor cores on CUDA), unless a row at
    ``max_length`` would then pass it: a model with absolute positions has no position
    for the extra tokens."""
    return multiple if max_length % multiple == 0 else 1


def _token_budget(backend: Backend, settings: Settings) -> int:
    if backend.batch_tokens and not settings.batch_tokens:
        return backend.batch_tokens
    return settings.batch_tokens_for(backend.device_type, str(backend.dtype))


def _best_row_per_pair(logits: np.ndarray, owner: list[int], pairs: int) -> np.ndarray:
    """Chunk mode scores a pair by its best window; otherwise rows and pairs coincide."""
    if len(owner) == pairs:
        return logits
    raw = scoring.raw_scores(logits)
    best = np.full(pairs, -1)
    for row, pair in enumerate(owner):
        if best[pair] < 0 or raw[row] > raw[best[pair]]:
            best[pair] = row
    return logits[best]


def _model_name(model_dir: str) -> str:
    """The hub id recorded at packaging time, else the directory's name."""
    marker = os.path.join(model_dir, "reranker.json")
    if os.path.isfile(marker):
        import json

        try:
            with open(marker) as fh:
                return json.load(fh).get("model_id") or os.path.basename(model_dir)
        except (OSError, ValueError):
            pass
    return os.path.basename(os.path.abspath(model_dir))
