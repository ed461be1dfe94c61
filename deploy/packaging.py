"""``package``: a hub id, a model directory or an archive in; a checked model.tar.gz out.

Steps: fetch only config, tokenizer and safetensors files (hub) or take them from a
directory; convert pickle weights only when allowed; make sure tokenizer.json exists; load
the model with our engine and score one pair; write reranker.json; optionally export ONNX;
write a reproducible model.tar.gz (model at the root, code/ beside it) and print its sha256.
Also ``inspect``: list an archive and, with --check, load it with the engine.
"""

from __future__ import annotations

import fnmatch
import json
import math
import os
import re
import shutil
import tempfile
from pathlib import Path

from deploy import archive
from deploy.errors import UserError
from deploy.paths import CODE_DIR, DEFAULT_ARCHIVE, use_engine

CONFIG_FILES = ["config.json"]
TOKENIZER_FILES = ["tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
                   "added_tokens.json", "vocab.txt", "vocab.json", "merges.txt", "spm.model",
                   "sentencepiece.bpe.model", "tokenizer.model"]
SAFETENSORS = ["model.safetensors", "model-*-of-*.safetensors", "model.safetensors.index.json"]
PICKLE = ["pytorch_model.bin", "pytorch_model-*-of-*.bin", "pytorch_model.bin.index.json"]
ONNX_TOLERANCE = {"fp32": 1e-4, "int8": 5e-2}
PROBE = ("what does a reranker do?", "A cross-encoder scores a query and a document together.")
REQUIREMENTS = """\
# The SageMaker Hugging Face DLC pip-installs this file when the endpoint starts.
# Nothing is listed on purpose: the engine runs on what the DLC already ships (torch,
# transformers, tokenizers, safetensors, numpy), so the endpoint needs no PyPI access.
"""
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")


def register(subparsers) -> None:
    p = subparsers.add_parser("package", help="build a checked, reproducible model.tar.gz",
                              description=__doc__.splitlines()[0])
    p.add_argument("model", help="hub id (org/name), model directory, or a model.tar.gz")
    p.add_argument("--output", "-o", default=str(DEFAULT_ARCHIVE), help="archive path")
    p.add_argument("--revision", help="hub revision (branch, tag or commit)")
    p.add_argument("--model-id", help="name recorded in reranker.json (default: hub id or"
                   " the directory's name)")
    p.add_argument("--allow-pickle", action="store_true",
                   help="accept pytorch_model.bin weights (loaded weights-only, converted to"
                   " safetensors); refused by default")
    p.add_argument("--onnx", choices=["fp32", "int8"], help="also export an ONNX model")
    p.add_argument("--onnx-tolerance", type=float,
                   help="largest score difference from torch the export may show")
    p.add_argument("--no-check", dest="check", action="store_false",
                   help="skip loading the model with the engine (not recommended)")
    p.set_defaults(func=run)

    i = subparsers.add_parser("inspect", help="list a model.tar.gz; --check loads it")
    i.add_argument("archive", nargs="?", default=str(DEFAULT_ARCHIVE))
    i.add_argument("--check", action="store_true", help="extract safely and score one pair")
    i.set_defaults(func=run_inspect)


def run(args) -> int:
    out = Path(args.output)
    exporter = onnx_exporter() if args.onnx else None  # fail before any work
    with tempfile.TemporaryDirectory(prefix="reranker-package-") as tmp:
        tmp = Path(tmp)
        source, info = resolve_source(args.model, args, tmp / "source")
        staging = tmp / "model"
        stage(source, staging, allow_pickle=args.allow_pickle)
        config = check_cross_encoder(staging)
        engine_info = verify(staging) if args.check else {}
        onnx_report = export_onnx(exporter, staging, args) if exporter else None
        manifest = build_manifest(info, config, engine_info, onnx_report, args)
        (staging / archive.MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True)
                                                + "\n")
        code = tmp / "code"
        files = {**archive.collect(staging), **code_files(code, onnx=bool(args.onnx))}
        sha = write_with_progress(out, files)
    report(out, sha, manifest, len(files))
    return 0


def resolve_source(model: str, args, workdir: Path) -> tuple[Path, dict]:
    """The directory to package from, and where it came from."""
    path = Path(model).expanduser()
    if path.is_dir():
        return path, {"model_id": args.model_id or _recorded_id(path) or path.resolve().name,
                      "source": "local"}
    if path.is_file():
        if not path.name.endswith((".tar.gz", ".tgz", ".tar")):
            raise UserError(f"{model} is a file; pass a model directory, a hub id or a .tar.gz")
        archive.safe_extract(path, workdir)
        # Repackaging keeps the recorded origin, so the same archive in gives the same out.
        recorded = _recorded(workdir)
        info = {k: recorded[k] for k in ("model_id", "source", "revision") if k in recorded}
        info.setdefault("model_id", path.name.split(".")[0])
        info.setdefault("source", "archive")
        if args.model_id:
            info["model_id"] = args.model_id
        return workdir, info
    if not _HUB_ID.match(model) or model.startswith((".", "~")) or model.count("/") > 1:
        raise UserError(f"{model}: no such model directory")
    path = download(model, args.revision, args.allow_pickle)
    return path, {"model_id": args.model_id or model, "source": "hub", "revision": path.name}


def download(repo_id: str, revision: str | None, allow_pickle: bool) -> Path:
    """Only the files serving needs, with huggingface_hub's progress bars.

    Returns the snapshot directory, whose name is the commit it resolved to.
    """
    from huggingface_hub import constants, snapshot_download

    offline_hint = (f"{repo_id} looks like a hub id, but the hub cannot be reached"
                    " ({why}); download the model elsewhere and pass its local directory"
                    " (MODEL=path/to/model)")
    if constants.is_offline_mode() or os.environ.get("HF_HUB_OFFLINE", "") in ("1", "true"):
        raise UserError(offline_hint.format(why="HF_HUB_OFFLINE is set"))
    patterns = CONFIG_FILES + TOKENIZER_FILES + SAFETENSORS
    try:
        path = Path(snapshot_download(repo_id, revision=revision, allow_patterns=patterns,
                                      etag_timeout=10))
        if not _present(path, SAFETENSORS) and allow_pickle:
            path = Path(snapshot_download(repo_id, revision=revision, allow_patterns=PICKLE))
    except Exception as exc:  # huggingface_hub and httpx raise many kinds; one line each
        name = type(exc).__name__
        if name in ("RepositoryNotFoundError", "GatedRepoError", "RevisionNotFoundError"):
            raise UserError(f"{repo_id}: {name} ({_first_line(exc)})") from None
        raise UserError(offline_hint.format(why=f"{name}: {_first_line(exc)}")) from None
    return path


def stage(source: Path, staging: Path, *, allow_pickle: bool) -> None:
    """Copy the files serving needs into ``staging`` (hard links where possible)."""
    staging.mkdir(parents=True)
    if not (source / "config.json").is_file():
        raise UserError(f"{source} has no config.json: not a transformers model directory")
    for name in _matching(source, CONFIG_FILES + TOKENIZER_FILES + SAFETENSORS):
        _link_or_copy(source / name, staging / name)
    if not _present(staging, SAFETENSORS):
        if not _present(source, PICKLE):
            raise UserError(f"{source} has no weights: expected model.safetensors (or"
                            " pytorch_model.bin with --allow-pickle)")
        if not allow_pickle:
            raise UserError(f"{source} has only pickle weights (pytorch_model.bin); pass"
                            " --allow-pickle to load them weights-only and convert them to"
                            " safetensors")
        convert_pickle(source, staging)
    ensure_fast_tokenizer(staging)


def convert_pickle(source: Path, staging: Path) -> None:
    """pytorch_model.bin -> model.safetensors, loading with torch's weights_only unpickler."""
    from transformers import AutoModelForSequenceClassification

    with tempfile.TemporaryDirectory() as tmp:
        try:
            model = AutoModelForSequenceClassification.from_pretrained(
                source, use_safetensors=False, trust_remote_code=False)
            model.save_pretrained(tmp, safe_serialization=True)
        except Exception as exc:
            raise UserError(f"cannot convert {source}'s pickle weights: {_first_line(exc)}"
                            ) from None
        for name in _matching(Path(tmp), SAFETENSORS):
            shutil.copyfile(Path(tmp) / name, staging / name)


def ensure_fast_tokenizer(staging: Path) -> None:
    """The engine needs tokenizer.json; write it from slow tokenizer files when missing."""
    if (staging / "tokenizer.json").is_file():
        return
    if not _present(staging, TOKENIZER_FILES):
        raise UserError(f"no tokenizer files in the model ({', '.join(TOKENIZER_FILES[:6])},"
                        " ...): copy the tokenizer next to config.json")
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(staging, use_fast=True, trust_remote_code=False)
    except Exception as exc:
        raise UserError(f"cannot load the tokenizer: {_first_line(exc)}") from None
    if not getattr(tokenizer, "is_fast", False):
        raise UserError("the tokenizer has no fast (tokenizer.json) form; the engine needs one")
    with tempfile.TemporaryDirectory() as tmp:
        tokenizer.save_pretrained(tmp)
        shutil.copyfile(Path(tmp) / "tokenizer.json", staging / "tokenizer.json")


def check_cross_encoder(staging: Path) -> dict:
    """A sequence-classification model with 1 or 2 labels, or a clear refusal."""
    try:
        config = json.loads((staging / "config.json").read_text())
    except (OSError, ValueError) as exc:
        raise UserError(f"config.json is not readable JSON: {exc}") from None
    architectures = config.get("architectures") or []
    if architectures and not any(a.endswith("ForSequenceClassification") for a in architectures):
        raise UserError(f"not a cross-encoder: config.json names {', '.join(architectures)};"
                        " a reranker is a *ForSequenceClassification model")
    labels = len(config.get("id2label") or {}) or int(config.get("num_labels", 1))
    if labels not in (1, 2):
        raise UserError(f"not a cross-encoder: the model has {labels} output labels (a"
                        " reranker has 1, or 2 for some ms-marco models)")
    return config


def verify(model_dir: Path, backend: str = "torch") -> dict:
    """Load with our engine and score one pair: the archive is known to serve."""
    use_engine()
    from transformers.utils import logging as hf_logging

    from reranker.engine import Reranker
    from reranker.settings import Settings

    hf_logging.disable_progress_bar()  # a weight-loading bar per check is noise
    try:
        engine = Reranker.from_dir(str(model_dir), Settings(warmup=False, backend=backend))
    except Exception as exc:
        raise UserError(f"the model does not load with the engine: {_first_line(exc)}") from None
    try:
        score = engine.score(PROBE[0], [PROBE[1]])[0]
        info = engine.describe()
    finally:
        engine.close()
    if not math.isfinite(score):
        raise UserError(f"the model scored a test pair as {score}: the weights are broken")
    return {"max_length": info["max_length"], "num_labels": info["num_labels"]}


def onnx_exporter():
    """deploy.onnx_export.export_onnx, imported only when asked for."""
    try:
        from deploy.onnx_export import export_onnx
    except ModuleNotFoundError as exc:
        if exc.name != "deploy.onnx_export":
            raise UserError(f"ONNX export needs {exc.name}: {exc}") from None
        raise UserError("ONNX export is not available in this checkout"
                        " (deploy/onnx_export.py is missing)") from None
    return export_onnx


def export_onnx(export, staging: Path, args) -> dict:
    tolerance = args.onnx_tolerance or ONNX_TOLERANCE[args.onnx]
    report = export(staging, staging, quantize=args.onnx == "int8", tolerance=tolerance)
    if args.check:
        verify(staging, backend="onnx")
    return report


def build_manifest(info: dict, config: dict, engine_info: dict, onnx_report, args) -> dict:
    import safetensors
    import tokenizers
    import torch
    import transformers

    use_engine()
    import reranker

    manifest = {
        **info,
        "architecture": (config.get("architectures") or [None])[0],
        "model_type": config.get("model_type"),
        "num_labels": engine_info.get("num_labels"),
        "max_length": engine_info.get("max_length"),
        "versions": {"reranker": reranker.__version__, "transformers": transformers.__version__,
                     "tokenizers": tokenizers.__version__, "torch": torch.__version__,
                     "safetensors": safetensors.__version__},
    }
    if onnx_report is not None:
        manifest["onnx"] = {"variant": args.onnx, **_stable(onnx_report)}
    return {k: v for k, v in manifest.items() if v is not None}


def code_files(workdir: Path, onnx: bool) -> dict[str, Path]:
    """code/inference.py, code/reranker/ and code/requirements.txt."""
    files = {"code/inference.py": CODE_DIR / "inference.py"}
    files.update(archive.collect(CODE_DIR / "reranker", prefix="code/reranker"))
    workdir.mkdir(parents=True, exist_ok=True)
    requirements = REQUIREMENTS
    if onnx:
        from importlib.metadata import version

        requirements += ("# The ONNX model needs ONNX Runtime, which the DLC lacks (this needs"
                         " PyPI access at start-up;\n# our own image has it built in).\n"
                         f"onnxruntime=={version('onnxruntime')}\n")
    (workdir / "requirements.txt").write_text(requirements)
    files["code/requirements.txt"] = workdir / "requirements.txt"
    return files


def write_with_progress(out: Path, files: dict[str, Path]) -> str:
    from rich.progress import BarColumn, DownloadColumn, Progress, TimeRemainingColumn

    total = sum(p.stat().st_size for p in files.values())
    with Progress("[progress.description]{task.description}", BarColumn(), DownloadColumn(),
                  TimeRemainingColumn(), transient=True) as progress:
        task = progress.add_task(f"writing {out.name}", total=total)
        return archive.write(out, files, lambda n: progress.advance(task, n))


def report(out: Path, sha: str, manifest: dict, count: int) -> None:
    """Plain aligned lines: readable, and easy to grep from scripts."""
    rows = (("path", str(out)), ("size", f"{_human(out.stat().st_size)}"
                                         f" ({out.stat().st_size} bytes)"),
            ("sha256", sha), ("model", manifest.get("model_id")), ("files", count),
            ("max_length", manifest.get("max_length")))
    for key, value in rows:
        print(f"{key:<11} {value}")


def run_inspect(args) -> int:
    path = Path(args.archive)
    if not path.is_file():
        raise UserError(f"{path} does not exist (run `make package MODEL=...` first)")
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{path} ({_human(path.stat().st_size)})")
    table.add_column("file")
    table.add_column("size", justify="right")
    try:
        for name, size in archive.list_names(path):
            table.add_row(name, _human(size))
    except (OSError, EOFError, archive.tarfile.TarError) as exc:
        raise UserError(f"{path} is not a readable .tar.gz: {exc}") from None
    console = Console()
    console.print(table)
    console.print(f"sha256 {archive.sha256_file(path)}")
    if args.check:
        with tempfile.TemporaryDirectory(prefix="reranker-inspect-") as tmp:
            archive.safe_extract(path, Path(tmp))
            info = verify(Path(tmp), backend="auto")
        console.print(f"loads and scores: max_length {info['max_length']}")
    return 0


def _matching(directory: Path, patterns: list[str]) -> list[str]:
    names = sorted(p.name for p in directory.iterdir() if p.is_file())
    return [n for n in names if any(fnmatch.fnmatchcase(n, pat) for pat in patterns)]


def _present(directory: Path, patterns: list[str]) -> bool:
    return directory.is_dir() and bool(_matching(directory, patterns))


def _link_or_copy(src: Path, dst: Path) -> None:
    try:
        os.link(src.resolve(), dst)  # hub snapshots are symlinks into the blob cache
    except OSError:
        shutil.copyfile(src, dst)


def _recorded(directory: Path) -> dict:
    try:
        data = json.loads((directory / archive.MANIFEST).read_text())
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def _recorded_id(directory: Path) -> str | None:
    return _recorded(directory).get("model_id")


def _stable(report: dict) -> dict:
    """The export report's facts, without timings that would change the archive's hash."""
    return {k: v for k, v in sorted(report.items())
            if isinstance(v, (str, int, float, bool)) and "time" not in k and "second" not in k}


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _human(size: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return str(size)
