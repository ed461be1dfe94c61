"""Run the official Hugging Face DLC serving stack on 127.0.0.1, without Docker.

    with start_dlc(model_dir, env={"RERANK_THREADS": "1"}, workers=2) as base_url:
        httpx.post(base_url + "/invocations", json={...})

The stack is what the HF PyTorch inference DLC runs: sagemaker-huggingface-inference-toolkit
starts multi-model-server (a Java frontend), whose Python workers import code/inference.py
from the model directory.  It runs from ``.venv-dlc`` (`make dlc-venv`), in a temporary
directory laid out like /opt/ml (SAGEMAKER_BASE_DIR), on free loopback ports.

What the stack does not do for us, and this module does:
- /ping answers 200 even while workers are dead or loading, so readiness is a real
  invocation that answers 200 (and, with several workers, every worker READY).
- MMS's Java frontend and its Python workers outlive the toolkit's process, so the stack
  runs in its own session and every process of that session is ended by pid on exit.
- Fixed paths are made private where the stack allows it: TMPDIR/TEMP (MMS's pid file and
  the workers' unix sockets live there, /tmp/.mms.sock.9000 by default, so two stacks would
  collide) and MMS_* environment variables, which MMS prefers to the properties file.  The
  toolkit always writes that file to /etc/sagemaker-mms.properties (a constant in
  sagemaker_inference.model_server, no variable moves it), so the user must be able to write it.

Only the standard library is used, so any virtual environment (tests, bench) can import it.
``python bench/dlc_stack.py MODEL_DIR --port 8081`` serves a model until Ctrl-C.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DLC_VENV = ROOT / os.environ.get("DLC_VENV", ".venv-dlc")  # `make` exports it; may be absolute
MMS_PROPERTIES = Path("/etc/sagemaker-mms.properties")
# The toolkit pip-installs code/requirements.txt at every start: ours must pull nothing.
CODE_REQUIREMENTS = (
    "# Empty on purpose: the serving stack already has torch, transformers and numpy,\n"
    "# and the toolkit pip-installs this file at every start.\n"
)
READY_BODY = json.dumps({"query": "ready?", "documents": ["ready"]}).encode()
# Environment that would make the stack's Python import another venv's packages.
_LEAKY_ENV = ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PYTHONSTARTUP")
# The handler's settings (reranker.settings reads RERANK_*; SERVE_* are our server's).
SETTINGS_PREFIXES = ("RERANK_", "SERVE_")


def free_port() -> int:
    """A free loopback port below 32767: MMS refuses higher ones ("Invalid port number"),
    and the kernel's ephemeral ports (what binding port 0 gives) all lie above."""
    for _ in range(200):
        port = random.randint(20000, 32766)
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port below 32767 on 127.0.0.1")


def venv_ready(venv: Path = DLC_VENV) -> bool:
    return (venv / ".installed").is_file()


# ---------------------------------------------------------------- the model directory


def layout_model(model_dir, out, *, link: bool = False) -> Path:
    """Lay out ``out`` as an unpacked model.tar.gz: the model's files at the root and the
    repository's code/ (inference.py, the reranker package, an empty requirements.txt).

    ``link`` symlinks the model files instead of copying them (large models, benchmarks).
    """
    src, out = Path(model_dir).resolve(), Path(out)
    out.mkdir(parents=True, exist_ok=False)
    for item in sorted(src.iterdir()):
        if item.name == "code":
            continue
        target = out / item.name
        if link:
            target.symlink_to(item)
        elif item.is_dir():
            shutil.copytree(item, target)
        else:
            shutil.copy2(item, target)
    code = out / "code"
    code.mkdir()
    shutil.copy2(ROOT / "code" / "inference.py", code / "inference.py")
    shutil.copytree(ROOT / "code" / "reranker", code / "reranker",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    (code / "requirements.txt").write_text(CODE_REQUIREMENTS)
    return out


def _place_model(model, dest: Path) -> None:
    """Put the model at ``dest`` (<base>/model): a model.tar.gz is extracted, a directory
    with code/inference.py is linked as it is, a bare model directory is laid out."""
    model = Path(model)
    if model.is_file() and model.name.endswith((".tar.gz", ".tgz")):
        dest.mkdir()
        with tarfile.open(model, "r:gz") as tar:
            tar.extractall(dest, filter="data")
    elif (model / "code" / "inference.py").is_file():
        dest.symlink_to(model.resolve(), target_is_directory=True)
    elif (model / "config.json").is_file():
        layout_model(model, dest, link=True)
    else:
        raise ValueError(f"{model} is neither a model.tar.gz nor a model directory")


# ---------------------------------------------------------------- processes


def session_pids(sid: int) -> list[int]:
    """Live (non-zombie) processes of session ``sid``, read from /proc."""
    pids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # the process ended while we looked
        state, session = fields[0], int(fields[3])
        if session == sid and state != "Z":
            pids.append(int(stat.parent.name))
    return sorted(pids)


def _signal_all(pids: list[int], signo: int) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signo)


def _post(url: str, body: bytes, timeout: float) -> tuple[int, bytes]:
    request = urllib.request.Request(url, data=body, method="POST",
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()
    except (OSError, urllib.error.URLError):
        return 0, b""


def _get_json(url: str, timeout: float):
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return json.loads(response.read())
    except (OSError, urllib.error.URLError, ValueError):
        return None


def wait_invocations(url: str, *, alive: Callable[[], bool], tail: Callable[[], str],
                     workers_ready: Callable[[], bool] = lambda: True,
                     timeout: float = 180.0) -> None:
    """Until POST ``url``/invocations answers 200 and ``workers_ready()``: the DLC's /ping
    says nothing about its workers.  Raises with ``tail()`` once ``alive()`` is false or
    the deadline passes (a stack in a venv, or in a container)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not alive():
            raise RuntimeError(f"the DLC stack exited:\n{tail()}")
        status, _ = _post(url + "/invocations", READY_BODY, timeout=10)
        if status == 200 and workers_ready():
            return
        time.sleep(0.5)
    raise RuntimeError(f"the DLC stack did not answer within {timeout:.0f} s:\n{tail()}")


class DlcStack:
    """One toolkit + MMS stack in its own session, its base dir and its log."""

    def __init__(self, model, env: Mapping[str, str] | None = None, *, workers: int = 1,
                 port: int | None = None, venv: Path | str = DLC_VENV,
                 inherit_settings: bool = True):
        self.venv = Path(venv)
        self.inherit_settings = inherit_settings
        self.workers = workers
        self.port, self.management_port = port or free_port(), free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.management_url = f"http://127.0.0.1:{self.management_port}"
        self.base = Path(tempfile.mkdtemp(prefix="dlc-"))
        (self.base / "tmp").mkdir()
        _place_model(model, self.base / "model")
        self.log_path = self.base / "dlc.log"
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [str(self.venv / "bin" / "python"), "-m",
             "sagemaker_huggingface_inference_toolkit.serving"],
            env=self._environment(env or {}), cwd=self.base, stdout=self._log,
            stderr=subprocess.STDOUT, start_new_session=True)

    def _environment(self, extra: Mapping[str, str]) -> dict[str, str]:
        """This process's environment without what would leak into the stack (and, with
        ``inherit_settings=False``, without its RERANK_*/SERVE_* settings: the handler
        reads them), the stack's fixed layout, then ``extra``."""
        env = {k: v for k, v in os.environ.items() if k not in _LEAKY_ENV
               and (self.inherit_settings or not k.startswith(SETTINGS_PREFIXES))}
        private = str(self.base / "tmp")
        env.update({
            "PATH": f"{self.venv / 'bin'}{os.pathsep}{env.get('PATH', '')}",
            "SAGEMAKER_BASE_DIR": str(self.base),
            "SAGEMAKER_PROGRAM": "inference.py",
            "SAGEMAKER_MODEL_SERVER_WORKERS": str(self.workers),
            "MMS_INFERENCE_ADDRESS": self.url,
            "MMS_MANAGEMENT_ADDRESS": self.management_url,
            # MMS reads MMS_* before the shared /etc properties file another stack may rewrite.
            "MMS_DEFAULT_WORKERS_PER_MODEL": str(self.workers),
            "TMPDIR": private,
            "TEMP": private,
            "LOG_LOCATION": str(self.base / "logs"),
            "METRICS_LOCATION": str(self.base / "logs"),
            "HF_HUB_OFFLINE": "1",
            "TRANSFORMERS_OFFLINE": "1",
            "TOKENIZERS_PARALLELISM": "false",
            "PYTHONUNBUFFERED": "1",
        })
        env.update(extra)
        return env

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")

    def pids(self) -> list[int]:
        return session_pids(self.proc.pid)

    def workers_ready(self) -> bool:
        described = _get_json(f"{self.management_url}/models/model", timeout=5)
        if isinstance(described, list):  # newer MMS answers a list of versions
            described = described[0] if described else None
        workers = (described or {}).get("workers") or []
        ready = [w for w in workers if str(w.get("status", "")).upper() == "READY"]
        return len(ready) >= self.workers

    def wait_ready(self, timeout: float = 180.0) -> None:
        """Until an invocation answers 200 and every worker is READY; raise with the log's
        tail if the stack dies or the deadline passes."""
        wait_invocations(self.url, alive=lambda: bool(self.pids()), tail=self._tail,
                         workers_ready=self.workers_ready, timeout=timeout)

    def stop(self, grace: float = 10.0) -> list[int]:
        """SIGTERM every process of the session, SIGKILL what is left after ``grace``
        seconds; returns the pids still alive after that (an empty list)."""
        _signal_all(self.pids(), signal.SIGTERM)
        deadline = time.monotonic() + grace
        while self.pids() and time.monotonic() < deadline:
            time.sleep(0.2)
        _signal_all(self.pids(), signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=5)
        deadline = time.monotonic() + 5
        while self.pids() and time.monotonic() < deadline:
            time.sleep(0.1)
        self._log.close()
        return self.pids()

    def cleanup(self) -> None:
        shutil.rmtree(self.base, ignore_errors=True)

    def _tail(self, chars: int = 4000) -> str:
        return self.log_text()[-chars:]


def check_prerequisites(venv: Path = DLC_VENV) -> None:
    """Raise with one readable line when the stack cannot start here."""
    if not venv_ready(venv):
        raise RuntimeError(f"{venv} is not built: run `make dlc-venv`")
    if not (shutil.which("java") or os.environ.get("JAVA_HOME")):
        raise RuntimeError("multi-model-server needs Java 17 on PATH (openjdk-17-jre-headless)")
    writable = (os.access(MMS_PROPERTIES, os.W_OK) if MMS_PROPERTIES.exists()
                else os.access(MMS_PROPERTIES.parent, os.W_OK))
    if not writable:
        raise RuntimeError(f"the toolkit writes {MMS_PROPERTIES} (a fixed path); this user"
                           " cannot write it")


@contextlib.contextmanager
def start_dlc(model_dir, env: Mapping[str, str] | None = None, *, workers: int = 1,
              port: int | None = None, ready_timeout: float = 180.0,
              venv: Path | str = DLC_VENV, inherit_settings: bool = True) -> Iterator[str]:
    """Serve ``model_dir`` (a model directory, an unpacked or packed model.tar.gz) with the
    DLC stack on 127.0.0.1 until the block ends; yields the base URL.
    ``inherit_settings=False`` drops this process's RERANK_*/SERVE_* variables."""
    check_prerequisites(Path(venv))
    stack = DlcStack(model_dir, env=env, workers=workers, port=port, venv=venv,
                     inherit_settings=inherit_settings)
    try:
        stack.wait_ready(ready_timeout)
        yield stack.url
    finally:
        left = stack.stop()
        stack.cleanup()
        if left:
            raise RuntimeError(f"DLC processes survived SIGKILL: {left}")


def _interrupt(signo, frame):
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Serve a model with the official HF DLC "
                                     "stack (toolkit + MMS) on 127.0.0.1 until Ctrl-C.")
    parser.add_argument("model", help="model directory, unpacked or packed model.tar.gz")
    parser.add_argument("--port", type=int, default=8081)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, _interrupt)  # stop the stack on SIGTERM too, not only ^C
    try:
        with start_dlc(args.model, workers=args.workers, port=args.port) as url:
            print(f"DLC stack serving {args.model} at {url}/invocations; Ctrl-C stops it",
                  flush=True)
            with contextlib.suppress(KeyboardInterrupt):
                signal.pause()
    except (RuntimeError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
