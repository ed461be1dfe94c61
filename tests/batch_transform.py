"""SageMaker Batch Transform's split and assemble rules, to feed a file to a server as a job does.

The rules, as the SageMaker API reference states them (CreateTransformJob, TransformInput,
TransformOutput; docs.aws.amazon.com/sagemaker/latest/APIReference/API_CreateTransformJob.html):

- ``SplitType=Line`` splits an input object on newline boundaries: each line is a record.
- ``BatchStrategy=SingleRecord`` sends one record per HTTP request to the container's
  POST /invocations; ``MultiRecord`` sends as many records as fit within ``MaxPayloadInMB``.
- ``MaxPayloadInMB`` must be at least the size of one record: a larger record fails the job.
- ``MaxConcurrentTransforms`` requests are in flight at once (default 1).
- ``AssembleWith=Line`` writes each transformed record's output followed by a newline, in
  input order, into ``<input object name>.out``.

Records keep their own newline, so the payloads put back together are the input file's bytes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

MB = 1024 * 1024
STRATEGIES = ("SingleRecord", "MultiRecord")


class RecordTooLarge(ValueError):
    """A record over MaxPayloadInMB: the job fails, as SageMaker's does."""


def split_lines(path: Path) -> Iterator[bytes]:
    """SplitType=Line, streamed: one record per line, read as the file is read."""
    with open(path, "rb") as stream:
        yield from stream


def mini_batches(records: Iterable[bytes], strategy: str, max_payload_mb: int
                 ) -> Iterator[bytes]:
    if strategy not in STRATEGIES:
        raise ValueError(f"BatchStrategy must be one of {STRATEGIES}")
    limit = max_payload_mb * MB
    batch: list[bytes] = []
    size = 0
    for record in records:
        if len(record) > limit:
            raise RecordTooLarge(f"a record of {len(record)} bytes exceeds MaxPayloadInMB")
        if batch and (strategy == "SingleRecord" or size + len(record) > limit):
            yield b"".join(batch)
            batch, size = [], 0
        batch.append(record)
        size += len(record)
    if batch:
        yield b"".join(batch)


def assemble_lines(outputs: Iterable[bytes]) -> bytes:
    """AssembleWith=Line: each output, then a newline."""
    return b"".join(out + b"\n" for out in outputs)


def transform(path: Path, invoke: Callable[[bytes], bytes], *, strategy: str,
              max_payload_mb: int = 6, max_concurrent: int = 1) -> bytes:
    """The job's output object for one input file; ``invoke`` answers one payload."""
    payloads = mini_batches(split_lines(path), strategy, max_payload_mb)
    with ThreadPoolExecutor(max_workers=max_concurrent) as pool:
        return assemble_lines(pool.map(invoke, payloads))
