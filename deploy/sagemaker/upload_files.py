"""``upload`` with UNCOMPRESSED=1: the archive's files under an S3 prefix, which SageMaker
takes as uncompressed model data (ModelDataSource: S3Prefix, CompressionType None).

SageMaker copies the objects under the prefix to /opt/ml/model at every instance start
(autoscaling, replacement) with nothing to gunzip, and in parallel: for an 8-16 GB LLM
reranker, minutes per start.  The layout:

    <prefix>/<model>/<sha256[:16]>/files/...     one object per file of the archive
    <prefix>/<model>/<sha256[:16]>/files.json    the list of them, written last

The folder is named by the archive's sha256, like the archive's own key, so files a
running endpoint starts from are never overwritten.  ``files.json`` sits beside the prefix,
not in it (SageMaker would copy it into the model); it is written only once every file is
there, so its presence with the archive's sha256 means the upload is whole.  An upload
that was interrupted resumes: S3 writes an object whole or not at all, so an object under
the prefix with the file's size and the archive's sha256 in its metadata is that file.
"""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path, PurePosixPath

from boto3.exceptions import Boto3Error
from botocore.exceptions import BotoCoreError, ClientError

from deploy.errors import UserError
from deploy.sagemaker import isolation
from deploy.sagemaker.aws import Aws, error_code, error_message
from deploy.sagemaker.upload import (
    already_there,
    destination,
    holds,
    stored,
    transfer_config,
    with_progress,
)

LISTING = "files.json"
# Each part is held in memory while it goes up (the tar stream cannot seek back):
# 8 x 64 MB at most.
CONCURRENCY = 8


def upload_files(aws: Aws, path: Path) -> str:
    """Upload ``path``'s files unless they are all there; returns the s3://.../ prefix."""
    where = destination(aws, path)
    bucket, sha, model_id = where.bucket, where.sha, where.model_id
    prefix, listing = f"{where.folder}/files/", f"{where.folder}/{LISTING}"
    uri = f"s3://{bucket}/{prefix}"
    if already_there(aws, bucket, listing, sha, uri):
        return uri
    s3 = aws.client("s3")
    present = _present(s3, bucket, prefix)
    try:
        sizes, sent = _send(s3, bucket, prefix, path, sha, present, aws.config)
    except (ClientError, BotoCoreError, Boto3Error) as exc:
        raise UserError(f"upload to {uri} failed: {error_code(exc)}: {error_message(exc)};"
                        " run it again to resume") from None
    _check(_present(s3, bucket, prefix), sizes, uri)
    body = json.dumps({"archive_sha256": sha, "model_id": model_id, "files": sizes},
                      indent=1, sort_keys=True).encode()
    s3.put_object(Bucket=bucket, Key=listing, Body=body, ContentType="application/json",
                  Metadata={"sha256": sha}, **isolation.upload_args(aws.config))
    kept = f", {len(sizes) - sent[0]} already there" if sent[0] < len(sizes) else ""
    print(f"uploaded {sent[0]} files, {sent[1]} bytes{kept}; archive sha256 {sha}")
    return uri


def listing_key(uri: str) -> tuple[str, str] | None:
    """(bucket, key of files.json) for a prefix this tool uploaded, else None."""
    bucket, _, key = uri[len("s3://"):].partition("/")
    if not key.endswith("/files/"):
        return None
    return bucket, key[:-len("files/")] + LISTING


def _present(s3, bucket: str, prefix: str) -> dict[str, int]:
    """{key: size} of the objects under ``prefix``."""
    found = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        found.update({item["Key"]: item["Size"] for item in page.get("Contents", [])})
    return found


def _send(s3, bucket: str, prefix: str, path: Path, sha: str, present: dict[str, int],
          config) -> tuple[dict[str, int], tuple[int, int]]:
    """One pass over the archive, each file not yet there streamed to its key; returns
    ({name: size} of every file, (files sent, bytes sent))."""
    transfer = transfer_config(CONCURRENCY)
    extra = {"Metadata": {"archive-sha256": sha}, "ContentType": "application/octet-stream",
             **isolation.upload_args(config)}
    sizes, sent = {}, [0, 0]

    def work(step) -> None:
        with open(path, "rb") as raw, \
                tarfile.open(fileobj=_Reading(raw, step), mode="r|gz") as tar:
            for member in tar:
                name = _file_name(member)
                if name is None:
                    continue
                sizes[name] = member.size
                key = prefix + name
                if present.get(key) == member.size and holds(
                        stored(s3, bucket, key), sha, config.kms_key, "archive-sha256"):
                    continue
                s3.upload_fileobj(_Reading(tar.extractfile(member)), bucket, key,
                                  ExtraArgs=extra, Config=transfer)
                sent[0] += 1
                sent[1] += member.size

    try:
        with_progress(f"upload {path.name} as files", path.stat().st_size, work)
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise UserError(f"{path} is not a readable .tar.gz: {exc}") from None
    return sizes, tuple(sent)


def _file_name(member: tarfile.TarInfo) -> str | None:
    """The file's path under the prefix; None for a folder (S3 has none).  Links and names
    SageMaker cannot write to disk are refused."""
    if member.isdir():
        return None
    name = member.name.removeprefix("./")
    if not member.isfile():
        raise UserError(f"archive entry {name!r} is a link or a device: SageMaker's"
                        " uncompressed model data holds plain files only")
    parts = PurePosixPath(name).parts
    if (name.startswith("/") or not parts or "\0" in name
            or any(p in (".", "..") or len(p.encode()) > 255 for p in parts)):
        raise UserError(f"archive entry {name!r} cannot be a file name under /opt/ml/model")
    return "/".join(parts)


def _check(found: dict[str, int], sizes: dict[str, int], uri: str) -> None:
    """Every file is there with its size, and nothing else (SageMaker would copy it too)."""
    prefix = uri[len("s3://"):].partition("/")[2]
    expected = {prefix + name: size for name, size in sizes.items()}
    foreign = sorted(set(found) - set(expected))
    if foreign:
        raise UserError(f"{uri} also holds {len(foreign)} objects that are not in the archive"
                        f" ({foreign[0]}, ...): SageMaker would copy them into the model;"
                        " delete them and run it again")
    wrong = sorted(k for k, size in expected.items() if found.get(k) != size)
    if wrong:
        raise UserError(f"upload to {uri} did not leave {wrong[0]} behind whole; run it again")


class _Reading(io.RawIOBase):
    """A forward-only reader: reports bytes read to ``step`` and tells s3transfer that it
    cannot seek, so every part is read once, in order (a gzip stream cannot go back)."""

    def __init__(self, fh, step=None):
        super().__init__()
        self._fh, self._step = fh, step

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def readinto(self, buffer) -> int:
        data = self._fh.read(len(buffer))
        buffer[:len(data)] = data
        if self._step and data:
            self._step(len(data))
        return len(data)
