"""What a hook reads from its serving context: the request's custom attributes.

Both servers pass a context shaped like multi-model-server's: the DLC passes MMS's own,
ours mirrors it, and ``context.request_processor[0].get_request_properties()`` are the
request's headers.  SageMaker forwards ``CustomAttributes`` of InvokeEndpoint as the
X-Amzn-SageMaker-Custom-Attributes header; ``dialect=<name>`` there overrides detection.

Our server's context also carries values of its own, as attributes: ``dialect`` (a native
route's fixed dialect, which wins over the header) and ``cancel`` (a threading.Event set
when the client hangs up).  Other contexts lack them, and read as None.
"""

from __future__ import annotations

import os
import threading

from .cpu import usable_cores
from .wire import header_text

HEADER = "x-amzn-sagemaker-custom-attributes"


def custom_attributes(context) -> dict[str, str]:
    """``key=value`` pairs of the header, separated by commas or semicolons."""
    raw = _header(context, HEADER) or ""
    pairs = {}
    for part in raw.replace(";", ",").split(","):
        key, sep, value = part.partition("=")
        if sep and key.strip():
            pairs[key.strip().lower()] = value.strip()
    return pairs


def requested_dialect(context) -> str | None:
    return getattr(context, "dialect", None) or custom_attributes(context).get("dialect") or None


def gpu_id(context) -> int | None:
    """The GPU multi-model-server gave this worker (the DLC); None under our server."""
    properties = getattr(context, "system_properties", None) or {}
    try:
        value = int(properties.get("gpu_id"))
    except (TypeError, ValueError):
        return None
    return value if value >= 0 else None


def worker_threads(context, cpus: int | None = None) -> int:
    """CPU threads for this worker of multi-model-server (the DLC), 0 elsewhere (torch's
    default).  It starts one worker per vCPU unless told how many, each with a model copy
    whose torch would use every core: the cores are shared out among them instead."""
    properties = getattr(context, "system_properties", None) or {}
    if properties.get("server_name") != "MMS" or gpu_id(context) is not None:
        return 0  # not the model server, or a worker per GPU: torch's default
    cpus = cpus or usable_cores()
    # MMS_* variables override the toolkit's properties file, which SAGEMAKER_* fills.
    named = (os.environ.get("MMS_DEFAULT_WORKERS_PER_MODEL")
             or os.environ.get("SAGEMAKER_MODEL_SERVER_WORKERS") or "")
    workers = int(named) if named.strip().isdigit() and int(named) > 0 else cpus
    return max(1, cpus // workers)


def cancellation(context) -> threading.Event | None:
    return getattr(context, "cancel", None)


def _header(context, name: str) -> str | None:
    try:
        properties = context.request_processor[0].get_request_properties()
    except (AttributeError, IndexError, TypeError):
        return None  # no context (a plain Python call) or one of another shape
    # MMS hands header names and values as bytes: read as latin-1, which decodes any byte.
    for key, value in (properties or {}).items():
        if header_text(key).lower() == name:
            return header_text(value)
    return None
