"""Assembling model.tar.gz: the manifest, code/ beside the model, a reproducible archive."""

from __future__ import annotations

from pathlib import Path

from deploy.package import archive
from deploy.paths import CODE_DIR

REQUIREMENTS = """\
# The SageMaker Hugging Face DLC pip-installs this file when the endpoint starts.
# Nothing is listed on purpose: the engine runs on what the DLC already ships (torch,
# transformers, tokenizers, safetensors, numpy), so the endpoint needs no PyPI access.
"""


def build_manifest(info: dict, config: dict, engine_info: dict, onnx_report, args) -> dict:
    import safetensors
    import tokenizers
    import torch
    import transformers

    import reranker

    manifest = {
        **info,
        "architecture": (config.get("architectures") or [None])[0],
        "model_type": config.get("model_type"),
        "num_labels": engine_info.get("num_labels"),
        "max_length": engine_info.get("max_length"),
        "prompt": engine_info.get("prompt"),
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
        return archive.write(out, files, lambda n: progress.advance(task, n),
                             level=archive.level_for(total))


def report(out: Path, sha: str, manifest: dict, count: int) -> None:
    """Plain aligned lines: readable, and easy to grep from scripts."""
    rows = (("path", str(out)), ("size", f"{human_size(out.stat().st_size)}"
                                         f" ({out.stat().st_size} bytes)"),
            ("sha256", sha), ("files", count), *manifest_rows(manifest))
    for key, value in rows:
        print(f"{key:<11} {value}")


def manifest_rows(manifest: dict) -> list[tuple[str, object]]:
    """What reranker.json says that a user checks before deploying, as (key, value) rows."""
    rows = (("model", manifest.get("model_id")), ("revision", manifest.get("revision")),
            ("max_length", manifest.get("max_length")), ("prompt", manifest.get("prompt")),
            ("onnx", onnx_summary(manifest)))
    return [(key, value) for key, value in rows if value is not None]


def onnx_summary(manifest: dict) -> str | None:
    """How far the exported ONNX model's scores are from torch's, as the export measured."""
    onnx = manifest.get("onnx")
    if not onnx:
        return None
    if not isinstance(onnx, dict):  # a manifest `package` did not write
        return str(onnx)
    variant = onnx.get("variant", "fp32")
    text = (f"{variant} {onnx.get('file')}: scores within"
            f" {_number(onnx.get(f'{variant}_max_abs_score_diff'), '.2g')} of torch"
            f" (tolerance {onnx.get('tolerance')})")
    if variant == "int8":
        text += (f", Spearman >= {_number(onnx.get('int8_min_spearman'), '.3f')}, top-10"
                 f" overlap >= {_number(onnx.get('int8_min_top10_overlap'), '.2f')}")
    return text


def _number(value, spec: str) -> str:
    """``value`` formatted where it is a number; "?" where a hand-made manifest lacks it."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return format(value, spec)
    return "?"


def _stable(report: dict) -> dict:
    """The export report's facts, without timings that would change the archive's hash."""
    return {k: v for k, v in sorted(report.items())
            if isinstance(v, (str, int, float, bool)) and "time" not in k and "second" not in k}


def human_size(size: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return str(size)
