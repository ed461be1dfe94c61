"""What a directory saved by sentence-transformers' CrossEncoder says about scoring its LLM.

sentence-transformers 6 saves a causal-LM reranker as two modules (modules.json): a
``Transformer`` that renders each (query, document) pair with the tokenizer's chat template
(``query`` and ``document`` messages, a system message first when a default prompt is set,
``processing_kwargs["chat_template"]`` passed to ``apply_chat_template``) and a
``LogitScore`` that reads the last position's logits: ``logit[true] - logit[false]``, or
``logit[true]`` alone without a false token.  ``CrossEncoder(directory).predict`` is then
the directory's own reference, and its token ids, not "yes"/"no", are what it judges.

Only that layout is read.  A saved configuration the engine would not reproduce exactly
(another module, a query expansion, other processing settings) is refused here, naming the
file, rather than scored some other way.  Reading JSON needs no sentence-transformers.
"""

from __future__ import annotations

import dataclasses
import json
import os

from .backends.base import ModelLoadError

MODULES_FILE = "modules.json"
TRANSFORMER_CONFIG = "sentence_bert_config.json"
MODEL_CONFIG = "config_sentence_transformers.json"
# The module classes, by the names sentence-transformers saves (older releases' aliases too).
TRANSFORMER_TYPES = ("sentence_transformers.base.modules.transformer.Transformer",
                     "sentence_transformers.models.Transformer")
LOGIT_SCORE_TYPES = ("sentence_transformers.cross_encoder.modules.logit_score.LogitScore",
                     "sentence_transformers.cross_encoder.modules.LogitScore")
# Transformer settings that change what the model sees when they are set.
UNREPRODUCED = ("query_expansion", "query_length", "document_length")
# Tokenizer arguments that only pad or bound lengths: padding changes no score, and a
# max_length caps the prompt as the engine's own limit does (only the document is cut).
LENGTH_ONLY = {"max_length", "truncation", "padding", "padding_side", "pad_to_multiple_of",
               "return_tensors"}


@dataclasses.dataclass(frozen=True)
class SavedScoring:
    """How the saved CrossEncoder prompts and scores a pair."""

    true_id: int
    false_id: int | None
    # The default prompt, sent as a system message before the query (None: no prompt).
    system_prompt: str | None
    # Keyword arguments the Transformer passes to apply_chat_template.
    chat_kwargs: dict
    # "flat" (a message's content is its text), "structured" (typed parts) or None (unsaid).
    message_format: str | None
    # The tokens a prompt is cut to (only its document is cut, its template's end kept).
    max_length: int | None
    source: str  # the files it was read from, for messages and the profile's reference


def read(model_dir: str) -> SavedScoring | None:
    """The directory's saved LLM-reranker scoring; None when sentence-transformers saved no
    causal-LM CrossEncoder here (no modules.json, or a sequence-classification model)."""
    modules = _load(model_dir, MODULES_FILE)
    if modules is None:
        return None
    if not isinstance(modules, list) or not all(isinstance(m, dict) for m in modules):
        raise ModelLoadError(f"{model_dir}/{MODULES_FILE} is not a list of modules")
    types = [m.get("type") for m in modules]
    if not types or types[0] not in TRANSFORMER_TYPES:
        return None
    transformer = _load(model_dir, os.path.join(modules[0].get("path") or "",
                                                TRANSFORMER_CONFIG)) or {}
    task = transformer.get("transformer_task")
    if task == "sequence-classification":
        _check_classifier(model_dir, types)
    if task != "text-generation":
        return None
    if len(types) != 2 or types[1] not in LOGIT_SCORE_TYPES:
        raise ModelLoadError(
            f"{model_dir}/{MODULES_FILE}: a causal LM saved with the modules {types}; the engine"
            " reproduces a Transformer followed by a LogitScore only")
    return _scoring(model_dir, modules[1], transformer)


def _scoring(model_dir: str, logit_module: dict, transformer: dict) -> SavedScoring:
    where = os.path.join(logit_module.get("path") or "", "config.json")
    score = _load(model_dir, where)
    if not isinstance(score, dict) or not isinstance(score.get("true_token_id"), int):
        raise ModelLoadError(f"{model_dir}/{where}: the LogitScore module names no"
                             " true_token_id")
    false_id = score.get("false_token_id")
    if false_id is not None and not isinstance(false_id, int):
        raise ModelLoadError(f"{model_dir}/{where}: false_token_id must be a token id or null")
    if score.get("module_input_name", "causal_logits") != transformer.get(
            "module_output_name", "causal_logits"):
        raise ModelLoadError(f"{model_dir}/{where}: LogitScore reads"
                             f" {score.get('module_input_name')!r}, which the Transformer does"
                             " not write")
    return SavedScoring(true_id=score["true_token_id"], false_id=false_id,
                        system_prompt=_default_prompt(model_dir),
                        chat_kwargs=_chat_kwargs(model_dir, transformer),
                        message_format=_message_format(model_dir, transformer),
                        max_length=_max_length(transformer),
                        source=f"{MODULES_FILE}, {where}")


def _max_length(transformer: dict) -> int | None:
    """The lowest max_length its processing settings name, if any."""
    buckets = (transformer.get("processing_kwargs") or {}).values()
    found = [b["max_length"] for b in buckets
             if isinstance(b, dict) and isinstance(b.get("max_length"), int)]
    return min(found, default=None)


def _message_format(model_dir: str, transformer: dict) -> str | None:
    """How the Transformer hands a pair to the chat template; it uses the template only
    when its modalities include messages (else the pair goes in as plain text)."""
    modalities = transformer.get("modality_config")
    if modalities is None:
        return None
    if "message" not in modalities:
        raise ModelLoadError(
            f"{model_dir}/{TRANSFORMER_CONFIG}: sentence-transformers feeds this causal LM each"
            " pair as plain text, not through a chat template (modality_config has no"
            " 'message'); the engine scores LLM rerankers through their prompt only")
    found = (modalities.get("message") or {}).get("format")
    return found if found in ("flat", "structured") else None


def _check_classifier(model_dir: str, types: list) -> None:
    """A cross-encoder is its model's own head: what sentence-transformers would add after
    it, or a prompt it would put before the query, the engine does not."""
    if len(types) != 1:
        raise ModelLoadError(
            f"{model_dir}/{MODULES_FILE}: a cross-encoder saved with the modules {types}; the"
            " engine scores the model's own classification head alone")
    if _default_prompt(model_dir) is not None:
        raise ModelLoadError(f"{model_dir}/{MODEL_CONFIG}: a default prompt before each query"
                             " is not something the engine adds to a cross-encoder's pairs")


def _chat_kwargs(model_dir: str, transformer: dict) -> dict:
    where = f"{model_dir}/{TRANSFORMER_CONFIG}"
    set_ = [key for key in UNREPRODUCED if transformer.get(key) not in (None, {}, [])]
    processing = dict(transformer.get("processing_kwargs") or {})
    chat = dict(processing.pop("chat_template", None) or {})
    for bucket, settings in processing.items():
        if not isinstance(settings, dict):
            set_.append(f"processing_kwargs.{bucket}")
            continue
        # Chat templates are tokenized without added special tokens, as the engine does.
        changing = [key for key in settings if key not in LENGTH_ONLY
                    and (key, settings[key]) != ("add_special_tokens", False)]
        set_ += [f"processing_kwargs.{bucket}.{key}" for key in sorted(changing)]
    # The engine always keeps the template's end and cuts only the document.
    if chat.pop("restore_suffix", True) is not True:
        set_.append("processing_kwargs.chat_template.restore_suffix")
    if set_:
        raise ModelLoadError(f"{where}: {', '.join(set_)} change what the model sees in ways"
                             " the engine does not reproduce")
    return {key: value for key, value in chat.items() if key not in LENGTH_ONLY}


def _default_prompt(model_dir: str) -> str | None:
    config = _load(model_dir, MODEL_CONFIG) or {}
    name = config.get("default_prompt_name")
    if not name:
        return None
    prompts = config.get("prompts") or {}
    if not isinstance(prompts.get(name), str):
        raise ModelLoadError(f"{model_dir}/{MODEL_CONFIG}: default_prompt_name {name!r} names"
                             " no prompt")
    return prompts[name]


def _load(model_dir: str, name: str):
    path = os.path.join(model_dir, name)
    if not os.path.isfile(path):
        return None
    try:
        with open(path) as fh:
            return json.load(fh)
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"{path} cannot be read: {exc}") from None
