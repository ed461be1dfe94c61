"""Data capture: SageMaker stores a sample of the endpoint's requests and answers in S3.

What users send (queries, candidate lists) and what the reranker answered is what tells
whether it still fits the traffic: the raw material of a relevance review, a drift check
or the next evaluation set.  SageMaker writes JSON lines under
``<CAPTURE>/<endpoint>/AllTraffic/<yyyy>/<mm>/<dd>/<hh>/``, one record per sampled
invocation with ``captureData.endpointInput.data`` (our JSON body, as text) and
``endpointOutput.data``.  Real-time and async endpoints; serverless endpoints and
inference components have no data capture.
"""

from __future__ import annotations

from deploy.errors import UserError


def validate(config) -> None:
    name = config.name
    if not config.capture:
        return
    if not config.capture.startswith("s3://") or len(config.capture) <= len("s3://"):
        raise UserError(f"{name('capture')} must be an s3:// prefix, not {config.capture!r}")
    if config.mode not in ("realtime", "async"):
        raise UserError(f"{name('capture')}: data capture is for real-time and async"
                        f" endpoints; SageMaker offers none for {name('mode')}={config.mode}")
    if not 1 <= config.capture_percent <= 100:
        raise UserError(f"{name('capture_percent')} must be 1..100, not"
                        f" {config.capture_percent}")


def endpoint_config(config) -> dict:
    """CreateEndpointConfig's DataCaptureConfig argument, or nothing."""
    if not config.capture:
        return {}
    capture = {"EnableCapture": True, "InitialSamplingPercentage": config.capture_percent,
               "DestinationS3Uri": config.capture.rstrip("/"),
               "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}],
               # JSON bodies are stored as text, readable as they were sent (not base64).
               "CaptureContentTypeHeader": {"JsonContentTypes": ["application/json"]}}
    if config.kms_key:
        capture["KmsKeyId"] = config.kms_key
    return {"DataCaptureConfig": capture}


def iam_statements(config, partition: str) -> list[dict]:
    if not config.capture:
        return []
    prefix = config.capture[len("s3://"):].rstrip("/")
    return [{"Sid": "WriteDataCapture", "Effect": "Allow", "Action": "s3:PutObject",
             "Resource": f"arn:{partition}:s3:::{prefix}/*"}]


def status_rows(endpoint: dict) -> list[tuple[str, str]]:
    """DescribeEndpoint's DataCaptureConfig summary, one line."""
    capture = endpoint.get("DataCaptureConfig") or {}
    if not capture.get("EnableCapture"):
        return []
    return [("capture", f"{capture.get('CurrentSamplingPercentage', '?')}% of requests to"
                        f" {capture.get('DestinationS3Uri', '?')}"
                        f" ({capture.get('CaptureStatus', 'Started')})")]
