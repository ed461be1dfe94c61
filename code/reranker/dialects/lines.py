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
    """A body's lines: counted when the body is read, parsed (``items``: a request, or the
    error that line answers with) only once the engine's limit has allowed that many, so
    a body of a million blank lines costs a count, not a million parses."""

    body: bytes | str
    count: int
    parse_line: Callable[[bytes | str], RerankRequest]
    items: list[RerankRequest | RerankError] = dataclasses.field(default_factory=list)
    dialect: str = NAME

    @property
    def pairs(self) -> list:
        return [p for item in self.items if isinstance(item, RerankRequest) for p in item.pairs]

    @property
    def documents(self) -> int:
        """What the lines weigh against the body's limit: each line's documents, and one for
        a line that failed, which costs an answer line too."""
        return sum(len(item.pairs) if isinstance(item, RerankRequest) else 1
                   for item in self.items)


@dataclasses.dataclass
class ResultLines:
    request: RequestLines
    items: list[RerankResult | RerankError]
    content_type: str = CONTENT_TYPE

    @property
    def tokens(self) -> int:
        return sum(item.tokens for item in self.items if isinstance(item, RerankResult))


def split(data: bytes | str, parse_line: Callable[[bytes | str], RerankRequest]
          ) -> RequestLines:
    """The body's records, counted without splitting it yet."""
    newline = "\n" if isinstance(data, str) else b"\n"
    count = data.count(newline) + 1
    if not data[data.rfind(newline) + 1:].strip():
        count -= 1  # the newline that ends the last record starts no new one
    if not count:
        raise InvalidJSON("the body has no lines; send one JSON request per line", field="body")
    return RequestLines(data, count, parse_line)


def parse(request: RequestLines) -> RequestLines:
    """Each line parsed (the DLC hands hooks a str, our server bytes)."""
    newline = "\n" if isinstance(request.body, str) else b"\n"
    records = request.body.split(newline, request.count)[: request.count]
    items = [_attempt(request.parse_line, line) for line in records]
    return dataclasses.replace(request, items=items)


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
    body = error.to_dict(brief=True)  # a hint repeated on each of many bad lines is bulk
    body["error"]["line"] = line  # 1-based, as editors and `sed -n` count
    return encode_json(body)


def _attempt(step: Callable, value):
    """The step's result, or the error it raised for this line (our own bugs propagate).
    A server that cannot score now (closing, its worker gone, no model: 503) or a body
    whose caller left (499) fails the whole body: answered 200 with an error on every
    line, Batch Transform would write those as results instead of retrying."""
    try:
        return step(value)
    except RerankError as exc:
        if exc.status in _WHOLE_BODY:
            raise
        # Kept until the answer is written: without its traceback, which holds the frames
        # and the line's text alive.
        return exc.with_traceback(None)


_WHOLE_BODY = (499, 503)
