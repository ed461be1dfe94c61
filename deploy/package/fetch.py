"""Fetching a model for packaging: from the hub, a directory or an archive, into staging.

Only the files serving needs are taken (config, tokenizer, safetensors weights, the
configuration sentence-transformers saved with an LLM reranker, and an LLM reranker's
profile override: reranker.json's "profile"); pickle weights are converted only
when allowed, and tokenizer.json is written when missing.
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
import shutil
import tempfile
from pathlib import Path

from deploy.errors import UserError, first_line
from deploy.package import archive, model_kind
from reranker.model_dir import takes_segments

CONFIG_FILES = ["config.json"]
# chat_template.jinja: where recent transformers save a chat template, which may be an LLM
# reranker's prompt (the DLC's transformers 4.51 reads it there too).
TOKENIZER_FILES = ["tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
                   "added_tokens.json", "vocab.txt", "vocab.json", "merges.txt", "spm.model",
                   "sentencepiece.bpe.model", "tokenizer.model", "chat_template.jinja"]
# Tokenizer classes that only transformers 5 knows, and the class every version loads the
# same way (tokenizer.json as it is): the HF DLC runs transformers 4.x.
PORTABLE_TOKENIZER_CLASS = {"TokenizersBackend": "PreTrainedTokenizerFast"}
GENERIC_TOKENIZER_CLASSES = ("PreTrainedTokenizerFast", "TokenizersBackend")
# How sentence-transformers' CrossEncoder prompts and scores a causal LM it saved (an LLM
# reranker's judged tokens live in its LogitScore module's folder).
SENTENCE_TRANSFORMERS_FILES = ["modules.json", "sentence_bert_config.json",
                               "config_sentence_transformers.json"]
MODULE_CONFIGS = ["*_LogitScore/config.json"]
SAFETENSORS = ["model.safetensors", "model-*-of-*.safetensors", "model.safetensors.index.json"]
PICKLE = ["pytorch_model.bin", "pytorch_model-*-of-*.bin", "pytorch_model.bin.index.json"]
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")
# The keys of a source's reranker.json that travel into the package; the rest is a previous
# package's manifest, which packaging writes afresh.
CARRIED = ("profile",)


def resolve_source(model: str, args, workdir: Path) -> tuple[Path, dict]:
    """The directory to package from, and where it came from."""
    path = Path(model).expanduser()
    if path.is_dir():
        cached = _hub_cache_origin(path)
        info = {"model_id": args.model_id or _recorded_id(path) or cached.get("model_id")
                or path.resolve().name, "source": "local"}
        if "revision" in cached:
            info["revision"] = cached["revision"]
        return path, info
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


def _hub_cache_origin(path: Path) -> dict:
    """The hub id and commit of a folder in huggingface_hub's cache
    (``.../models--org--name/snapshots/<commit>``), which names the model by neither: {}
    for any other folder."""
    snapshot = path.resolve()
    repo = snapshot.parent.parent.name
    if snapshot.parent.name != "snapshots" or not repo.startswith("models--"):
        return {}
    model_id = repo[len("models--"):].replace("--", "/", 1)
    return {"model_id": model_id, "revision": snapshot.name} if _HUB_ID.match(model_id) else {}


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
    patterns = (CONFIG_FILES + TOKENIZER_FILES + SENTENCE_TRANSFORMERS_FILES + MODULE_CONFIGS
                + SAFETENSORS)
    try:
        path = Path(snapshot_download(repo_id, revision=revision, allow_patterns=patterns,
                                      etag_timeout=10))
        if not _present(path, SAFETENSORS) and allow_pickle:
            path = Path(snapshot_download(repo_id, revision=revision, allow_patterns=PICKLE))
    except Exception as exc:  # huggingface_hub and httpx raise many kinds; one line each
        name = type(exc).__name__
        if name in ("RepositoryNotFoundError", "GatedRepoError", "RevisionNotFoundError"):
            raise UserError(f"{repo_id}: {name} ({first_line(exc)})") from None
        raise UserError(offline_hint.format(why=f"{name}: {first_line(exc)}")) from None
    return path


def stage(source: Path, staging: Path, *, allow_pickle: bool) -> None:
    """Copy the files serving needs into ``staging`` (hard links where possible)."""
    staging.mkdir(parents=True)
    if not (source / "config.json").is_file():
        raise UserError(f"{source} has no config.json: not a transformers model directory")
    for name in _matching(source, CONFIG_FILES + TOKENIZER_FILES + SENTENCE_TRANSFORMERS_FILES
                          + SAFETENSORS):
        _link_or_copy(source / name, staging / name)
    for name in module_configs(source):
        (staging / name).parent.mkdir(parents=True, exist_ok=True)
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
    portable_tokenizer_config(staging)
    portable_model_config(staging)
    carried = carried_settings(source)
    if carried:  # the engine reads it from here when packaging checks the model
        (staging / archive.MANIFEST).write_text(json.dumps(carried, indent=2) + "\n")


def note_model_id(staging: Path, model_id: str) -> None:
    """Record the model id in the staged reranker.json (the packaged one is written
    afresh, with it): an LLM reranker is recognised by a name that says "rerank"."""
    path = staging / archive.MANIFEST
    data = json.loads(path.read_text()) if path.is_file() else {}
    data["model_id"] = model_id
    path.write_text(json.dumps(data, indent=2) + "\n")


def carried_settings(source: Path) -> dict:
    """The model's own settings from its reranker.json (an LLM reranker's "profile"
    override), which the packaged reranker.json must keep."""
    path = source / archive.MANIFEST
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise UserError(f"{path} cannot be read: {first_line(exc)}") from None
    if not isinstance(data, dict):
        raise UserError(f"{path} must hold a JSON object, not {type(data).__name__}")
    profile = data.get("profile")
    if profile is not None and not isinstance(profile, (str, dict)):
        raise UserError(f'{path}: "profile" must be a profile\'s name or an object')
    return {k: data[k] for k in CARRIED if data.get(k) is not None}


def convert_pickle(source: Path, staging: Path) -> None:
    """pytorch_model.bin -> model.safetensors, loading with torch's weights_only unpickler,
    as the class its config names (a causal LM keeps its LM head).  Weights the files lack
    are refused, never saved: transformers would make them up, and once in model.safetensors
    nothing could tell them from trained ones."""
    import transformers

    from reranker.backends.base import ModelLoadError
    from reranker.backends.checkpoint import check_loading_info

    architectures = model_kind.read_config(source).get("architectures") or []
    causal = bool(architectures) and architectures[0].endswith("ForCausalLM")
    auto = (transformers.AutoModelForCausalLM if causal
            else transformers.AutoModelForSequenceClassification)
    with tempfile.TemporaryDirectory() as tmp:
        try:
            model, info = auto.from_pretrained(source, use_safetensors=False,
                                               trust_remote_code=False, output_loading_info=True)
            check_loading_info(info, str(source), type(model).__name__)
            model.save_pretrained(tmp, safe_serialization=True)
        except ModelLoadError as exc:
            raise UserError(str(exc)) from None
        except Exception as exc:
            raise UserError(f"cannot convert {source}'s pickle weights: {first_line(exc)}"
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
        raise UserError(f"cannot load the tokenizer: {first_line(exc)}") from None
    if not getattr(tokenizer, "is_fast", False):
        raise UserError("the tokenizer has no fast (tokenizer.json) form; the engine needs one")
    with tempfile.TemporaryDirectory() as tmp:
        tokenizer.save_pretrained(tmp)
        shutil.copyfile(Path(tmp) / "tokenizer.json", staging / "tokenizer.json")


def portable_model_config(staging: Path) -> None:
    """config.json as transformers 4 (the DLC's) reads it the way 5 does.

    transformers 5 saves the rotary embedding's settings as ``rope_parameters`` only; 4
    ignores that key and falls back to its class default for ``rope_theta`` (and to no
    scaling), so a model saved by 5 with another theta than the default would score
    otherwise on the DLC.  Write 4's keys beside it (5 reads them the same way).  Replaced,
    never written through: staging holds hard links to the user's files."""
    path = staging / "config.json"
    try:
        config = json.loads(path.read_text())
    except (OSError, ValueError):
        return  # the engine's check reports it
    rope = config.get("rope_parameters") if isinstance(config, dict) else None
    if not isinstance(rope, dict) or "rope_theta" in config or "rope_theta" not in rope:
        return
    changed = {**config, "rope_theta": rope["rope_theta"]}
    scaling = {k: v for k, v in rope.items() if k != "rope_theta"}
    if scaling.get("rope_type", "default") != "default" and "rope_scaling" not in config:
        changed["rope_scaling"] = scaling
    written = path.with_name(path.name + ".portable")
    written.write_text(json.dumps(changed, indent=2, ensure_ascii=False) + "\n")
    os.replace(written, path)


def portable_tokenizer_config(staging: Path) -> None:
    """tokenizer_config.json as transformers 4 (the DLC's) reads it the way 5 does.

    transformers 5 saves a generic tokenizer as ``TokenizersBackend``, a class 4 lacks, and
    the additional special tokens as an ``extra_special_tokens`` list, a key 4 reads as a
    mapping (it fails to load).  Name the class both load the same way and give the list
    4's key, which 5 reads too.  The file is replaced, never written through: staging holds
    hard links to the user's files."""
    path = staging / "tokenizer_config.json"
    try:
        config = json.loads(path.read_text())
    except (OSError, ValueError):
        return  # none, or unreadable: the engine's check says so in its own words
    if not isinstance(config, dict):
        return
    changed = dict(config)
    portable = PORTABLE_TOKENIZER_CLASS.get(config.get("tokenizer_class"))
    if portable:
        changed["tokenizer_class"] = portable
    if (changed.get("tokenizer_class") in GENERIC_TOKENIZER_CLASSES
            and "model_input_names" not in changed and _takes_segments(staging)):
        # A generic tokenizer lists segment ids in transformers 4 and not in 5: say so, so
        # every loader (the DLC's, ours, a CrossEncoder) feeds the model what it learned.
        changed["model_input_names"] = ["input_ids", "token_type_ids", "attention_mask"]
    extra = config.get("extra_special_tokens")
    if isinstance(extra, list):
        known = list(changed.pop("additional_special_tokens", None) or [])
        changed["additional_special_tokens"] = known + [t for t in extra if t not in known]
        del changed["extra_special_tokens"]
    if changed == config:
        return
    written = path.with_name(path.name + ".portable")
    written.write_text(json.dumps(changed, indent=2, ensure_ascii=False) + "\n")
    os.replace(written, path)


def _takes_segments(staging: Path) -> bool:
    """The model's config.json gives it segment embeddings (type_vocab_size above 1)."""
    try:
        config = json.loads((staging / "config.json").read_text())
    except (OSError, ValueError):
        return False
    return isinstance(config, dict) and takes_segments(config)


def module_configs(source: Path) -> list[str]:
    """The config.json of each module modules.json places in a folder of its own (only
    configuration: a module with weights is refused when the engine checks the model)."""
    try:
        modules = json.loads((source / "modules.json").read_text())
    except (OSError, ValueError):
        return []
    paths = [m.get("path") for m in modules if isinstance(m, dict)] if isinstance(
        modules, list) else []
    names = [f"{p}/config.json" for p in paths if isinstance(p, str) and p
             and re.fullmatch(r"[\w.-]+", p) and p not in (".", "..")]
    return [n for n in names if (source / n).is_file()]


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
