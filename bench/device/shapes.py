"""The model shapes the GPU check measures, built from their configs with random weights.

Compute depends on the shape and the token counts, not on the weight values, so each
model is its real config (checked against the published ones) with random weights, saved
as a normal model directory on the family's real tokenizer (bench/device/assets.py).
``quick`` keeps the architecture and tokenizer but shrinks layers and widths (the CPU dry
run).  Scores of random weights mean nothing: parity with the plain forward pass and rank
agreement between precisions are what they show.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

from . import assets

QUICK = {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2,
         "intermediate_size": 64}


@dataclasses.dataclass(frozen=True)
class Shape:
    name: str
    title: str
    tokenizer: str  # an assets.TOKENIZERS name
    config_class: str  # transformers class
    model_class: str
    config: dict
    quick: dict = dataclasses.field(default_factory=lambda: dict(QUICK))
    causal_lm: bool = False


SHAPES = {
    # cross-encoder/ms-marco-MiniLM-L-6-v2
    "minilm": Shape(
        "minilm", "MiniLM-L6 (ms-marco-MiniLM-L-6-v2 shape)", "bert-uncased", "BertConfig",
        "BertForSequenceClassification",
        dict(vocab_size=30522, hidden_size=384, num_hidden_layers=6, num_attention_heads=12,
             intermediate_size=1536, max_position_embeddings=512, type_vocab_size=2,
             pad_token_id=0, num_labels=1)),
    # BAAI/bge-reranker-large
    "bge-large": Shape(
        "bge-large", "bge-reranker-large shape (XLM-R 24 x 1024)", "xlm-r",
        "XLMRobertaConfig", "XLMRobertaForSequenceClassification",
        dict(vocab_size=250002, hidden_size=1024, num_hidden_layers=24, num_attention_heads=16,
             intermediate_size=4096, max_position_embeddings=514, type_vocab_size=1,
             pad_token_id=1, bos_token_id=0, eos_token_id=2, layer_norm_eps=1e-5,
             num_labels=1)),
    # Qwen/Qwen3-Reranker-0.6B: a causal LM scored from the yes/no logits.
    "qwen3-0.6b": Shape(
        "qwen3-0.6b", "Qwen3-Reranker-0.6B shape (Qwen3 28 x 1024)", "qwen", "Qwen3Config",
        "Qwen3ForCausalLM",
        dict(vocab_size=151669, hidden_size=1024, num_hidden_layers=28,
             num_attention_heads=16, num_key_value_heads=8, head_dim=128,
             intermediate_size=3072, max_position_embeddings=40960, rope_theta=1000000.0,
             rms_norm_eps=1e-6, tie_word_embeddings=True, bos_token_id=151643,
             eos_token_id=151645, pad_token_id=151643),
        quick=dict(QUICK, num_key_value_heads=1, head_dim=16), causal_lm=True),
}


def build(name: str, out: Path, assets_dir: Path, *, quick: bool, device: str = "cpu",
          seed: int = 0) -> Path:
    """A model directory for ``name`` (kept when already built with the same config)."""
    import torch
    import transformers

    shape = SHAPES[name]
    config_values = dict(shape.config, **(shape.quick if quick else {}))
    marker = out / "shape.json"
    wanted = {"shape": name, "quick": quick, "config": config_values}
    if marker.is_file() and json.loads(marker.read_text()) == wanted:
        return out
    shutil.rmtree(out, ignore_errors=True)
    assets.unpack(assets_dir / shape.tokenizer, out)
    config = getattr(transformers, shape.config_class)(
        architectures=[shape.model_class], **config_values)
    torch.manual_seed(seed)
    # Initialised on the device (seconds instead of a minute for 0.6B weights on a CPU).
    with torch.device(device):
        model = getattr(transformers, shape.model_class)(config)
    model.save_pretrained(out, safe_serialization=True)
    del model
    marker.write_text(json.dumps(wanted))
    return out


def parameters(name: str, quick: bool = False) -> dict:
    shape = SHAPES[name]
    return dict(shape.config, **(shape.quick if quick else {}))
