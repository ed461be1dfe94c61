"""The benchmark's models, built offline once into a cache directory (no hub here).

* ``minilm``: exactly cross-encoder/ms-marco-MiniLM-L-6-v2's architecture (6 x 384,
  BERT uncased vocabulary) with a pretrained body and a random 1-label head
  (demo_models.encoders.minilm_cross_encoder).
* ``bge-large``: bge-reranker-large's shape (XLM-R, 24 x 1024, 250k vocabulary) with
  random weights (demo_models.encoders.bge_large_shape): same compute, meaningless scores.
"""

from __future__ import annotations

import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

MODELS = {
    "minilm": ("minilm-l6", "minilm_cross_encoder",
               "MiniLM-L6 (ms-marco-MiniLM-L-6-v2 architecture)"),
    "bge-large": ("bge-large-shape", "bge_large_shape",
                  "bge-reranker-large shape (XLM-R 24x1024, random weights)"),
    # The same body with a head trained on synthetic relevance (bench/trained_head.py):
    # scores spread like a trained reranker's, so int8/bf16 rank agreement means something.
    "minilm-trained": ("minilm-l6-trained-head", "trained_head",
                       "MiniLM-L6 with a head trained on synthetic relevance"),
}


def build(name: str, cache: Path) -> Path:
    """The model directory for ``name``, built on first use (a finished build is kept)."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; choose from {sorted(MODELS)}")
    dirname, builder, _ = MODELS[name]
    out = cache / "models" / dirname
    if (out / "config.json").is_file() and (out / "tokenizer.json").is_file():
        return out
    if builder == "trained_head":
        from .trained_head import train_head

        return train_head(build("minilm", cache), out)
    from demo_models import encoders

    partial = out.with_name(out.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    getattr(encoders, builder)(partial)
    shutil.rmtree(out, ignore_errors=True)
    partial.rename(out)
    return out


def title(name: str) -> str:
    return MODELS[name][2] if name in MODELS else name
