"""One frozen description of a model directory, computed in one place.

The engine, the ONNX export, packaging and the Vespa package all need the same facts
about a model directory: how many tokens the model can take, how many labels it scores,
what its ONNX files are called, which family it belongs to and which weights it ships.
They read them from :func:`read`; nothing else parses config.json for these facts.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from .backends.base import ModelLoadError

ONNX_DIR = "onnx"
ONNX_FILES = MappingProxyType({"fp32": "model.onnx", "int8": "model_int8.onnx"})
# What transformers assumes when config.json names neither id2label nor num_labels.
DEFAULT_NUM_LABELS = 2
# Used when neither config.json nor tokenizer_config.json states a limit.
DEFAULT_MAX_LENGTH = 512
# RoBERTa-style position embeddings reserve two positions for the padding offset (their
# position ids start after the padding index): 514 positions hold 512 tokens.
_OFFSET_FAMILIES = ("xlm-roberta", "roberta", "camembert", "xlm-roberta-xl", "mpnet",
                    "data2vec-text", "roberta-prelayernorm", "xmod")
# transformers writes 1e30 for "no limit" into tokenizer_config.json.
_NO_LIMIT = 1_000_000


@dataclasses.dataclass(frozen=True)
class ModelDir:
    path: str
    config: Mapping[str, Any]
    model_type: str
    num_labels: int
    # Tokens per (query, document) sequence the model supports: positions, tokenizer cap.
    max_length: int
    vocab_size: int | None
    tokenizer_json: bool
    safetensors: bool
    pickle: bool
    # ONNX file names present in onnx/, sorted.
    onnx: tuple[str, ...]

    @property
    def family(self) -> str:
        """The pair template: "roberta" (``<s> q </s></s> d </s>``) or "bert"
        (``[CLS] q [SEP] d [SEP]``)."""
        return "roberta" if self.model_type in _OFFSET_FAMILIES else "bert"

    @property
    def segments(self) -> bool:
        """The model embeds which text of the pair a token belongs to (BERT's segment ids,
        ``type_vocab_size`` above 1): it was trained with them, whatever a generic
        tokenizer's class says in a given transformers version."""
        return takes_segments(self.config)

    def onnx_path(self, variant: str) -> str:
        """Where the ``fp32``/``int8`` ONNX file is (or would be) in this directory."""
        return os.path.join(self.path, ONNX_DIR, ONNX_FILES[variant])

    def usable_length(self, cap: int) -> int:
        """The tokens per sequence the engine uses: the model's limit, capped by a setting."""
        return min(cap, self.max_length)


def read(path: str | os.PathLike) -> ModelDir:
    """Describe ``path``; ModelLoadError when it is not a transformers model directory."""
    path = os.fspath(path)
    if not os.path.isdir(path):
        raise ModelLoadError(f"model directory {path!r} does not exist")
    config = read_json(os.path.join(path, "config.json"), required=True,
                       missing=f"{path!r} has no config.json: not a transformers model")
    wrong = config_problem(config)
    if wrong:
        raise ModelLoadError(f"{path}/config.json: {wrong}")
    tokenizer_config = read_json(os.path.join(path, "tokenizer_config.json"), required=False)
    has = lambda *names: any(os.path.isfile(os.path.join(path, n)) for n in names)  # noqa: E731
    folder = os.path.join(path, ONNX_DIR)
    onnx = tuple(sorted(f for f in os.listdir(folder) if f.endswith(".onnx"))) \
        if os.path.isdir(folder) else ()
    return ModelDir(
        path=path,
        config=MappingProxyType(config),
        model_type=str(config.get("model_type") or ""),
        num_labels=num_labels(config),
        max_length=max_length(config, tokenizer_config.get("model_max_length")),
        vocab_size=config.get("vocab_size"),
        tokenizer_json=has("tokenizer.json"),
        safetensors=has("model.safetensors", "model.safetensors.index.json"),
        pickle=has("pytorch_model.bin", "pytorch_model.bin.index.json"),
        onnx=onnx,
    )


# The config.json fields the engine reads, and the JSON types transformers writes them as.
_CONFIG_TYPES = {"model_type": str, "architectures": list, "id2label": dict, "num_labels": int,
                 "max_position_embeddings": int, "type_vocab_size": int, "vocab_size": int}


_KIND_WORDS = {str: "a string", list: "a list", dict: "an object", int: "an integer"}


def config_problem(config: Mapping) -> str | None:
    """What is wrong with a config.json's fields the engine reads, in words; None if nothing
    (a hand-edited file would otherwise fail deep inside, as a traceback)."""
    for field, kind in _CONFIG_TYPES.items():
        value = config.get(field)
        if value is not None and (not isinstance(value, kind) or isinstance(value, bool)):
            return f"{field} must be {_KIND_WORDS[kind]}"
    if not all(isinstance(a, str) for a in config.get("architectures") or []):
        return "architectures must be a list of class names"
    return None


def takes_segments(config: Mapping) -> bool:
    """config.json gives the model segment embeddings (``type_vocab_size`` above 1)."""
    size = config.get("type_vocab_size")
    return isinstance(size, int) and not isinstance(size, bool) and size > 1


def num_labels(config: Mapping) -> int:
    """What transformers would build: id2label's size, else num_labels, else its default."""
    if config.get("id2label"):
        return len(config["id2label"])
    return int(config.get("num_labels", DEFAULT_NUM_LABELS))


def max_length(config: Mapping, tokenizer_limit: Any = None) -> int:
    """Positions the model supports (RoBERTa-style models reserve two), capped by the
    tokenizer's model_max_length; the default when neither states a limit."""
    limits = []
    positions = config.get("max_position_embeddings")
    if positions:
        limits.append(int(positions) - (2 if config.get("model_type") in _OFFSET_FAMILIES else 0))
    if isinstance(tokenizer_limit, (int, float)) and 0 < tokenizer_limit < _NO_LIMIT:
        limits.append(int(tokenizer_limit))
    return min(limits) if limits else DEFAULT_MAX_LENGTH


def read_json(path: str, *, required: bool, missing: str = "") -> dict:
    if not os.path.isfile(path):
        if required:
            raise ModelLoadError(missing or f"{path} does not exist")
        return {}
    try:
        with open(path) as fh:
            data = json.load(fh)
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"{path} cannot be read: {exc}") from None
    if not isinstance(data, dict):
        raise ModelLoadError(f"{path} is not a JSON object")
    return data
