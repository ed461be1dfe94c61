"""``upload``: model.tar.gz to S3 under a key named by its sha256, skipped when already there.

The key holds the hash (``<prefix>/<model>/<sha256[:16]>/model.tar.gz``) so a new archive never
overwrites the one a running endpoint was created from: SageMaker reads ModelDataUrl again
whenever it starts an instance (autoscaling, replacement), and must find the same bytes.
"""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

from boto3.exceptions import Boto3Error
from botocore.exceptions import BotoCoreError, ClientError

from deploy import config as cfg
from deploy.errors import UserError
from deploy.package import archive
from deploy.sagemaker import isolation
from deploy.sagemaker.aws import Aws, error_code, error_message, translate_errors

MB = 1024 * 1024
# Multipart above this size, in parts of this size, 8 in flight: a 2 GB bge-reranker goes up
# in 32 parts, and a failed part is retried alone.
MULTIPART_BYTES = 64 * MB


@translate_errors
def run(args) -> int:
    config = cfg.load(args)
    if config.uncompressed:
        from deploy.sagemaker.upload_files import upload_files

        print(upload_files(Aws(config), Path(config.archive)))
    else:
        print(upload(Aws(config), Path(config.archive)))
    return 0


@dataclasses.dataclass
class Destination:
    """Where an archive's uploads go: its sha256 and model id, the bucket and the folder
    ``<prefix>/<model>/<sha256[:16]>`` named by them."""

    sha: str
    model_id: str
    bucket: str
    folder: str


# What `package` puts in every archive, and SageMaker's DLC and our image start from.
REQUIRED = (archive.MANIFEST, "code/inference.py")


def destination(aws: Aws, path: Path) -> Destination:
    """Read the whole archive once (with progress): its sha256, and a complete .tar.gz with
    what `package` writes, or a refusal before anything goes to S3; then its model id and
    the bucket."""
    sha = checked_sha(path)
    model_id = model_id_of(path)
    return Destination(sha, model_id, bucket_for(aws), folder_of(aws.config, model_id, sha))


_CHECKED: dict[tuple, str] = {}


def checked_sha(path: Path) -> str:
    """The archive's sha256, once it read as a complete .tar.gz holding REQUIRED (read once
    per run: a file of the same size and time is not read again)."""
    if path.is_dir():
        raise UserError(f"{path} is a folder: upload takes the model.tar.gz `make package`"
                        " wrote")
    if not path.is_file():
        raise UserError(f"{path} does not exist: run `make package MODEL=...` first")
    stat = path.stat()
    seen = (str(path.resolve()), stat.st_size, stat.st_mtime_ns, stat.st_ino)
    if seen in _CHECKED:
        return _CHECKED[seen]
    sha, files = with_progress(f"checking {path.name}", stat.st_size,
                               lambda step: archive.read_whole(path, step))
    missing = [name for name in REQUIRED if name not in files]
    if missing:
        raise UserError(f"{path} has no {missing[0]}: it is not an archive `make package`"
                        " wrote (build it with `make package MODEL=...`)")
    _CHECKED[seen] = sha
    return sha


def already_there(aws: Aws, bucket: str, key: str, sha: str, uri: str) -> bool:
    """The object at ``key`` carries this sha256 (and KMS_KEY's encryption): nothing to
    send, and the user is told so."""
    if holds(stored(aws.client("s3"), bucket, key), sha, aws.config.kms_key):
        print(f"already uploaded (same sha256): {uri}")
        return True
    return False


def transfer_config(concurrency: int = 8):
    """boto3's managed transfer: multipart above MULTIPART_BYTES, in parts of that size."""
    from boto3.s3.transfer import TransferConfig

    return TransferConfig(multipart_threshold=MULTIPART_BYTES,
                          multipart_chunksize=MULTIPART_BYTES, max_concurrency=concurrency,
                          use_threads=True)


def upload(aws: Aws, path: Path) -> str:
    """Upload ``path`` unless an object with the same sha256 is there; returns its s3:// URI."""
    where = destination(aws, path)
    bucket, key, sha = where.bucket, f"{where.folder}/model.tar.gz", where.sha
    uri = f"s3://{bucket}/{key}"
    if already_there(aws, bucket, key, sha, uri):
        return uri
    s3, key_id = aws.client("s3"), aws.config.kms_key
    size = path.stat().st_size
    extra = {"Metadata": {"sha256": sha, "model-id": ascii_text(where.model_id)},
             "ContentType": "application/gzip", **isolation.upload_args(aws.config)}
    try:
        with_progress(f"upload {path.name}", size, lambda step: s3.upload_file(
            str(path), bucket, key, ExtraArgs=extra, Config=transfer_config(),
            Callback=step))
    except (ClientError, BotoCoreError, Boto3Error) as exc:
        raise UserError(f"upload to {uri} failed: {error_code(exc)}: {error_message(exc)}"
                        ) from None
    if not holds(stored(s3, bucket, key), sha, key_id):
        raise UserError(f"upload to {uri} did not leave the expected object behind")
    print(f"uploaded {size} bytes, sha256 {sha}")
    return uri


def bucket_for(aws: Aws) -> str:
    """BUCKET, checked, or the default bucket (created if missing)."""
    if aws.config.bucket:
        check_bucket(aws, aws.config.bucket)
        return aws.config.bucket
    return default_bucket(aws)


def folder_of(config, model_id: str, sha: str) -> str:
    """``<prefix>/<model>/<sha256[:16]>``: where one archive's uploads live."""
    return f"{config.prefix.strip('/')}/{slug(model_id)}/{sha[:16]}".lstrip("/")


def default_bucket(aws: Aws) -> str:
    """sagemaker-<region>-<account>, the SDK's default bucket, created private if missing."""
    bucket = f"sagemaker-{aws.region}-{aws.account_id()}"
    s3 = aws.client("s3")
    try:
        s3.head_bucket(Bucket=bucket)
        return bucket
    except ClientError as exc:
        if error_code(exc) not in ("404", "NoSuchBucket", "NotFound"):
            raise UserError(f"bucket {bucket}: {error_code(exc)}: {error_message(exc)}"
                            ) from None
    print(f"creating private bucket {bucket} (set {aws.config.name('bucket')}=... to use"
          " your own)")
    kwargs = {} if aws.region == "us-east-1" else {
        "CreateBucketConfiguration": {"LocationConstraint": aws.region}}
    s3.create_bucket(Bucket=bucket, **kwargs)
    s3.put_public_access_block(Bucket=bucket, PublicAccessBlockConfiguration={
        "BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": True,
        "RestrictPublicBuckets": True})
    return bucket


def check_bucket(aws: Aws, bucket: str) -> None:
    try:
        aws.client("s3").head_bucket(Bucket=bucket)
    except ClientError as exc:
        code = error_code(exc)
        if code in ("404", "NoSuchBucket", "NotFound"):
            raise UserError(f"bucket {bucket} does not exist: create it, or unset"
                            f" {aws.config.name('bucket')} to use"
                            " sagemaker-<region>-<account>") from None
        raise UserError(f"bucket {bucket}: {code}: {error_message(exc)}") from None


def stored(s3, bucket: str, key: str) -> dict | None:
    """HeadObject of the key, or None when there is no such object."""
    try:
        return s3.head_object(Bucket=bucket, Key=key)
    except ClientError as exc:
        if error_code(exc) in ("404", "NoSuchKey", "NotFound"):
            return None
        raise UserError(f"s3://{bucket}/{key}: {error_code(exc)}: {error_message(exc)}"
                        ) from None


def holds(head: dict | None, sha: str, key_id: str | None, field: str = "sha256") -> bool:
    """The stored object carries this sha256 in metadata ``field`` and is encrypted with
    KMS_KEY when one is set (an object uploaded before KMS_KEY was set goes up again,
    encrypted)."""
    if head is None or head.get("Metadata", {}).get(field) != sha:
        return False
    return key_id is None or (head.get("ServerSideEncryption") == "aws:kms"
                              and head.get("SSEKMSKeyId") == key_id)


def model_id_of(path: Path) -> str:
    raw = archive.read_member(path, archive.MANIFEST)
    if raw is None:
        raise UserError(f"{path} has no {archive.MANIFEST}: build it with `make package`")
    try:
        return json.loads(raw)["model_id"]
    except (ValueError, KeyError):
        raise UserError(f"{path}: {archive.MANIFEST} is not valid") from None


def slug(model_id: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", model_id).strip("-") or "model"


def ascii_text(text: str) -> str:
    return text.encode("ascii", "replace").decode()


def with_progress(label: str, total: int, work):
    """Run ``work(step)`` under a byte progress bar; ``step(n)`` advances it (thread-safe)."""
    from rich.progress import BarColumn, DownloadColumn, Progress, TransferSpeedColumn

    with Progress("[progress.description]{task.description}", BarColumn(), DownloadColumn(),
                  TransferSpeedColumn(), transient=True) as progress:
        task = progress.add_task(label, total=total)
        return work(lambda n: progress.advance(task, n))
