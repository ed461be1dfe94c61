"""Deploy settings: command-line flags > ``RERANKER_<NAME>`` environment > a TOML file > defaults.

The file is ``reranker.toml`` in the working directory, or the one named by ``--config`` or
``RERANKER_CONFIG``; it is optional::

    [deploy]                      # any field of DeployConfig, by name
    endpoint = "reranker"
    role = "arn:aws:iam::123456789012:role/reranker-sagemaker"
    bucket = "my-models"
    instance_type = "ml.g5.xlarge"

    [container]                   # passed to the endpoint as its environment
    RERANK_MAX_LENGTH = 256

Container settings also come from ``RERANK_*`` variables in the environment and ``--env
KEY=VALUE``; they are validated with the engine's own Settings before anything is created.
Credentials are never read here: boto3 finds them through its standard chain.
"""

from __future__ import annotations

import dataclasses
import os
import re
from pathlib import Path
from typing import Any

from deploy.errors import UserError
from deploy.paths import DEFAULT_ARCHIVE, use_engine

ENV_PREFIX = "RERANKER_"
DEFAULT_FILE = "reranker.toml"
MODES = ("realtime", "serverless", "async")
# Environment names a container may receive besides RERANK_*: our server's and the DLC's knobs.
_CONTAINER_PREFIXES = ("RERANK_", "SERVE_", "SAGEMAKER_MODEL_SERVER_", "OMP_", "MKL_")
# A model's environment is readable by anyone allowed DescribeModel: never put secrets there.
_SECRET = re.compile(r"SECRET|PASSWORD|TOKEN|CREDENTIAL|^AWS_|PRIVATE", re.I)


@dataclasses.dataclass
class DeployConfig:
    """Every deploy-side setting; each field ``x`` is flag ``--x`` and variable RERANKER_X."""

    endpoint: str = "reranker"
    region: str | None = None            # None: boto3's chain (AWS_REGION, profile, ...)
    profile: str | None = None           # a profile name from ~/.aws/config, never a key
    role: str | None = None              # the SageMaker execution role ARN
    bucket: str | None = None            # None: sagemaker-<region>-<account>, as the SDK does
    prefix: str = "rerankers"
    archive: str = str(DEFAULT_ARCHIVE)  # the model.tar.gz `make package` wrote
    model_data: str | None = None        # an s3:// URI: deploy it instead of uploading archive
    mode: str = "realtime"
    instance_type: str = "ml.m5.xlarge"
    instance_count: int = 1
    memory_mb: int = 4096                # serverless: 1024..6144 in steps of 1024
    max_concurrency: int = 10            # serverless: 1..200
    async_output: str | None = None      # async: s3:// prefix for results
    async_failure: str | None = None     # async: s3:// prefix for errors (optional)
    sns_success: str | None = None       # async: SNS topic ARNs (optional)
    sns_error: str | None = None
    async_max_invocations: int = 4       # async: concurrent requests per instance
    image: str | None = None             # our own image URI instead of the HF DLC
    network_isolation: int = 1           # 1: the container gets no network (nothing to fetch)
    # The DLC whose stack (toolkit 2.6 + MMS + transformers 4.51.3) tests/test_dlc_parity.py
    # runs our handler on; None: the newest in the table.
    transformers_version: str | None = "4.51.3"
    pytorch_version: str | None = None
    py_version: str | None = None
    min_capacity: int = 0                # autoscaling: 0 = instance_count
    max_capacity: int = 0                # autoscaling: 0 = off
    target_invocations: int = 100        # invocations per instance per minute to aim at
    scale_in_cooldown: int = 300
    scale_out_cooldown: int = 60
    wait_timeout: int = 1800             # seconds to wait for InService
    poll_seconds: float = 15.0
    endpoint_url: str | None = None      # a SageMaker-compatible endpoint (tests: moto)
    s3_endpoint_url: str | None = None
    env: dict = dataclasses.field(default_factory=dict)  # container environment


FIELDS = {f.name: f for f in dataclasses.fields(DeployConfig) if f.name != "env"}


def add_arguments(parser, names: tuple[str, ...]) -> None:
    """Add ``--config`` and the named settings as flags (all default to None: unset)."""
    parser.add_argument("--config", help=f"TOML settings file (default: ./{DEFAULT_FILE})")
    for name in names:
        field = FIELDS[name]
        flag = "--" + name.replace("_", "-")
        kind = _kind(field)
        parser.add_argument(flag, dest=name, default=None,
                            type=int if kind == "int" else float if kind == "float" else str,
                            help=f"(env {ENV_PREFIX}{name.upper()}; default {field.default})")


def add_env_argument(parser) -> None:
    parser.add_argument("--env", action="append", default=[], metavar="KEY=VALUE",
                        help="container setting (RERANK_*, SERVE_*, ...); repeatable")


def load(args=None, environ=None, *, container: bool = False) -> DeployConfig:
    """The settings; ``container``: also gather and validate the endpoint's environment."""
    environ = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    file_values, file_container = _read_file(getattr(args, "config", None), environ)
    values.update(file_values)
    for name, field in FIELDS.items():
        raw = environ.get(ENV_PREFIX + name.upper())
        if raw not in (None, ""):
            values[name] = _coerce(field, raw, ENV_PREFIX + name.upper())
    for name in FIELDS:
        value = getattr(args, name, None) if args is not None else None
        if value is not None:
            values[name] = value
    env = {}
    if container:
        env.update(file_container)
        env.update({k: v for k, v in environ.items() if k.startswith("RERANK_")})
        env.update(_parse_pairs(getattr(args, "env", None) or []))
        env = check_container_env(env)
    config = DeployConfig(**values, env=env)
    validate(config)
    return config


def validate(config: DeployConfig) -> None:
    """Refuse impossible settings before any AWS call (AWS's own limits, named)."""
    if config.mode not in MODES:
        raise UserError(f"mode must be one of {', '.join(MODES)}, not {config.mode!r}")
    if not re.fullmatch(r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}", config.endpoint or ""):
        raise UserError(f"endpoint name {config.endpoint!r} is not valid: letters, digits and"
                        " hyphens, at most 63, starting with a letter or digit")
    if config.mode == "serverless":
        if config.memory_mb not in range(1024, 6145, 1024):
            raise UserError(f"memory_mb must be 1024, 2048, ... 6144 for serverless, not"
                            f" {config.memory_mb}")
        if not 1 <= config.max_concurrency <= 200:
            raise UserError(f"max_concurrency must be 1..200 for serverless, not"
                            f" {config.max_concurrency}")
        if config.max_capacity:
            raise UserError("serverless endpoints scale by max_concurrency; unset max_capacity")
    else:
        if config.instance_count < 1:
            raise UserError("instance_count must be at least 1")
        if not config.instance_type.startswith("ml."):
            raise UserError(f"instance_type {config.instance_type!r} is not a SageMaker"
                            " instance type (ml.<family>.<size>, e.g. ml.g5.xlarge)")
    if config.mode == "async" and not (config.async_output or "").startswith("s3://"):
        raise UserError("async mode needs async_output, an s3:// prefix for the results")
    if config.max_capacity:
        low = config.min_capacity or config.instance_count
        if config.mode == "realtime" and low < 1:
            raise UserError("min_capacity must be at least 1 for a real-time endpoint")
        if config.max_capacity < low:
            raise UserError(f"max_capacity ({config.max_capacity}) is below min_capacity ({low})")
        if config.target_invocations < 1:
            raise UserError("target_invocations must be at least 1")
    if config.model_data and not config.model_data.startswith("s3://"):
        raise UserError(f"model_data must be an s3:// URI, not {config.model_data!r}")


def check_container_env(env: dict) -> dict:
    """Names we pass on, never a secret, and RERANK_* values the engine accepts."""
    out = {}
    for key, value in env.items():
        key = str(key)
        if _SECRET.search(key):
            raise UserError(f"refusing to put {key} in the endpoint's environment: anyone who"
                            " can describe the model can read it")
        if not key.startswith(_CONTAINER_PREFIXES):
            raise UserError(f"container setting {key} is not one we pass on (names start"
                            f" with {', '.join(_CONTAINER_PREFIXES)})")
        out[key] = str(value).lower() if isinstance(value, bool) else str(value)
    use_engine()
    from reranker.settings import Settings, SettingsError

    known = {"RERANK_" + f.name.upper() for f in dataclasses.fields(Settings)}
    unknown = sorted(k for k in out if k.startswith("RERANK_") and k not in known)
    if unknown:
        raise UserError(f"unknown container setting {unknown[0]} (known: see"
                        " code/reranker/settings.py)")
    try:
        Settings.from_env(out)
    except SettingsError as exc:
        raise UserError(str(exc)) from None
    return dict(sorted(out.items()))


def _read_file(path: str | None, environ) -> tuple[dict, dict]:
    path = path or environ.get(ENV_PREFIX + "CONFIG")
    explicit = bool(path)
    file = Path(path or DEFAULT_FILE)
    if not file.is_file():
        if explicit:
            raise UserError(f"config file {file} does not exist")
        return {}, {}
    import tomllib

    try:
        data = tomllib.loads(file.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise UserError(f"cannot read {file}: {exc}") from None
    unknown = set(data) - {"deploy", "container"}
    if unknown:
        raise UserError(f"{file}: unknown table [{sorted(unknown)[0]}] (use [deploy], [container])")
    section = data.get("deploy", {})
    values = {}
    for name, raw in section.items():
        if name not in FIELDS:
            raise UserError(f"{file}: unknown setting {name!r} in [deploy]")
        values[name] = _coerce(FIELDS[name], raw, f"{file}: {name}")
    return values, dict(data.get("container", {}))


def _kind(field: dataclasses.Field) -> str:
    kind = field.type if isinstance(field.type, str) else field.type.__name__
    return kind.split("|")[0].strip()


def _coerce(field: dataclasses.Field, raw, where: str):
    kind = _kind(field)
    try:
        if kind == "int":
            return int(raw)
        if kind == "float":
            return float(raw)
    except (TypeError, ValueError):
        raise UserError(f"{where}={raw!r} is not a valid {kind}") from None
    return str(raw)


def _parse_pairs(pairs: list[str]) -> dict:
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise UserError(f"--env {pair!r}: expected KEY=VALUE")
        out[key.strip()] = value
    return out
