"""Names of what the deploy tool creates: one rule for endpoints, models, configs and jobs.

An endpoint's models and endpoint configs are ``<base>-<UTC yyyymmdd-hhmmss>-<hash>``
(``base``: the endpoint name cut to 40 characters).  Two endpoints whose names share their
first 40 characters share ``base``, so a name only says "made for one of them": ``delete``
and ``prune`` decide by the ``TAG`` every resource carries and by what the endpoints
reference (deploy.sagemaker.resources.endpoint_resources).  Batch Transform models are
named by what they run (``<base>-batch-<hash>``), so a second job on the same archive
reuses the model.
"""

from __future__ import annotations

import hashlib
import json
import re
import time

from deploy.errors import UserError

# SageMaker's rule for endpoint, model, endpoint config and transform job names.
# Its pattern bounds letters and digits only: the 63 characters are a separate bound.
ENDPOINT_NAME = re.compile(r"^(?=.{1,63}$)[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")
TAG = "reranker-endpoint"
# On an inference component's models: which component they were made for, since two
# component names can share the cut their models are named by.
COMPONENT_TAG = "reranker-component"


def check_endpoint_name(name: str | None) -> None:
    if not ENDPOINT_NAME.match(name or ""):
        raise UserError(f"endpoint name {name!r} is not valid: letters, digits and"
                        " hyphens, at most 63, starting with a letter or digit")


def base(endpoint: str) -> str:
    return endpoint[:40].rstrip("-")


def digest(*parts) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def stamped(endpoint: str, *spec) -> str:
    """<base>-<UTC yyyymmdd-hhmmss>-<hash of spec and now>: unique per run, at most 63."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    return f"{base(endpoint)}-{stamp}-{digest(*spec, time.time_ns())[:6]}"


def ours(endpoint: str) -> re.Pattern:
    """The stamped names made for ``endpoint``."""
    return re.compile(rf"^{re.escape(base(endpoint))}-\d{{8}}-\d{{6}}-[0-9a-f]{{6}}$")


def batch_model(endpoint: str, *spec) -> str:
    """The Batch Transform model for ``spec`` (archive, image, environment): same spec, same
    name.  A cut endpoint name is hashed in too, or an endpoint sharing the cut would reuse
    (and its ``delete`` would not take) a model tagged for this one; an uncut one is not, so
    the models of existing endpoints keep their names."""
    hashed = (*spec,) if base(endpoint) == endpoint else (endpoint, *spec)
    return f"{base(endpoint)}-batch-{digest(*hashed)[:12]}"


def batch_models(endpoint: str) -> re.Pattern:
    return re.compile(rf"^{re.escape(base(endpoint))}-batch-[0-9a-f]{{12}}$")


def tags(endpoint: str) -> list[dict]:
    return [{"Key": TAG, "Value": endpoint}]


def resource_tags(config) -> list[dict]:
    """The tag naming the endpoint, then the user's TAGS."""
    from deploy.sagemaker import isolation

    return tags(config.endpoint) + isolation.user_tags(config)
