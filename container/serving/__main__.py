"""``python -m serving [--model-dir DIR] [--host H] [--port P]``: serve until SIGTERM/Ctrl-C.

Exit status: 0 after a graceful shutdown, 1 when the model failed to load, 2 for a bad
setting, a missing model directory or a port another process holds.
"""

from __future__ import annotations

import logging
import os
import signal
import sys

# PID 1 in a container has no default action for a signal it has no handler for: a SIGTERM
# during the imports below would be dropped, and SageMaker would wait for its SIGKILL.  It is
# remembered here and honoured once the server exists.
_STOP_ASKED: list[int] = []
for _sig in (signal.SIGTERM, signal.SIGINT):
    signal.signal(_sig, lambda signum, frame: _STOP_ASKED.append(signum))

# Before torch loads OpenMP: spinning worker threads collapse throughput 3-10x as soon as
# the event loop or a tokenizer wants a core (docs/BENCHMARKS.md, server configuration).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import uvicorn  # noqa: E402

from . import config as server_config  # noqa: E402
from . import logs, ports  # noqa: E402
from .app import build_app  # noqa: E402
from .protocol import protocol_class  # noqa: E402
from .shutdown import DeadlineServer, phases  # noqa: E402

log = logging.getLogger("serving")


def main(argv: list[str] | None = None) -> int:
    try:
        config = server_config.load(server_config.parse_args(argv))
    except server_config.ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if not os.path.isdir(config.model_dir):
        print(f"error: model directory {config.model_dir!r} does not exist", file=sys.stderr)
        return 2
    taken = ports.taken(config.host, config.port)
    if taken:
        print(f"error: cannot listen on {config.host}:{config.port}: {taken} (another server"
              " there? set SERVE_PORT, or PORT= for make serve)", file=sys.stderr)
        return 2
    logs.setup(config.log_level)
    # Progress bars (weights loading) would break the one-JSON-object-per-line log.
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    failed = []

    def on_failure() -> None:
        failed.append(True)
        server.should_exit = True

    app = build_app(config, on_failure)
    server = DeadlineServer(uvicorn.Config(
        # asyncio's loop always: uvicorn would take uvloop wherever it happens to be
        # installed, and the image (where every test runs) has none.
        app, host=config.host, port=config.port, lifespan="on", log_config=None, loop="asyncio",
        access_log=False, server_header=False, timeout_keep_alive=config.keep_alive,
        http=protocol_class(config), h11_max_incomplete_event_size=config.max_header_bytes,
        ws="none",  # HTTP only: an Upgrade header is ignored, never handed to a websocket
        timeout_graceful_shutdown=phases(config.shutdown_timeout).drain),
        deadline=config.shutdown_timeout)
    log.info("starting", extra={"event": "start", "pid": os.getpid(), "server": config.public()})
    # Until uvicorn installs its own handlers, a signal stops the server before it serves;
    # after, uvicorn drains, then re-raises the signal it caught, which would end the
    # process with status 143: this handler receives it instead, so a graceful stop exits 0.
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: setattr(server, "should_exit", True))
    server.should_exit = bool(_STOP_ASKED)
    server.run()
    code = 1 if failed or not server.started else 0
    log.info("stopped", extra={"event": "stop", "exit_code": code})
    logging.shutdown()
    # Predict threads still running past the shutdown deadline must not hold the exit.
    os._exit(code)


if __name__ == "__main__":
    sys.exit(main())
