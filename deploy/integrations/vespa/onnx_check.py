"""A user's own ONNX file (the mixedbread model of Vespa's cross-encoder notebook ships
``onnx/model_quantized.onnx``), checked against torch before the package ships it.

Both sides run through the engine itself (its PairEncoder, batcher and scoring) on the
export's probe set: the torch backend on the model's weights, the ONNX backend on the
user's file, placed in a view of the model directory.  The largest relevance-score
difference (0..1, what the endpoint reports), the worst per-query Spearman rho and top-10
overlap are reported; above ``tolerance`` the file is refused.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from deploy.errors import UserError
from deploy.package.onnx_export import (
    PROBE_QUERIES,
    TOP_K,
    probe_documents,
    spearman_rho,
    top_k_overlap,
)
from reranker import model_dir as model_facts

DEFAULT_TOLERANCE = 0.05  # what an int8 export of ours may deviate by


def check_onnx_file(model_dir: Path, onnx_file: Path, tolerance: float) -> dict:
    if not onnx_file.is_file():
        raise UserError(f"--onnx-file {onnx_file}: no such file")
    if not tolerance > 0:
        raise UserError(f"--onnx-tolerance must be a positive number, not {tolerance}")
    docs = probe_documents()
    with tempfile.TemporaryDirectory(prefix="vespa-onnx-check-") as tmp:
        view = _model_view(model_dir, onnx_file, Path(tmp) / model_dir.name)
        reference = _scores(view, "torch", "auto", docs)
        got = _scores(view, "onnx", onnx_file.name, docs)
    report = {
        "onnx_file": str(onnx_file),
        "probe_pairs": len(PROBE_QUERIES) * len(docs),
        "max_abs_score_diff": round(max(float(np.abs(r - g).max())
                                        for r, g in zip(reference, got)), 6),
        "min_spearman": round(min(spearman_rho(r, g) for r, g in zip(reference, got)), 6),
        f"min_top{TOP_K}_overlap": min(top_k_overlap(r, g, TOP_K)
                                       for r, g in zip(reference, got)),
        "tolerance": tolerance,
    }
    if report["max_abs_score_diff"] > tolerance:
        raise UserError(f"{onnx_file} scores differ from the torch model by up to"
                        f" {report['max_abs_score_diff']:.3g} (limit {tolerance:g},"
                        " --onnx-tolerance): not shipping it")
    return report


def _model_view(model_dir: Path, onnx_file: Path, view: Path) -> Path:
    """The model directory with only the user's file in onnx/ (links, nothing copied)."""
    (view / model_facts.ONNX_DIR).mkdir(parents=True)
    for item in model_dir.iterdir():
        if item.name != model_facts.ONNX_DIR:
            (view / item.name).symlink_to(item.resolve())
    (view / model_facts.ONNX_DIR / onnx_file.name).symlink_to(onnx_file.resolve())
    side = onnx_file.with_name(onnx_file.name + ".data")  # weights over 2 GB live beside it
    if side.is_file():
        (view / model_facts.ONNX_DIR / side.name).symlink_to(side.resolve())
    return view


def _scores(view: Path, backend: str, onnx_model: str, docs: list[str]) -> list[np.ndarray]:
    from reranker.backends.base import ModelLoadError
    from reranker.engine import Reranker
    from reranker.settings import Settings

    settings = Settings(backend=backend, onnx_model=onnx_model, device="cpu", dtype="float32",
                        warmup=False)
    try:
        engine = Reranker.from_dir(str(view), settings)
    except ModelLoadError as exc:
        raise UserError(f"cannot load the model with the {backend} backend: {exc}") from None
    try:
        return [np.asarray(engine.score(q, docs)) for q in PROBE_QUERIES]
    finally:
        engine.close()
