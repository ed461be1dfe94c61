"""The server's own settings: command line first, then the environment, then defaults.

Engine settings (``RERANK_*``) are read by the engine itself; these are the transport's.
SageMaker's variables are honoured: SAGEMAKER_BIND_TO_PORT, SM_MODEL_DIR, SAGEMAKER_PROGRAM.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import re
from collections.abc import Mapping

from reranker import envconfig

MB = 1024 * 1024


@dataclasses.dataclass(frozen=True)
class ServerConfig:
    model_dir: str = "/opt/ml/model"
    host: str = "0.0.0.0"
    port: int = 8080
    # The file under <model_dir>/code whose hooks serve requests (the toolkit's variable).
    program: str = "inference.py"
    # SageMaker's real-time payload limit; larger bodies get 413 before they are read.
    max_payload_bytes: int = 6 * MB
    # Requests admitted at once (all of them queue in the engine's batcher); more get 503.
    max_concurrency: int = 64
    # Seconds a request's body may take to arrive; slower bodies get 408.  Bodies are read
    # before a request takes one of the SERVE_MAX_CONCURRENCY slots, so slow clients never
    # hold one.
    body_timeout: float = 20.0
    # Seconds a connection may take to send a request's line and headers; then 408.
    header_timeout: float = 20.0
    # Seconds a scoring request may take once admitted, waiting in the batcher included;
    # past it its rows not yet computed are dropped and it gets 503 deadline_exceeded,
    # so an overloaded server stops computing answers nobody waits for.  0: no limit.
    # `make deploy` sets 60 for real-time and serverless endpoints (SageMaker gives up on
    # an invocation after 60 s); async and batch transform calls may run longer.
    request_timeout: float = 0.0
    # Request line plus headers; larger get 431 (h11's max incomplete event size).
    max_header_bytes: int = 65536
    # Open connections (idle keep-alive ones included).  One more closes the connection idle
    # longest between two requests; when none is idle, it gets 503 on connecting.  With
    # SERVE_MAX_PAYLOAD_BYTES it bounds the memory bodies being read can take.
    max_connections: int = 256
    # Seconds a client may leave its answer unread (the server's write buffer not draining
    # at all); then the connection is aborted, so clients that never read hold no connection.
    send_timeout: float = 30.0
    # Seconds from SIGTERM to exit, whatever the load: requests in flight get until then
    # minus 2 s to finish (then 503), and the engine stops its forward passes in those 2 s.
    # SageMaker sends SIGKILL 30 s after SIGTERM.
    shutdown_timeout: float = 25.0
    # Idle keep-alive seconds; longer than the 60 s SageMaker waits for an answer.
    keep_alive: int = 75
    log_level: str = "info"
    # Prometheus metrics on GET <metrics_path>, the path SageMaker scrapes by default.
    metrics: bool = True
    metrics_path: str = "/metrics"
    # Off SageMaker: every request but /ping must send "Authorization: Bearer <key>" (auth.py).
    # From SERVE_API_KEY, or read from the file SERVE_API_KEY_FILE names (a mounted secret).
    api_key: str | None = dataclasses.field(default=None, repr=False)
    api_key_file: str | None = None

    def public(self) -> dict:
        """The settings as logged: the key itself never is."""
        return {**dataclasses.asdict(self), "api_key": "set" if self.api_key else None}


class ConfigError(ValueError):
    """A bad setting, reported at start-up as one line."""


VARIABLES = {  # field -> variables, first set wins
    "model_dir": ("SM_MODEL_DIR",),
    "port": ("SAGEMAKER_BIND_TO_PORT", "SERVE_PORT"),
    "host": ("SERVE_HOST",),
    "program": ("SAGEMAKER_PROGRAM",),
    "max_payload_bytes": ("SERVE_MAX_PAYLOAD_BYTES",),
    "max_concurrency": ("SERVE_MAX_CONCURRENCY",),
    "body_timeout": ("SERVE_BODY_TIMEOUT",),
    "header_timeout": ("SERVE_HEADER_TIMEOUT",),
    "request_timeout": ("SERVE_REQUEST_TIMEOUT",),
    "max_header_bytes": ("SERVE_MAX_HEADER_BYTES",),
    "max_connections": ("SERVE_MAX_CONNECTIONS",),
    "send_timeout": ("SERVE_SEND_TIMEOUT",),
    "shutdown_timeout": ("SERVE_SHUTDOWN_TIMEOUT",),
    "keep_alive": ("SERVE_KEEP_ALIVE",),
    "log_level": ("SERVE_LOG_LEVEL",),
    "metrics": ("SERVE_METRICS",),
    "metrics_path": ("SERVE_METRICS_PATH",),
    "api_key": ("SERVE_API_KEY",),
    "api_key_file": ("SERVE_API_KEY_FILE",),
}

LOG_LEVELS = ("debug", "info", "warning", "error", "critical")
# What SageMaker accepts as ContainerMetricsConfig's MetricsEndpointPath.
_METRICS_PATH = re.compile(r"^/(?!.*\.\.)[a-zA-Z0-9/_.\-]{1,255}$")
_STRONG_KEY = re.compile(r"^[\x21-\x7e]{16,}$")  # printable ASCII, no spaces
# Paths the server answers itself, which the metrics route must not take.
SERVING_PATHS = ("/ping", "/invocations", "/rerank", "/v1/rerank", "/v2/rerank", "/score",
                 "/v1/score", "/info", "/v1/models", "/openapi.json")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):
        """One line, not the usage too."""
        self.exit(2, f"{self.prog}: error: {message}; see `{self.prog} --help`\n")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = _Parser(prog="python -m serving",
                                     description="Serve a reranker over HTTP "
                                                 "(the SageMaker container contract).")
    parser.add_argument("--model-dir", help="model directory (default: SM_MODEL_DIR or "
                                            "/opt/ml/model)")
    parser.add_argument("--host", help="address to listen on (default: 0.0.0.0)")
    parser.add_argument("--port", type=int, help="port (default: SAGEMAKER_BIND_TO_PORT or 8080)")
    return parser.parse_args(argv)


def load(args: argparse.Namespace, env: Mapping[str, str] | None = None) -> ServerConfig:
    env = os.environ if env is None else env
    values = envconfig.read(ServerConfig, env, VARIABLES, ConfigError)
    for name in ("model_dir", "host", "port"):
        if getattr(args, name, None) is not None:
            values[name] = getattr(args, name)
    if values.get("api_key_file"):
        values["api_key"] = _read_key(values)
    config = ServerConfig(**values)
    _validate(config)
    return config


def _read_key(values: dict) -> str:
    if values.get("api_key"):
        raise ConfigError("set SERVE_API_KEY or SERVE_API_KEY_FILE, not both")
    try:
        with open(values["api_key_file"], encoding="utf-8") as file:
            return file.read().strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"SERVE_API_KEY_FILE: cannot read {values['api_key_file']}"
                          f" ({exc.strerror or exc})") from None


def _validate(config: ServerConfig) -> None:
    checks = [
        (0 < config.port < 65536, "the port must be in 1..65535"),
        (config.max_payload_bytes >= 1024, "SERVE_MAX_PAYLOAD_BYTES must be at least 1024"),
        (config.max_concurrency >= 1, "SERVE_MAX_CONCURRENCY must be at least 1"),
        (config.body_timeout > 0, "SERVE_BODY_TIMEOUT must be > 0"),
        (config.header_timeout > 0, "SERVE_HEADER_TIMEOUT must be > 0"),
        (config.request_timeout >= 0, "SERVE_REQUEST_TIMEOUT must be >= 0 (0: no limit)"),
        (config.max_header_bytes >= 4096, "SERVE_MAX_HEADER_BYTES must be at least 4096"),
        (config.max_connections >= 1, "SERVE_MAX_CONNECTIONS must be at least 1"),
        (config.send_timeout > 0, "SERVE_SEND_TIMEOUT must be > 0"),
        (config.shutdown_timeout >= 0, "SERVE_SHUTDOWN_TIMEOUT must be >= 0"),
        (config.keep_alive >= 1, "SERVE_KEEP_ALIVE must be at least 1"),
        (config.program.endswith(".py"), "SAGEMAKER_PROGRAM must name a .py file"),
        (config.log_level.lower() in LOG_LEVELS,
         f"SERVE_LOG_LEVEL must be one of {', '.join(LOG_LEVELS)}"),
        (bool(_METRICS_PATH.match(config.metrics_path)),
         "SERVE_METRICS_PATH must start with / and hold only letters, digits, / _ . - "
         "(no '..'), as SageMaker's MetricsEndpointPath"),
        (config.metrics_path not in SERVING_PATHS
         and not config.metrics_path.startswith("/endpoints/"),
         f"SERVE_METRICS_PATH must not be one of the serving paths {SERVING_PATHS} "
         "or under /endpoints/"),
        (config.api_key is None or _STRONG_KEY.match(config.api_key),
         "the API key must be at least 16 characters with no spaces (e.g. `openssl rand -hex"
         " 32`)"),
    ]
    for ok, message in checks:
        if not ok:
            raise ConfigError(message)
