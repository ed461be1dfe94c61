"""What a deployed model serves, from its archive's reranker.json in S3: the model, its
revision, max_length, the prompt an LLM reranker is scored with and the ONNX check, as
``package`` printed them.

A model.tar.gz is read by one ranged GET of its first 64 KB (``package`` writes the manifest
first); files uploaded uncompressed have reranker.json beside the weights.  What cannot be
read (another tool's archive, no s3:GetObject) is said in one row, never an error: status
reports the endpoint whatever its model data holds.
"""

from __future__ import annotations

import json

from botocore.exceptions import BotoCoreError, ClientError

from deploy.package import archive
from deploy.package.assemble import manifest_rows
from deploy.sagemaker.aws import error_code

HEAD_BYTES = 64 * 1024


def rows(aws, model_data: str | None) -> list[tuple[str, str]]:
    """(key, value) rows for ``status``; the model id is "model id" beside SageMaker's
    model name."""
    if not model_data or not model_data.startswith("s3://"):
        return []
    try:
        manifest = read(aws.client("s3"), model_data)
    except (ClientError, BotoCoreError) as exc:
        return [("manifest", f"not read ({error_code(exc)})")]
    if manifest is None:
        return [("manifest", f"none in {model_data} (not written by package)")]
    return [("model id" if key == "model" else key, str(value))
            for key, value in manifest_rows(manifest)]


def read(s3, model_data: str) -> dict | None:
    bucket, _, key = model_data[len("s3://"):].partition("/")
    if key.endswith("/"):  # an uncompressed upload: the files themselves
        try:
            raw = s3.get_object(Bucket=bucket, Key=key + archive.MANIFEST)["Body"].read()
        except ClientError as exc:
            if error_code(exc) in ("NoSuchKey", "404"):
                return None
            raise
    else:
        head = s3.get_object(Bucket=bucket, Key=key, Range=f"bytes=0-{HEAD_BYTES - 1}")
        raw = archive.first_file_of(head["Body"].read(), archive.MANIFEST)
    try:
        manifest = json.loads(raw) if raw else None
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None
    return manifest if isinstance(manifest, dict) else None
