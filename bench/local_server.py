"""Start our HTTP server (container/serving) as a real subprocess on 127.0.0.1: the
benchmarks' server, and the tests'.

    with start_server(model_dir, env={"RERANK_MAX_DOCUMENTS": "8"}) as base_url:
        httpx.post(base_url + "/invocations", json={...})

The server runs exactly as ``make serve`` runs it (``python -m serving``), logs JSON lines
to a file (``Server.log_text()``), and is stopped with SIGTERM (killed if it hangs), so
every test also exercises the graceful shutdown.  Only the standard library is used, so
other virtual environments (DLC parity, benchmarks) can import this module too.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# The server's own settings: read from the environment, so a stray one in the caller's
# (RERANK_CACHE_ROWS turns on a score cache, say) would change what is measured.
SETTINGS_PREFIXES = ("RERANK_", "SERVE_")


def environment(env: Mapping[str, str] | None = None, *, inherit_settings: bool = True
                ) -> dict[str, str]:
    """The server's environment: this process's, the fixed offline settings, then ``env``.
    ``inherit_settings=False`` drops every RERANK_*/SERVE_* variable of this process first,
    so the server runs with ``env`` and its own defaults only (what a benchmark wants)."""
    full_env = {k: v for k, v in os.environ.items()
                if inherit_settings or not k.startswith(SETTINGS_PREFIXES)}
    full_env.update({
        "HF_HUB_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false",
        "PYTHONUNBUFFERED": "1",
    })
    full_env.update(env or {})
    return full_env


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def ping(base_url: str, timeout: float = 2.0) -> int:
    """Status of GET /ping, or 0 when nothing answers."""
    try:
        with urllib.request.urlopen(base_url + "/ping", timeout=timeout) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except (OSError, urllib.error.URLError):
        return 0


class Server:
    """One server subprocess: its URL, process, and log file."""

    def __init__(self, model_dir, env: Mapping[str, str] | None = None, port: int | None = None,
                 python: str | None = None, *, inherit_settings: bool = True):
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._log = tempfile.NamedTemporaryFile(prefix="serving-", suffix=".log", delete=False)
        self.log_path = Path(self._log.name)
        full_env = environment(env, inherit_settings=inherit_settings)
        command = [python or sys.executable, "-m", "serving", "--model-dir", str(model_dir),
                   "--host", "127.0.0.1", "--port", str(self.port)]
        self.proc = subprocess.Popen(command, env=full_env, cwd=ROOT, stdout=self._log,
                                     stderr=subprocess.STDOUT)

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_ready(self, timeout: float = 180.0) -> None:
        """Block until /ping answers 200; raise with the log's tail if it dies or times out."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}:\n{self._tail()}")
            if ping(self.url) == 200:
                return
            time.sleep(0.1)
        raise RuntimeError(f"server not ready after {timeout:.0f} s:\n{self._tail()}")

    def stop(self, timeout: float = 30.0) -> int:
        """SIGTERM, then SIGKILL after ``timeout`` seconds; returns the exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
        return self.proc.returncode

    def _tail(self, chars: int = 4000) -> str:
        return self.log_text()[-chars:]


@contextlib.contextmanager
def start_server(model_dir, env: Mapping[str, str] | None = None, port: int | None = None,
                 *, ready_timeout: float = 180.0, inherit_settings: bool = True
                 ) -> Iterator[str]:
    """Serve ``model_dir`` on 127.0.0.1 until the block ends; yields the base URL.
    ``inherit_settings``: see :func:`environment`."""
    server = Server(model_dir, env=env, port=port, inherit_settings=inherit_settings)
    try:
        server.wait_ready(ready_timeout)
        yield server.url
    finally:
        server.stop()
        server.log_path.unlink(missing_ok=True)
