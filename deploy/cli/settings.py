"""Which deploy settings each command takes, written once.

Every name a user types for a setting is derived from its ``DeployConfig`` field here:
the flag ``--instance-type``, the variable ``DEPLOY_INSTANCE_TYPE``, the make variable
``INSTANCE_TYPE=`` (deploy.config.make_name) and its help line (the field's); this table
says which commands accept it.  make/deploy.mk passes no settings itself: its recipes
run ``python -m deploy --make-variables <command>``, which reads the make variables of that
command's settings from the environment (make hands them to its recipes).
"""

from __future__ import annotations

from deploy import config as cfg
from reranker import envconfig

# Settings grouped by what they are about; a command takes whole groups.
RUNTIME = ("endpoint", "region", "profile", "endpoint_url")  # only the endpoint is called
AWS = (*RUNTIME, "s3_endpoint_url")
STORAGE = ("bucket", "prefix", "archive", "kms_key")
MODEL = ("role", "model_data", "image", "network_isolation", "subnets", "security_groups",
         "tags", "transformers_version", "pytorch_version", "py_version")
INSTANCES = ("instance_type", "instance_count")
ENDPOINT = ("mode", "memory_mb", "max_concurrency", "provisioned_concurrency", "async_output",
            "async_failure", "sns_success", "sns_error", "async_max_invocations",
            "min_capacity", "max_capacity", "scale_to_zero", "target_invocations",
            "target_concurrency", "scale_in_cooldown", "scale_out_cooldown", "rollout",
            "rollout_step", "bake_seconds", "rollback_errors", "rollback_p99_ms",
            "rollback_alarms")
COMPONENT = ("component", "copies", "min_copies", "max_copies", "cpu_cores", "accelerators",
             "component_memory_mb", "min_instances", "max_instances", "scale_metric",
             "target_per_copy")
MONITORING = ("metrics_frequency", "capture", "capture_percent")
TRANSFORM = ("transform_input", "transform_output", "max_payload_mb", "split_type",
             "max_concurrent_transforms")
WAIT = ("wait_timeout", "poll_seconds")

COMMANDS: dict[str, tuple[str, ...]] = {
    "upload": ("region", "profile", "endpoint_url", "s3_endpoint_url", *STORAGE,
               "uncompressed"),
    "deploy": (*AWS, *STORAGE, "uncompressed", *MODEL, *INSTANCES, "inference_ami",
               *ENDPOINT, *COMPONENT, *MONITORING, *WAIT),
    "cloudformation": (*AWS, *STORAGE, "uncompressed", *MODEL, *INSTANCES, "inference_ami",
                       *ENDPOINT, *MONITORING),
    "transform": (*AWS, *STORAGE, *MODEL, *INSTANCES, *TRANSFORM, *WAIT),
    "status": (*AWS, "component"),
    "delete": (*AWS, "component", *WAIT),
    "invoke": (*AWS, "bucket", "prefix", "component"),
    "evaluate": (*RUNTIME, "component"),
    "loadtest": (*RUNTIME, "component"),
    "capture-export": (*AWS, "capture"),
    "ecr-login": ("profile", "endpoint_url"),
}

def flag(field: str) -> str:
    return "--" + field.replace("_", "-")


def make_variables(command: str) -> dict[str, tuple[str, ...]]:
    """{field: (MAKE_NAME,)} for the settings ``command`` takes."""
    return {field: (cfg.make_name(field),) for field in COMMANDS[command]}


def add_settings(parser, command: str) -> None:
    """``--config`` and ``command``'s settings as flags (all default to None: unset)."""
    parser.add_argument("--config", help=f"TOML settings file (default: ./{cfg.DEFAULT_FILE})")
    for field in COMMANDS[command]:
        spec = cfg.FIELDS[field]
        kind = envconfig.kind(spec)
        parser.add_argument(flag(field), dest=field, default=None,
                            type=int if kind == "int" else float if kind == "float" else str,
                            help=f"{spec.metadata['help']} (make {cfg.make_name(field)}=,"
                                 f" env {cfg.ENV_PREFIX}{field.upper()};"
                                 f" default {_default(spec)})")
    parser.set_defaults(settings_of=command)


def add_container_env(parser) -> None:
    parser.add_argument("--env", action="append", default=[], metavar="KEY=VALUE",
                        help="container setting (RERANK_*, SERVE_*, ...); repeatable; make"
                             " passes any RERANK_*=value from its command line")



def _default(spec) -> str:
    if spec.default is None:
        return "—"
    return str(spec.default).replace(str(cfg.DEFAULT_ARCHIVE), "build/model.tar.gz")


def markdown_table() -> str:
    """docs/deploy.md's table of settings (a test keeps the two equal)."""
    rows = ["| make variable | flag | commands | default | meaning |", "|---|---|---|---|---|"]
    for field, spec in cfg.FIELDS.items():
        commands = ", ".join(c for c, fields in COMMANDS.items() if field in fields)
        rows.append(f"| `{cfg.make_name(field)}` | `{flag(field)}` | {commands} | {_default(spec)}"
                    f" | {spec.metadata['help']} |")
    return "\n".join(rows) + "\n"
