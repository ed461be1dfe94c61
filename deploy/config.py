"""Deploy settings: command-line flags > ``DEPLOY_<NAME>`` environment > a TOML file > defaults.

The file is ``reranker.toml`` in the working directory, or the one named by ``--config`` or
``DEPLOY_CONFIG``; it is optional::

    [deploy]                      # any field of DeployConfig, by name
    endpoint = "reranker"
    role = "arn:aws:iam::123456789012:role/reranker-sagemaker"
    bucket = "my-models"
    instance_type = "ml.g5.xlarge"

    [container]                   # passed to the endpoint as its environment
    RERANK_MAX_LENGTH = 256

The deploy tool's own variables are ``DEPLOY_*``; ``RERANK_*`` and ``SERVE_*`` configure the
endpoint (deploy.sagemaker.container_env checks them before anything is created).  The old
``RERANKER_*`` names are refused with the new name: one letter from ``RERANK_*``, they were
easy to mix up, and a deploy that silently ignored one would go to production wrong.
Credentials are never read here: boto3 finds them through its standard chain.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

from deploy.errors import UserError
from deploy.paths import DEFAULT_ARCHIVE
from deploy.sagemaker import metrics_config, modes, names, sizing
from deploy.sagemaker.container_env import gather
from reranker import envconfig

ENV_PREFIX = "DEPLOY_"
OLD_PREFIX = "RERANKER_"
DEFAULT_FILE = "reranker.toml"


@dataclasses.dataclass
class DeployConfig:
    """Every deploy-side setting; each field ``x`` is flag ``--x`` and variable DEPLOY_X."""

    endpoint: str = "reranker"           # also names a transform's model and job
    region: str | None = None            # None: boto3's chain (AWS_REGION, profile, ...)
    profile: str | None = None           # a profile name from ~/.aws/config, never a key
    role: str | None = None              # the SageMaker execution role ARN
    bucket: str | None = None            # None: sagemaker-<region>-<account>, as the SDK does
    prefix: str = "rerankers"
    archive: str = str(DEFAULT_ARCHIVE)  # the model.tar.gz `make package` wrote
    model_data: str | None = None        # an s3:// URI: deploy it instead of uploading archive
    mode: str = "realtime"               # realtime, serverless, async, component
    instance_type: str | None = None     # None: fits the packaged model (sizing.py):
                                         # ml.m5.xlarge, or a GPU for LLM rerankers
    instance_count: int = 1
    memory_mb: int = 4096                # serverless: 1024..6144 in steps of 1024
    max_concurrency: int = 10            # serverless: 1..200
    async_output: str | None = None      # async: s3:// prefix for results
    async_failure: str | None = None     # async: s3:// prefix for errors (optional)
    sns_success: str | None = None       # async: SNS topic ARNs (optional)
    sns_error: str | None = None
    async_max_invocations: int = 4       # async: concurrent requests per instance
    transform_input: str | None = None   # transform: s3:// prefix (or object) of .jsonl files
    transform_output: str | None = None  # transform: s3:// prefix for <input file>.out
    max_payload_mb: int = 6              # transform: request lines packed per call, 1..100
    split_type: str = "Line"             # transform: Line (one request per line) or None
    max_concurrent_transforms: int = 0   # transform: calls per instance at once; 0: default
    # component: an inference component on ENDPOINT (deploy.sagemaker.components)
    component: str | None = None         # its name (also names its models)
    copies: int = 1                      # copies at creation
    min_copies: int = 1                  # autoscaling bounds; 0: the component scales to
    max_copies: int = 0                  # zero copies; max_copies 0: autoscaling off
    cpu_cores: float | None = None       # per copy; None: SageMaker's default
    accelerators: int | None = None      # GPUs per copy; None: 1 on a GPU instance type
    component_memory_mb: int = 2048      # minimum memory per copy
    min_instances: int = 1               # a new endpoint's managed instance scaling
    max_instances: int = 1               # (min_instances 0: the endpoint scales to zero)
    scale_metric: str = "concurrency"    # concurrency (per copy) or invocations (per copy)
    target_per_copy: float = 4.0         # the scale_metric's target value
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
    metrics_frequency: int = 60          # CloudWatch publishing: 10, 30, 60, 120, ... 300 s
    wait_timeout: int = 1800             # seconds to wait for InService (or a job's end)
    poll_seconds: float = 15.0
    endpoint_url: str | None = None      # a SageMaker-compatible endpoint (tests: moto)
    s3_endpoint_url: str | None = None
    env: dict = dataclasses.field(default_factory=dict)  # container environment

    @property
    def deploy_mode(self) -> modes.Mode:
        return modes.MODES[self.mode]


FIELDS = {f.name: f for f in dataclasses.fields(DeployConfig) if f.name != "env"}
VARIABLES = {name: (ENV_PREFIX + name.upper(),) for name in FIELDS}


def add_arguments(parser, fields: tuple[str, ...]) -> None:
    """Add ``--config`` and the named settings as flags (all default to None: unset)."""
    parser.add_argument("--config", help=f"TOML settings file (default: ./{DEFAULT_FILE})")
    for name in fields:
        field = FIELDS[name]
        kind = envconfig.kind(field)
        parser.add_argument("--" + name.replace("_", "-"), dest=name, default=None,
                            type=int if kind == "int" else float if kind == "float" else str,
                            help=f"(env {ENV_PREFIX}{name.upper()}; default {field.default})")


def add_env_argument(parser) -> None:
    parser.add_argument("--env", action="append", default=[], metavar="KEY=VALUE",
                        help="container setting (RERANK_*, SERVE_*, ...); repeatable")


def load(args=None, environ=None, *, container: bool = False,
         mode: str | None = None) -> DeployConfig:
    """The settings; ``container``: also gather and check the endpoint's environment.
    ``mode``: the one mode the command runs (``transform``); else an endpoint mode."""
    environ = os.environ if environ is None else environ
    refuse_old_names(environ)
    file_values, file_container = _read_file(getattr(args, "config", None), environ)
    values: dict[str, Any] = {**file_values,
                              **envconfig.read(DeployConfig, environ, VARIABLES, UserError)}
    values.update({name: getattr(args, name) for name in FIELDS
                   if getattr(args, name, None) is not None})
    if mode:
        values["mode"] = mode
    env = gather(file_container, environ, getattr(args, "env", None)) if container else {}
    config = DeployConfig(**values, env=env)
    manifest = sizing.manifest_of(config) if container else None
    if config.instance_type is None:
        config.instance_type = sizing.default_instance_type(manifest)
    validate(config, (mode,) if mode else modes.ENDPOINT_MODES)
    if container:
        sizing.apply(config, manifest)
    return config


def validate(config: DeployConfig, allowed: tuple[str, ...] = modes.ENDPOINT_MODES) -> None:
    """Refuse impossible settings before any AWS call (AWS's own limits, named)."""
    mode = modes.get(config.mode, allowed)
    names.check_endpoint_name(config.endpoint)
    mode.validate(config)
    metrics_config.check_frequency(config.metrics_frequency)
    if config.model_data and not config.model_data.startswith("s3://"):
        raise UserError(f"model_data must be an s3:// URI, not {config.model_data!r}")


def refuse_old_names(environ) -> None:
    """RERANKER_X was the deploy tool's variable before DEPLOY_X; say so rather than ignore."""
    old = sorted(k for k in environ if k.startswith(OLD_PREFIX)
                 and k[len(OLD_PREFIX):].lower() in (*FIELDS, "config"))
    if old:
        new = ENV_PREFIX + old[0][len(OLD_PREFIX):]
        raise UserError(f"{old[0]} is no longer read: the deploy tool's variables are"
                        f" {ENV_PREFIX}* now (set {new}); RERANK_* still configures the"
                        " endpoint")


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
    values = {}
    for name, raw in data.get("deploy", {}).items():
        if name not in FIELDS:
            raise UserError(f"{file}: unknown setting {name!r} in [deploy]")
        values[name] = envconfig.parse(FIELDS[name], raw, f"{file}: {name}", UserError)
    return values, dict(data.get("container", {}))
