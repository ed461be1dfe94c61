"""A Python client for a reranker endpoint over boto3's ``sagemaker-runtime`` (Cohere dialect).

    from deploy.client import RerankClient
    client = RerankClient("reranker", region="eu-west-1")
    client.rerank("what is a panda?", documents, top_n=5)
    # [{"index": 2, "relevance_score": 0.98}, ...]
    client.rerank(query, documents, instruction="Prefer recent sources")  # LLM rerankers

Large lists are split across requests under the endpoint's payload limit (6 MB real-time,
4 MB serverless) and the server's documents-per-request limit (RERANK_MAX_DOCUMENTS), sent
a few at a time, and merged: relevance scores do not depend on what else is in a request,
so the merged ranking equals one big request's.  Split requests ask for raw scores (logits)
and the merge ranks by them, as the server does: relevance, their sigmoid, reaches exactly
1.0 past a logit of about 37 (an LLM reranker's confident answers) and would tie there.
Throttling and "not ready" answers are retried with exponential backoff (full jitter, at
most ``max_backoff`` s between tries): throttling, 503 and 429 (also a container's, which
SageMaker wraps as ModelError), ModelNotReadyException, up to ``max_attempts`` tries in
all; another 5xx from the service, or a connection that fails or closes without an answer,
up to ``TRANSIENT_ATTEMPTS`` (but not an async invocation: SageMaker may have queued it
already).

Time limits: a connection opens within ``CONNECT_TIMEOUT`` s, and an answer comes within
``timeout`` s (70: SageMaker itself gives up on a real-time invocation after 60 s).  A read
timeout is not retried -- the endpoint has the request and did not answer, and another try
would wait as long again -- so a request never waits much past ``timeout`` for an endpoint
that accepts connections and does not answer.  (botocore's own retries are off unless
``botocore_attempts`` says otherwise: it would retry read timeouts too.)
"""

from __future__ import annotations

import json
import math
import random
import threading
import time
import uuid
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

REALTIME_PAYLOAD = 6 * 1024 * 1024
SERVERLESS_PAYLOAD = 4 * 1024 * 1024
_HEADROOM = 16 * 1024  # for headers and our estimate's slack
_RETRY_CODES = {"ThrottlingException", "ModelNotReadyException", "ServiceUnavailable",
                "ServiceUnavailableException", "InternalDependencyException",
                "TooManyRequestsException"}
_RETRY_STATUS = {429, 503}
# What the service answers when it failed, not the request: retried as botocore would.
_SERVICE_CODES = {"InternalFailure", "InternalServerError", "Throttling", "RequestTimeout",
                  "RequestTimeoutException"}
_SERVICE_STATUS = {500, 502, 504}
CONNECT_TIMEOUT = 10
TRANSIENT_ATTEMPTS = 3  # botocore's standard mode's default
_JSON = {"separators": (",", ":"), "ensure_ascii": False}


class RerankClientError(RuntimeError):
    """The endpoint refused the request or answered something that is not a rerank result."""

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status


class RerankClient:
    def __init__(self, endpoint_name: str, region: str | None = None, session=None,
                 endpoint_url: str | None = None, *, serverless: bool = False,
                 max_payload_bytes: int | None = None, max_documents: int = 1000,
                 concurrency: int = 4, max_attempts: int = 6, backoff: float = 0.5,
                 max_backoff: float = 20.0, botocore_attempts: int = 1,
                 timeout: float = 70.0, s3_endpoint_url: str | None = None,
                 inference_component: str | None = None):
        import boto3
        from botocore import UNSIGNED
        from botocore.config import Config

        if max_documents < 1 or concurrency < 1 or max_attempts < 1:
            raise ValueError("max_documents, concurrency and max_attempts must be at least 1")
        self.endpoint_name = endpoint_name
        # An endpoint that hosts several rerankers as inference components: which one.
        self.inference_component = inference_component
        self._target = ({"InferenceComponentName": inference_component}
                        if inference_component else {})
        self.session = session or boto3.Session(region_name=region)
        region = region or self.session.region_name or ("us-east-1" if endpoint_url else None)
        if not region:
            raise ValueError("no AWS region: pass region=... or set AWS_REGION")
        options: dict[str, Any] = {
            "retries": {"mode": "standard", "total_max_attempts": botocore_attempts},
            "read_timeout": timeout, "connect_timeout": CONNECT_TIMEOUT,
            "max_pool_connections": max(10, concurrency)}
        if endpoint_url and self.session.get_credentials() is None:
            options["signature_version"] = UNSIGNED  # a local server needs no AWS credentials
        self._config = Config(**options)
        self._region = region
        self._s3_endpoint_url = s3_endpoint_url
        self.runtime = self.session.client("sagemaker-runtime", region_name=region,
                                           endpoint_url=endpoint_url, config=self._config)
        self.payload_limit = max_payload_bytes or (
            SERVERLESS_PAYLOAD if serverless else REALTIME_PAYLOAD)
        self.max_documents = max_documents
        self.concurrency = concurrency
        self.max_attempts, self.backoff, self.max_backoff = max_attempts, backoff, max_backoff
        self._s3_client, self._s3_lock = None, threading.Lock()

    # ------------------------------------------------------------ public API

    def rerank(self, query: str, documents: Sequence, top_n: int | None = None, *,
               return_documents: bool = False, instruction: str | None = None) -> list[dict]:
        """Documents ranked by relevance_score (0..1), best first, cut to ``top_n``.
        ``instruction``: what an LLM reranker (Qwen3-Reranker, a chat-template reranker)
        should judge by, sent with every request; a cross-encoder answers it with a 422."""
        _check(query, documents, top_n, instruction)
        batches = self.split(query, documents, self.payload_limit, instruction)
        raw = len(batches) > 1
        bodies = [self._body(query, documents[a:b], top_n, return_documents, instruction, raw)
                  for a, b in batches]
        with ThreadPoolExecutor(max_workers=min(self.concurrency, len(bodies) or 1)) as pool:
            answers = list(pool.map(self._invoke, bodies))
        return merge(answers, batches, top_n, return_documents, raw)

    def scores(self, query: str, documents: Sequence, *,
               instruction: str | None = None) -> list[float]:
        """One relevance score per document, in input order."""
        scores = [0.0] * len(documents)
        for item in self.rerank(query, documents, instruction=instruction):
            scores[item["index"]] = item["relevance_score"]
        return scores

    def rerank_async(self, query: str, documents: Sequence, top_n: int | None = None, *,
                     input_location: str, return_documents: bool = False,
                     poll_seconds: float = 2.0, timeout: float = 3600.0,
                     instruction: str | None = None) -> list[dict]:
        """For async endpoints: upload each request to ``input_location`` (an s3:// prefix,
        or an object name ending in .json, numbered when the documents need several
        requests), call InvokeEndpointAsync, poll the output locations until every answer is
        there (``timeout`` for all of them together), then delete the uploaded requests
        (also after a failure; kept after a timeout, as SageMaker may still read them).
        Each request is held to the real-time payload limit: the container reads an async
        request's body as it reads any other (SERVE_MAX_PAYLOAD_BYTES, 6 MB)."""
        _check(query, documents, top_n, instruction)
        if self.inference_component:
            raise ValueError("async endpoints do not host inference components")
        if not input_location.startswith("s3://"):
            raise ValueError("input_location must be an s3:// prefix")
        s3 = self._s3()
        batches = self.split(query, documents, REALTIME_PAYLOAD, instruction)
        raw = len(batches) > 1
        pending, uploaded = [], []
        try:
            for number, (a, b) in enumerate(batches):
                uri = _join(input_location, f"{uuid.uuid4().hex}.json",
                            number if len(batches) > 1 else None)
                bucket, key = _split_uri(uri)
                uploaded.append((bucket, key))
                s3.put_object(Bucket=bucket, Key=key, ContentType="application/json",
                              Body=self._body(query, documents[a:b], top_n, return_documents,
                                              instruction, raw))
                # A connection closed, or a 5xx, after SageMaker took the request would
                # queue (and bill) it twice: only refusals are retried.
                reply = self._retrying(lambda uri=uri: self.runtime.invoke_endpoint_async(
                    EndpointName=self.endpoint_name, InputLocation=uri,
                    ContentType="application/json", Accept="application/json"),
                    idempotent=False)
                pending.append((reply["OutputLocation"], reply.get("FailureLocation")))
            deadline = time.monotonic() + timeout
            answers = [_await_output(s3, out, fail, poll_seconds, deadline, timeout)
                       for out, fail in pending]
        except TimeoutError:
            # Still queued (an endpoint waking from zero): SageMaker reads a request when it
            # dequeues it, so the uploads stay, and its answer may still come.
            raise
        except Exception:
            # A failure answered or a call refused: this call is abandoned, and with it the
            # requests still queued (an interrupt keeps them, as a timeout does).
            _delete(s3, uploaded)
            raise
        _delete(s3, uploaded)  # answered: no longer needed
        return merge(answers, batches, top_n, return_documents, raw)

    def _s3(self):
        """One S3 client, made on first use: a boto3 session is not safe to share across
        threads, the client is."""
        with self._s3_lock:
            if self._s3_client is None:
                self._s3_client = self.session.client("s3", region_name=self._region,
                                                      endpoint_url=self._s3_endpoint_url)
            return self._s3_client

    # ------------------------------------------------------------ splitting

    def split(self, query: str, documents: Sequence, limit: int,
              instruction: str | None = None) -> list[tuple[int, int]]:
        """[start, end) ranges whose request bodies fit ``limit`` and max_documents."""
        room = limit - _HEADROOM - len(self._body(query, [], len(documents) or None, True,
                                                  instruction))
        if room <= 0:
            raise ValueError(f"the query alone exceeds the {limit}-byte payload limit")
        batches, start, used = [], 0, 0
        for i, doc in enumerate(documents):
            size = len(json.dumps(doc, **_JSON).encode()) + 1  # the comma
            if size > room:
                raise ValueError(f"document {i} is {size} bytes; a request may carry {room}:"
                                 " shorten it")
            if i > start and (used + size > room or i - start >= self.max_documents):
                batches.append((start, i))
                start, used = i, 0
            used += size
        if documents:
            batches.append((start, len(documents)))
        return batches

    @staticmethod
    def _body(query, documents, top_n, return_documents, instruction=None,
              raw_scores=False) -> bytes:
        body = {"query": query, "documents": list(documents)}
        if instruction is not None:
            body["instruction"] = instruction
        if raw_scores:
            body["raw_scores"] = True
        if top_n is not None:
            body["top_n"] = min(top_n, max(len(documents), 1))
        if return_documents:
            body["return_documents"] = True
        return json.dumps(body, **_JSON).encode()

    # ------------------------------------------------------------ calls and retries

    def _invoke(self, body: bytes) -> dict:
        reply = self._retrying(lambda: self.runtime.invoke_endpoint(
            EndpointName=self.endpoint_name, Body=body, ContentType="application/json",
            Accept="application/json", **self._target))
        return _decode(reply["Body"].read())

    def _retrying(self, call, idempotent: bool = True):
        """``call`` with retries.  A call that is not ``idempotent`` is retried only after a
        refusal (throttling, not ready): after a connection closed without an answer, or a
        5xx of the service, the request may have been taken already."""
        from botocore.exceptions import ClientError, ConnectionClosedError, ConnectionError

        for attempt in range(self.max_attempts):
            try:
                return call()
            except ClientError as exc:
                if attempt + 1 >= min(self.max_attempts, _tries_for(exc, idempotent)):
                    raise _as_client_error(exc) from None
            except (ConnectionError, ConnectionClosedError) as exc:
                # Refused, unreachable, or closed before an answer; a read timeout is not
                # caught here: it is not retried (see the module's docstring).
                closed = isinstance(exc, ConnectionClosedError)
                if (closed and not idempotent) or attempt + 1 >= min(
                        self.max_attempts, TRANSIENT_ATTEMPTS):
                    raise
            # Full jitter: spreads clients that were refused together.
            delay = min(self.max_backoff, self.backoff * 2 ** attempt)
            time.sleep(random.uniform(delay / 2, delay))
        raise AssertionError("unreachable")


def client_of(component) -> RerankClient:
    """The client a framework component's settings name: ``endpoint_name``,
    ``region_name``, ``endpoint_url`` and ``inference_component``, and where it has them
    ``serverless`` and ``max_documents``."""
    extra = {"serverless": bool(getattr(component, "serverless", False))}
    if getattr(component, "max_documents", None):
        extra["max_documents"] = component.max_documents
    return RerankClient(component.endpoint_name, region=component.region_name,
                        endpoint_url=component.endpoint_url,
                        inference_component=component.inference_component, **extra)


def merge(answers: list[dict], batches: list[tuple[int, int]], top_n: int | None,
          return_documents: bool, raw: bool = False) -> list[dict]:
    """Per-request results -> one ranking over the whole input (indices into it).  ``raw``:
    the answers hold raw scores (logits): ranked by them, reported as relevance (their
    sigmoid, as the server computes it)."""
    merged, logits = [], []
    for answer, (start, end) in zip(answers, batches):
        results = answer.get("results") if isinstance(answer, dict) else None
        if not isinstance(results, list):
            raise RerankClientError(f"the endpoint answered without 'results': {str(answer)[:200]}")
        for item in results:
            index = item.get("index")
            if not isinstance(index, int) or not 0 <= index < end - start:
                raise RerankClientError(f"the endpoint answered an index out of range: {item}")
            score = item.get("relevance_score")
            if not isinstance(score, (int, float)) or isinstance(score, bool):
                raise RerankClientError(f"the endpoint answered without a score: {item}")
            out = {"index": start + index,
                   "relevance_score": _sigmoid(score) if raw else float(score)}
            if return_documents and "document" in item:
                out["document"] = item["document"]
            merged.append(out)
            logits.append(float(score) if raw else out["relevance_score"])
    # Stable: equal scores keep each answer's own order, then the order of the requests.
    order = sorted(range(len(merged)), key=lambda i: -logits[i])
    merged = [merged[i] for i in order]
    return merged[:top_n] if top_n is not None else merged


def _sigmoid(x: float) -> float:
    """The server's formula for relevance (scoring.sigmoid: 1 / (1 + e^-x) in float64),
    on the raw score as the wire carries it (at most 18 characters: equal to about 1e-15);
    past a logit of -709, where e^-x overflows, numpy's answer: 0."""
    return 0.0 if x < -709 else 1.0 / (1.0 + math.exp(-x))


def _check(query, documents, top_n, instruction=None) -> None:
    if not isinstance(query, str) or not query:
        raise ValueError("query must be a non-empty string")
    if instruction is not None and (not isinstance(instruction, str) or not instruction.strip()):
        raise ValueError("instruction must be a non-empty string (or None)")
    if isinstance(documents, (str, bytes)) or not isinstance(documents, Sequence):
        raise ValueError("documents must be a list of strings or objects")
    if top_n is not None and (not isinstance(top_n, int) or top_n < 1):
        raise ValueError("top_n must be a positive integer")


def _tries_for(exc, idempotent: bool = True) -> int:
    """How many tries a ClientError earns: max_attempts (a large number) for throttling and
    "not ready", TRANSIENT_ATTEMPTS for another failure of the service (1 for a call that
    is not idempotent: it may have been taken), 1 for the rest."""
    error = exc.response.get("Error", {})
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    original = exc.response.get("OriginalStatusCode")
    if (error.get("Code") in _RETRY_CODES or status in _RETRY_STATUS
            or (error.get("Code") == "ModelError" and original in _RETRY_STATUS)):
        return 1 << 30
    if error.get("Code") in _SERVICE_CODES or status in _SERVICE_STATUS:
        return TRANSIENT_ATTEMPTS if idempotent else 1
    return 1


def _as_client_error(exc) -> RerankClientError:
    error = exc.response.get("Error", {})
    status = exc.response.get("OriginalStatusCode") or exc.response.get(
        "ResponseMetadata", {}).get("HTTPStatusCode")
    message = exc.response.get("OriginalMessage") or error.get("Message") or str(exc)
    try:  # our container's JSON error body names the field at fault
        detail = json.loads(message)["error"]
        message = detail["message"] + (f" (field {detail['field']})" if detail.get("field")
                                       else "")
    except (ValueError, KeyError, TypeError):
        pass
    return RerankClientError(f"{error.get('Code', 'error')} ({status}): {message}", status)


def _decode(raw: bytes) -> dict:
    try:
        return json.loads(raw)
    except ValueError:
        raise RerankClientError(f"the endpoint answered non-JSON: {raw[:200]!r}") from None


def _split_uri(uri: str) -> tuple[str, str]:
    bucket, _, key = uri[len("s3://"):].partition("/")
    return bucket, key


def _join(prefix: str, name: str, number: int | None = None) -> str:
    """``prefix``/``name``; a location that names its object (``.json``) is taken as it is,
    or numbered (``req-1.json``) when one call sends several requests, so none overwrites
    another before the endpoint reads it."""
    if not prefix.endswith(".json"):
        return prefix.rstrip("/") + "/" + name
    return prefix if number is None else f"{prefix[:-len('.json')]}-{number}.json"


def _quietly(call, **kwargs) -> None:
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        call(**kwargs)
    except (BotoCoreError, ClientError):
        pass  # a request left behind costs a few bytes; the answers are what matter


def _delete(s3, uploaded: list[tuple[str, str]]) -> None:
    for bucket, key in uploaded:
        _quietly(s3.delete_object, Bucket=bucket, Key=key)


def _await_output(s3, output: str, failure: str | None, poll: float, deadline: float,
                  timeout: float) -> dict:
    """The answer at ``output`` (or the error at ``failure``) once it is there.  S3 answers a
    missing key with 403 rather than 404 to a caller without s3:ListBucket on the bucket:
    that caller needs it (docs/deploy.md)."""
    from botocore.exceptions import ClientError

    while True:
        for uri, failed in ((output, False), (failure, True)):
            if not uri:
                continue
            bucket, key = _split_uri(uri)
            try:
                body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                    continue
                raise
            if failed:
                raise RerankClientError(f"async inference failed ({uri}): {body[:500]!r}")
            return _decode(body)
        if time.monotonic() > deadline:
            raise TimeoutError(f"no async result at {output} after {timeout:.0f} s (the"
                               " request may still be queued: its input is kept, and the"
                               " answer will land there)")
        time.sleep(poll)
