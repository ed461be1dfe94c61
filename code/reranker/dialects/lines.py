"""application/jsonlines: one request per line, in any dialect; one answer line per line.

SageMaker Batch Transform with ``SplitType=Line`` sends a file's lines one per invocation
(``BatchStrategy=SingleRecord``) or as many as fit in ``MaxPayloadInMB`` (``MultiRecord``),
and with ``AssembleWith=Line`` writes each answer followed by a newline.  So the answer to
n lines is n lines in the same order, joined without a trailing newline.  A line that fails
(not JSON, a bad field, over a limit) gets its error object on its own line and the other
lines are still scored: one bad record does not lose the batch.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from ..errors import InvalidJSON, RerankError
from ..request import RerankRequest, RerankResult
from ..wire import JSON_LINES, encode_json

NAME = "jsonlines"
CONTENT_TYPE = JSON_LINES[0]
_THREADS = 8


@dataclasses.dataclass
class RequestLines:
    """The parsed lines: a request, or the error that line answers with."""

    items: list[RerankRequest | RerankError]
    dialect: str = NAME

    @property
    def pairs(self) -> list:
        return [p for item in self.items if isinstance(item, RerankRequest) for p in item.pairs]


@dataclasses.dataclass
class ResultLines:
    request: RequestLines
    items: list[RerankResult | RerankError]
    content_type: str = CONTENT_TYPE

    @property
    def tokens(self) -> int:
        return sum(item.tokens for item in self.items if isinstance(item, RerankResult))


def parse(data: bytes | bytearray | str, parse_line: Callable[[bytes], RerankRequest]
          ) -> RequestLines:
    # The DLC hands hooks a str, our server bytes.
    lines = data.split("\n") if isinstance(data, str) else bytes(data).split(b"\n")
    if lines and not lines[-1].strip():
        lines.pop()  # the newline that ends the last record starts no new one
    if not lines:
        raise InvalidJSON("the body has no lines; send one JSON request per line", field="body")
    return RequestLines([_attempt(parse_line, line) for line in lines])


def run(lines: RequestLines, rerank: Callable[[RerankRequest], RerankResult]) -> ResultLines:
    # A line is a few pairs: scored from several threads at once, lines meet in the engine's
    # batcher and fill its batches, instead of one small forward pass per line.
    def score(item):
        return item if isinstance(item, RerankError) else _attempt(rerank, item)

    with ThreadPoolExecutor(max_workers=_THREADS, thread_name_prefix="jsonlines") as pool:
        return ResultLines(lines, list(pool.map(score, lines.items)))


def render(result: ResultLines, render_one: Callable[[RerankResult], bytes]) -> bytes:
    return b"\n".join(_error_line(item, n) if isinstance(item, RerankError) else render_one(item)
                      for n, item in enumerate(result.items, 1))


def _error_line(error: RerankError, line: int) -> bytes:
    body = error.to_dict()
    body["error"]["line"] = line  # 1-based, as editors and `sed -n` count
    return encode_json(body)


def _attempt(step: Callable, value):
    """The step's result, or the client error it raised (our own bugs still propagate)."""
    try:
        return step(value)
    except RerankError as exc:
        return exc
