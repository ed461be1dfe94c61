"""The endpoint's environment: gathered, checked with the container's own parsers, completed.

Settings reach the container as environment variables, where a bad one would surface
only as a failed endpoint ten minutes later.  So before anything is created, every
``RERANK_*`` value goes through the engine's ``Settings`` and every ``SERVE_*`` value
through the server's ``ServerConfig`` -- the very code that reads them in the container --
and names neither knows are refused as typos.
"""

from __future__ import annotations

import re

from deploy.errors import UserError
from reranker import envconfig
from reranker.settings import VARIABLES as ENGINE_VARIABLES
from reranker.settings import Settings, SettingsError
from serving import config as server_config

# Environment names a container may receive: our engine's and server's, the DLC's knobs.
PREFIXES = ("RERANK_", "SERVE_", "SAGEMAKER_MODEL_SERVER_", "OMP_", "MKL_")
# SageMaker's container contract fixes where the server listens.
_FIXED_BY_SAGEMAKER = ("SERVE_HOST", "SERVE_PORT")
# A model's environment is readable by anyone allowed DescribeModel: never put secrets there.
_SECRET = re.compile(r"SECRET|PASSWORD|TOKEN|CREDENTIAL|^AWS_|PRIVATE|API_KEY", re.I)


def gather(file_values: dict, environ, pairs: list[str] | None) -> dict:
    """[container] of the TOML file < RERANK_* of the environment < --env KEY=VALUE."""
    env = dict(file_values)
    env.update({k: v for k, v in environ.items() if k.startswith("RERANK_")})
    env.update(_parse_pairs(pairs or []))
    return check(env)


def check(env: dict) -> dict:
    """Names we pass on, never a secret, and values the container accepts."""
    out = {}
    for key, value in env.items():
        key = str(key)
        if _SECRET.search(key):
            hint = (" (SageMaker authenticates callers with IAM and passes no Authorization"
                    " header on: the server's API key is for other hosts)"
                    if key.startswith("SERVE_API_KEY") else "")
            raise UserError(f"refusing to put {key} in the endpoint's environment: anyone who"
                            f" can describe the model can read it{hint}")
        if not key.startswith(PREFIXES):
            raise UserError(f"container setting {key} is not one we pass on (names start"
                            f" with {', '.join(PREFIXES)})")
        out[key] = str(value).lower() if isinstance(value, bool) else str(value)
    _check_engine(out)
    _check_server(out)
    return dict(sorted(out.items()))


def complete(env: dict, region: str, defaults: dict | None = None) -> dict:
    """What every model gets, then the mode's ``defaults``, then the user's settings."""
    return {
        # The HF DLC's toolkit imports code/<SAGEMAKER_PROGRAM> from the unpacked model.
        "SAGEMAKER_PROGRAM": "inference.py",
        "SAGEMAKER_SUBMIT_DIRECTORY": "/opt/ml/model/code",
        "SAGEMAKER_CONTAINER_LOG_LEVEL": "20",
        "SAGEMAKER_REGION": region,
        # Everything is in the archive; never reach the hub from the endpoint.
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        **(defaults or {}),
        **env,
    }


def _check_engine(env: dict) -> None:
    unknown = envconfig.unknown(env, "RERANK_", ENGINE_VARIABLES)
    if unknown:
        raise UserError(f"unknown container setting {unknown[0]} (known: see"
                        " code/reranker/settings.py)")
    try:
        Settings.from_env(env)
    except SettingsError as exc:
        raise UserError(str(exc)) from None


def _check_server(env: dict) -> None:
    fixed = sorted(k for k in env if k in _FIXED_BY_SAGEMAKER)
    if fixed:
        raise UserError(f"container setting {fixed[0]} cannot be set for SageMaker: it"
                        " reaches the container on 0.0.0.0:8080 (SAGEMAKER_BIND_TO_PORT)")
    unknown = envconfig.unknown(env, "SERVE_", server_config.VARIABLES)
    if unknown:
        raise UserError(f"unknown container setting {unknown[0]} (known: see"
                        " container/serving/config.py)")
    try:
        server_config.load(None, {k: v for k, v in env.items() if k.startswith("SERVE_")})
    except server_config.ConfigError as exc:
        raise UserError(f"container setting: {exc}") from None


def _parse_pairs(pairs: list[str]) -> dict:
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise UserError(f"--env {pair!r}: expected KEY=VALUE")
        out[key.strip()] = value
    return out
