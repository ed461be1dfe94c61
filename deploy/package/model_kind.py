"""Is this model an LLM reranker? One answer for the whole deploy tool.

The engine decides it (``reranker.profiles.is_llm``: architectures ending in ForCausalLM,
or Qwen3ForSequenceClassification, the converted Qwen3-Reranker); the deploy tool asks
here, so that packaging, ONNX export, the Vespa package and the deploy defaults never
disagree.  An LLM reranker judges relevance from next-token logits after a model-specific
prompt: it needs the engine's profile, a GPU to be fast, and transformers new enough for
its family.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

from deploy.errors import UserError
from reranker.model_dir import config_problem
from reranker.profiles import is_llm

__all__ = ["is_llm", "read_config", "refuse_llm", "architecture"]


def read_config(model_dir: Path) -> dict:
    try:
        data = json.loads((Path(model_dir) / "config.json").read_text())
    except (OSError, ValueError) as exc:
        raise UserError(f"{model_dir}/config.json is not readable JSON: {exc}") from None
    if not isinstance(data, dict):
        raise UserError(f"{model_dir}/config.json is not a JSON object")
    wrong = config_problem(data)
    if wrong:
        raise UserError(f"{model_dir}/config.json: {wrong}")
    return data


def architecture(config: Mapping) -> str:
    return (config.get("architectures") or [config.get("model_type") or "model"])[0]


def refuse_llm(config: Mapping, what: str, instead: str) -> None:
    """One line for a step that only cross-encoders take (ONNX export, Vespa)."""
    if is_llm(config):
        raise UserError(f"{what} takes cross-encoders only: {architecture(config)} is an LLM"
                        f" reranker (judged by next-token logits after a prompt); {instead}")
