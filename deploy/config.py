"""Deploy settings: command-line flags > make variables > ``DEPLOY_<NAME>`` environment >
a TOML file > defaults.  Which command takes which setting: deploy.cli.settings.

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

from deploy.errors import UserError, first_line
from deploy.paths import DEFAULT_ARCHIVE
from deploy.sagemaker import (
    capture,
    guardrails,
    host_ami,
    isolation,
    locations,
    metrics_config,
    modes,
    names,
    sizing,
)
from deploy.sagemaker.container_env import gather
from reranker import envconfig

ENV_PREFIX = "DEPLOY_"
OLD_PREFIX = "RERANKER_"
DEFAULT_FILE = "reranker.toml"


def setting(default, help: str):
    """A DeployConfig field and the one line its --help shows."""
    return dataclasses.field(default=default, metadata={"help": help})


@dataclasses.dataclass
class DeployConfig:
    """Every deploy-side setting; field ``x`` is flag ``--x``, variable DEPLOY_X and make
    variable X (see make_name); deploy.cli.settings says which command takes which."""

    endpoint: str = setting("reranker", "endpoint name; also names a transform's model and job")
    region: str | None = setting(None, "AWS region (default: boto3's chain: AWS_REGION, the"
                                       " profile's region)")
    profile: str | None = setting(None, "a profile name from ~/.aws/config (never a key)")
    role: str | None = setting(None, "the SageMaker execution role ARN")
    bucket: str | None = setting(None, "S3 bucket for archives (default:"
                                       " sagemaker-<region>-<account>, as the SDK does)")
    prefix: str = setting("rerankers", "S3 key prefix for archives")
    archive: str = setting(str(DEFAULT_ARCHIVE), "the model.tar.gz `make package` wrote")
    model_data: str | None = setting(None, "an s3:// model.tar.gz, or an s3://.../ prefix of"
                                           " uncompressed files, to deploy instead of"
                                           " uploading the archive")
    uncompressed: int = setting(0, "1: upload the archive's files under an S3 prefix"
                                   " (SageMaker's uncompressed model data: nothing to gunzip"
                                   " at each instance start; for large models); real-time,"
                                   " async and components")
    mode: str = setting("realtime", "realtime, serverless, async or component (an inference"
                                    " component on a shared endpoint)")
    instance_type: str | None = setting(None, "SageMaker instance type (default: fits the"
                                              " packaged model: ml.m5.xlarge, or a GPU for"
                                              " LLM rerankers by size)")
    instance_count: int = setting(1, "instances")
    inference_ami: str = setting("auto", "GPU endpoints' host image (InferenceAmiVersion);"
                                         " auto: al2023-ami-sagemaker-inference-gpu-4-1"
                                         " (NVIDIA driver 580) for our image on a GPU,"
                                         " SageMaker's default for the DLC")
    memory_mb: int = setting(4096, "serverless memory: 1024..6144 in steps of 1024")
    max_concurrency: int = setting(10, "serverless concurrent invocations: 1..200")
    provisioned_concurrency: int = setting(0, "serverless: invocations kept warm, with no"
                                              " cold start (0..MAX_CONCURRENCY; billed while"
                                              " provisioned)")
    async_output: str | None = setting(None, "async: s3:// prefix for results")
    async_failure: str | None = setting(None, "async: s3:// prefix for errors (optional)")
    sns_success: str | None = setting(None, "async: SNS topic ARN told of results (optional)")
    sns_error: str | None = setting(None, "async: SNS topic ARN told of errors (optional)")
    async_max_invocations: int = setting(4, "async: concurrent requests per instance")
    transform_input: str | None = setting(None, "s3:// prefix (or object) of .jsonl files, one"
                                                " rerank request per line")
    transform_output: str | None = setting(None, "s3:// prefix for the <input file>.out results")
    max_payload_mb: int = setting(6, "request lines packed per call, in MB: 1..100")
    split_type: str = setting("Line", "Line (one request per line) or None (a file per call)")
    max_concurrent_transforms: int = setting(0, "calls per instance at once (0: SageMaker's"
                                                " default)")
    component: str | None = setting(None, "component: the inference component's name (also"
                                          " for status, delete, invoke, evaluate and"
                                          " loadtest)")
    copies: int = setting(1, "component: copies at creation")
    min_copies: int = setting(1, "component autoscaling: fewest copies (0: scale to zero)")
    max_copies: int = setting(0, "component autoscaling: most copies (0: no autoscaling)")
    cpu_cores: float | None = setting(None, "component: CPU cores per copy (default:"
                                            " SageMaker's)")
    accelerators: int | None = setting(None, "component: GPUs per copy (default: 1 on a GPU"
                                             " instance type)")
    component_memory_mb: int | None = setting(None, "component: minimum memory per copy, MB"
                                                    " (default: sized from the packaged"
                                                    " model, at least 2048)")
    min_instances: int = setting(1, "component: a new endpoint's fewest instances (0: scale"
                                    " to zero)")
    max_instances: int = setting(1, "component: a new endpoint's most instances")
    scale_metric: str = setting("concurrency", "component autoscaling: concurrency or"
                                               " invocations, per copy")
    target_per_copy: float = setting(4.0, "component autoscaling: the metric's target per"
                                          " copy")
    image: str | None = setting(None, "our own image URI (e.g. pushed to ECR) instead of the"
                                      " Hugging Face DLC")
    network_isolation: int = setting(1, "1: the container gets no network (it needs none;"
                                        " serverless endpoints run without isolation)")
    subnets: str | None = setting(None, "VPC subnet ids, comma-separated (with"
                                        " SECURITY_GROUPS): the models run in your VPC")
    security_groups: str | None = setting(None, "VPC security group ids, comma-separated"
                                                " (with SUBNETS)")
    kms_key: str | None = setting(None, "KMS key ARN encrypting the archive in S3, instance"
                                        " volumes, async results and transform output")
    tags: str | None = setting(None, "tags for everything created: key=value, comma-separated")
    # The DLC whose stack (toolkit 2.6 + MMS + transformers 4.51.3) tests/test_dlc_parity.py
    # runs our handler on; None: the newest in the table.
    transformers_version: str | None = setting("4.51.3", "the HF DLC's transformers version")
    pytorch_version: str | None = setting(None, "the HF DLC's PyTorch version")
    py_version: str | None = setting(None, "the HF DLC's Python version (py311, ...)")
    min_capacity: int = setting(0, "autoscaling: fewest instances (0: the instance count)")
    max_capacity: int = setting(0, "autoscaling: most instances (0: no autoscaling)")
    scale_to_zero: int = setting(0, "async autoscaling: 1 lets the endpoint go down to 0"
                                    " instances while nothing waits; the first waiting request"
                                    " wakes it (minutes)")
    target_invocations: int = setting(100, "autoscaling: invocations per instance per minute"
                                                 " (async: waiting requests per instance)")
    target_concurrency: float = setting(0.0, "real-time autoscaling: concurrent requests per"
                                             " instance to hold instead, on SageMaker's"
                                             " 10-second concurrency metric (scales out in"
                                             " seconds, not minutes); 0: TARGET_INVOCATIONS")
    scale_in_cooldown: int = setting(300, "autoscaling: seconds between scale-ins")
    scale_out_cooldown: int = setting(60, "autoscaling: seconds between scale-outs")
    rollout: str = setting("all-at-once", "how an update moves traffic to the new instances:"
                                          " all-at-once, canary or linear (blue/green, each"
                                          " step baked and watched by the rollback alarms),"
                                          " or rolling (instances, or a component's copies,"
                                          " replaced a batch at a time: no second fleet)")
    rollout_step: int | None = setting(None, "canary: percent of the capacity that takes"
                                             " traffic first (1..50, default 10); linear:"
                                             " percent per step (10..50, default 25);"
                                             " rolling: percent of the instances or copies"
                                             " per batch (5..50, default 25)")
    bake_seconds: int | None = setting(None, "seconds each step of an update is watched"
                                             " before the next (0..3600; default 0 for"
                                             " all-at-once: no guardrails, 600 otherwise)")
    rollback_errors: int = setting(5, "a guarded update rolls back at this many 5xx answers"
                                      " in a minute")
    rollback_p99_ms: float | None = setting(None, "a guarded update also rolls back when the"
                                                  " model's p99 latency stays above this for"
                                                  " two minutes")
    rollback_alarms: str | None = setting(None, "more CloudWatch alarm names, comma-separated,"
                                                " that roll a guarded update back")
    capture: str | None = setting(None, "data capture: s3:// prefix where SageMaker stores a"
                                        " sample of requests and answers (real-time, async)")
    capture_percent: int = setting(10, "data capture: percent of requests sampled (1..100)")
    metrics_frequency: int = setting(60, "seconds between CloudWatch metric publications: 10,"
                                         " 30, 60, 120, 180, 240 or 300")
    wait_timeout: int = setting(1800, "seconds to wait for InService (or a job's end)")
    poll_seconds: float = setting(15.0, "seconds between status checks while waiting")
    endpoint_url: str | None = setting(None, "a SageMaker-compatible endpoint URL instead of"
                                             " AWS's (a local server, moto)")
    s3_endpoint_url: str | None = setting(None, "an S3-compatible endpoint URL instead of"
                                                " AWS's")
    env: dict = dataclasses.field(default_factory=dict)  # container environment
    # How errors name a setting: as make variables (REGION) when make runs the tool.
    make_names: bool = dataclasses.field(default=False, repr=False)
    # The instance type a component's memory was sized for, when sizing chose it (None: set
    # by the user, or not sized yet).
    memory_sized_for: str | None = dataclasses.field(default=None, repr=False)
    # The settings given for this run (flags, make variables, DEPLOY_* variables), as
    # opposed to defaults and reranker.toml: a mode refuses those it would ignore.
    explicit: frozenset = dataclasses.field(default=frozenset(), repr=False)

    @property
    def deploy_mode(self) -> modes.Mode:
        return modes.MODES[self.mode]

    def name(self, field: str) -> str:
        """``field`` as the user types it: make variable ``REGION`` or flag ``--region``."""
        return make_name(field) if self.make_names else "--" + field.replace("_", "-")


FIELDS = {f.name: f for f in dataclasses.fields(DeployConfig)
          if f.name not in ("env", "make_names", "memory_sized_for", "explicit")}
VARIABLES = {name: (ENV_PREFIX + name.upper(),) for name in FIELDS}
# The make variable of a setting, where it is not the field's name in capitals.
MAKE_NAMES = {"image": "IMAGE_URI", "transform_input": "INPUT", "transform_output": "OUTPUT",
              "split_type": "SPLIT"}


def make_name(field: str) -> str:
    return MAKE_NAMES.get(field, field.upper())


def load(args=None, environ=None, *, container: bool = False, mode: str | None = None,
         modes_allowed: tuple[str, ...] = modes.ENDPOINT_MODES) -> DeployConfig:
    """The settings; ``container``: also gather and check the endpoint's environment.
    ``mode``: the one mode the command runs (``transform``); else one of ``modes_allowed``.
    ``args.make_variables``: {field: (make variable,)} to read too (under make).
    ``args.settings_of``: the command, whose settings (deploy.cli.settings) are the only
    ones read and checked: a DEPLOY_* variable or a reranker.toml key another command
    takes is left alone."""
    environ = os.environ if environ is None else environ
    refuse_old_names(environ)
    refuse_unknown_names(environ)
    taken = taken_by(getattr(args, "settings_of", None))
    file_values, file_container = _read_file(getattr(args, "config", None), environ, taken)
    from_make = {k: v for k, v in (getattr(args, "make_variables", None) or {}).items()
                 if k in taken}
    given: dict[str, Any] = {
        **envconfig.read(DeployConfig, environ, {k: VARIABLES[k] for k in taken}, UserError),
        **envconfig.read(DeployConfig, environ, from_make, UserError)}
    given.update({name: getattr(args, name) for name in taken
                  if getattr(args, name, None) is not None})
    values: dict[str, Any] = {**file_values, **given}
    if mode:
        values["mode"] = mode
    env = gather(file_container, environ, getattr(args, "env", None)) if container else {}
    config = DeployConfig(**values, env=env, make_names=bool(from_make),
                          explicit=frozenset(given))
    manifest = sizing.manifest_of(config) if container else None
    if config.instance_type is None:
        config.instance_type = sizing.default_instance_type(manifest,
                                                            config.name("instance_type"))
    validate(config, (mode,) if mode else modes_allowed)
    if "mode" in taken and not mode:
        refuse_ignored(config, config.deploy_mode)
    if container:
        sizing.apply(config, manifest)
    return config


def taken_by(command: str | None) -> tuple[str, ...]:
    """The settings ``command`` takes; every one for a caller that names no command."""
    if command is None:
        return tuple(FIELDS)
    from deploy.cli.settings import COMMANDS

    return COMMANDS[command]


def validate(config: DeployConfig, allowed: tuple[str, ...] = modes.ENDPOINT_MODES) -> None:
    """Refuse impossible settings before any AWS call (AWS's own limits, named)."""
    mode = modes.get(config.mode, allowed, config.name("mode"))
    names.check_endpoint_name(config.endpoint)
    _check_numbers(config)
    mode.validate(config)
    modes.refuse_misplaced(config)
    guardrails.validate(config)
    isolation.validate(config)
    capture.validate(config)
    host_ami.validate(config)
    metrics_config.check_frequency(config.metrics_frequency,
                                   config.name("metrics_frequency"))
    _check_uncompressed(config, mode)
    locations.validate(config)


# SageMaker's MaxConcurrentInvocationsPerInstance for async endpoints.
ASYNC_MAX_INVOCATIONS = 1000


def _check_numbers(config: DeployConfig) -> None:
    """Numbers no mode accepts, refused before any upload or create call (AWS would refuse
    some only after the archive went up; a negative poll interval would stop the wait)."""
    name = config.name
    for field, spec in FIELDS.items():
        value = getattr(config, field)
        if envconfig.kind(spec) == "float" and value is not None:
            locations.finite(value, name(field))
    if config.poll_seconds < 0:
        raise UserError(f"{name('poll_seconds')} must be 0 seconds or more, not"
                        f" {config.poll_seconds:g}")
    for field in ("wait_timeout", "min_capacity", "max_capacity", "scale_in_cooldown",
                  "scale_out_cooldown", "provisioned_concurrency"):
        if getattr(config, field) < 0:
            raise UserError(f"{name(field)} must be 0 or more, not {getattr(config, field)}")
    if not 1 <= config.async_max_invocations <= ASYNC_MAX_INVOCATIONS:
        raise UserError(f"{name('async_max_invocations')} must be 1..{ASYNC_MAX_INVOCATIONS},"
                        f" not {config.async_max_invocations}")
    if config.target_invocations < 1:
        raise UserError(f"{name('target_invocations')} must be at least 1, not"
                        f" {config.target_invocations}")
    for field in ("uncompressed", "network_isolation", "scale_to_zero"):
        if getattr(config, field) not in (0, 1):
            raise UserError(f"{name(field)} must be 0 or 1, not {getattr(config, field)}")


# Settings each mode has no use for: set for this run, they are refused, not ignored.
_SERVERLESS = ("memory_mb", "max_concurrency", "provisioned_concurrency")
_ASYNC = ("async_output", "async_failure", "sns_success", "sns_error",
          "async_max_invocations", "scale_to_zero")
_COMPONENT = ("component", "copies", "min_copies", "max_copies", "cpu_cores", "accelerators",
              "component_memory_mb", "min_instances", "max_instances", "scale_metric",
              "target_per_copy")
_INSTANCE_SCALING = ("min_capacity", "max_capacity", "target_invocations")
IGNORED_BY = {
    "realtime": (*_SERVERLESS, *_ASYNC, *_COMPONENT),
    "async": (*_SERVERLESS, *_COMPONENT, "target_concurrency"),
    "serverless": ("instance_type", "instance_count", *_INSTANCE_SCALING, "target_concurrency",
                   "scale_in_cooldown", "scale_out_cooldown", *_ASYNC, *_COMPONENT),
    "component": (*_SERVERLESS, *_ASYNC, *_INSTANCE_SCALING, "target_concurrency"),
}


def refuse_ignored(config: DeployConfig, mode: modes.Mode) -> None:
    """A setting given for this run that ``mode`` would silently ignore: one line naming
    both.  Defaults and reranker.toml (which may hold several modes' settings) pass."""
    for field in IGNORED_BY.get(mode.name, ()):
        if field in config.explicit:
            kind = "inference components" if mode.component else f"{mode.name} endpoints"
            chosen = f"{config.name('mode')}{'=' if config.make_names else ' '}{mode.name}"
            raise UserError(f"{config.name(field)} does not apply to {kind} ({chosen}),"
                            f" which would ignore it: unset it, or set the"
                            f" {config.name('mode')} it is for")


def uncompressed(config: DeployConfig) -> bool:
    """The model goes to SageMaker as files under a prefix (UNCOMPRESSED=1, or a MODEL_DATA
    prefix ending in /), not as a model.tar.gz."""
    return bool(config.uncompressed) or (config.model_data or "").endswith("/")


def _check_uncompressed(config: DeployConfig, mode: modes.Mode) -> None:
    if config.uncompressed and config.model_data and not config.model_data.endswith("/"):
        raise UserError(f"{config.name('model_data')} names one object; with"
                        f" {config.name('uncompressed')}=1 give the s3://.../ prefix that"
                        " holds the model's files (ending in /), or unset"
                        f" {config.name('uncompressed')}")
    if uncompressed(config) and not mode.uncompressed_data:
        what = ("an s3://.../ prefix in " + config.name("model_data") if config.model_data
                else f"{config.name('uncompressed')}=1")
        raise UserError(f"{what}: SageMaker takes uncompressed model data for real-time and"
                        " async endpoints and inference components, not for"
                        f" {mode.name + ' endpoints' if mode.endpoint else 'batch transform'}:"
                        " deploy a model.tar.gz")


def refuse_old_names(environ) -> None:
    """RERANKER_X was the deploy tool's variable before DEPLOY_X; say so rather than ignore."""
    old = sorted(k for k in environ if k.startswith(OLD_PREFIX)
                 and k[len(OLD_PREFIX):].lower() in (*FIELDS, "config"))
    if old:
        new = ENV_PREFIX + old[0][len(OLD_PREFIX):]
        raise UserError(f"{old[0]} is no longer read: the deploy tool's variables are"
                        f" {ENV_PREFIX}* now (set {new}); RERANK_* still configures the"
                        " endpoint")


# DEPLOY_* names that are no setting: the settings file, and make's own command variable.
_NOT_SETTINGS = (ENV_PREFIX + "CONFIG", ENV_PREFIX + "TOOL")


def refuse_unknown_names(environ) -> None:
    """A misspelt DEPLOY_INSTANCE_TYP would deploy on the default instance type unseen:
    refused, naming the setting it is close to.  A DEPLOY_* variable close to none is
    another tool's (CI systems set DEPLOY_TOKEN, DEPLOY_ENV): left alone."""
    import difflib

    known = [v for (v,) in VARIABLES.values()]
    for name in envconfig.unknown(environ, ENV_PREFIX, VARIABLES):
        close = difflib.get_close_matches(name, known, 1, cutoff=0.9)
        if close and name not in _NOT_SETTINGS:
            raise UserError(f"{name} is no deploy setting (did you mean {close[0]}?);"
                            " `python -m deploy <command> -h` and docs/deploy.md list them")


def _read_file(path: str | None, environ, taken: tuple[str, ...] = tuple(FIELDS)
               ) -> tuple[dict, dict]:
    """[deploy] (only the settings in ``taken`` are read; any unknown name is refused) and
    [container] of the TOML file."""
    path = path or environ.get(ENV_PREFIX + "CONFIG")
    explicit = bool(path)
    file = Path(path or DEFAULT_FILE)
    if not file.is_file():
        if explicit:
            raise UserError(f"config file {file} does not exist")
        return {}, {}
    import tomllib

    try:
        data = tomllib.loads(file.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise UserError(f"cannot read {file}: it is not UTF-8 text") from None
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise UserError(f"cannot read {file}: {first_line(exc)}") from None
    unknown = set(data) - {"deploy", "container"}
    if unknown:
        raise UserError(f"{file}: unknown table [{sorted(unknown)[0]}] (use [deploy], [container])")
    for table in ("deploy", "container"):
        if not isinstance(data.get(table, {}), dict):
            raise UserError(f"{file}: {table} must be a table ([{table}] and key = value"
                            f" lines), not {type(data[table]).__name__} {data[table]!r}")
    values = {}
    for name, raw in data.get("deploy", {}).items():
        if name not in FIELDS:
            raise UserError(f"{file}: unknown setting {name!r} in [deploy]")
        if name not in taken:
            continue
        if isinstance(raw, (dict, list)) or (isinstance(raw, bool)
                                             and envconfig.kind(FIELDS[name]) != "bool"):
            raise UserError(f"{file}: [deploy] {name} must be a single"
                            f" {envconfig.kind(FIELDS[name])}, not {raw!r}")
        values[name] = envconfig.parse(FIELDS[name], raw, f"{file}: {name}", UserError)
    for key, value in data.get("container", {}).items():
        if isinstance(value, (dict, list)):
            raise UserError(f"{file}: [container] {key} must be a single value, not {value!r}")
    return values, dict(data.get("container", {}))
