"""How Vespa's token functions rebuild the model's pair encoding, and the tokenizer file
they read.

Vespa's config model forces every ``hugging-face-tokenizer`` component to truncation off,
padding off and ``addSpecialTokens(false)`` (config-model/.../container/component/
HuggingFaceTokenizer.java, getConfig), so tokenizer.json's template never runs inside Vespa:
``embed`` yields the bare token ids, cut to the tensor's size (linguistics-components/.../
language/tools/Embed.java, asTensor).  The rank profile places every special token itself
(config-model/.../schema/expressiontransforms/TokenTransformer.java):

    tokenInputIds(L, a, b, ...)             101 a 102 b 102 ..., 0-padded/cut to L
    customTokenInputIds(s, e, L, a, b, ...) s a e b e ..., 0-padded/cut to L
    tokenTypeIds(L, a, b, ...)              0 for s a e, 1 for the rest, 0 for padding
    tokenAttentionMask(L, a, b, ...)        1 over s a e b e ..., 0 for padding

where an argument's length is its count of ids > 0 and every argument must be a reference.
BERT and DeBERTa-v2 encode pairs as ``s A e B e``; XLM-R (bge-reranker) as
``<s> A </s></s> B </s>``, which an empty middle argument gives: ``s A e <empty> e B e``.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from deploy.errors import UserError

BERT_CLS, BERT_SEP = 101, 102
# A rank-profile function holding no tokens: the empty middle argument for XLM-R pairs.
EMPTY = "no_tokens"
EMPTY_EXPRESSION = "tensor<float>(d0[1])(0)"
_MARK_A, _MARK_B = "alpha beta", "gamma"


@dataclasses.dataclass(frozen=True)
class PairLayout:
    """The model's pair template as Vespa must rebuild it."""

    start: int                   # the id before the query
    sep: int                     # the id after the query and after the document
    empty_middle: bool           # XLM-R: a second sep before the document
    types_follow_segments: bool  # type ids are 0 for "s q e" and 1 after

    @property
    def special_tokens(self) -> int:
        return 4 if self.empty_middle else 3

    def arguments(self, query: str, document: str) -> str:
        return ", ".join([query, EMPTY, document] if self.empty_middle else [query, document])

    def input_ids_expression(self, length: int, query: str, document: str) -> str:
        args = self.arguments(query, document)
        if (self.start, self.sep) == (BERT_CLS, BERT_SEP):
            return f"tokenInputIds({length}, {args})"
        return f"customTokenInputIds({self.start}, {self.sep}, {length}, {args})"

    def attention_mask_expression(self, length: int, query: str, document: str) -> str:
        return f"tokenAttentionMask({length}, {self.arguments(query, document)})"

    def token_types_expression(self, length: int, query: str, document: str) -> str:
        if self.types_follow_segments:
            return f"tokenTypeIds({length}, {self.arguments(query, document)})"
        # The tokenizer gives every position type 0 (RoBERTa-like): so does this tensor.
        return f"tensor<float>(d0[1],d1[{length}])(0)"


def load_tokenizer(path: Path):
    from tokenizers import Tokenizer

    try:
        tokenizer = Tokenizer.from_file(str(path))
    except Exception as exc:  # noqa: BLE001 - tokenizers raises a bare Exception
        raise UserError(f"{path} is not a fast tokenizer file: {exc}") from None
    tokenizer.no_truncation()
    tokenizer.no_padding()
    return tokenizer


def pair_layout(tokenizer) -> PairLayout:
    """Read the template off one real pair encoding: prefix A middle B suffix."""
    a = tokenizer.encode(_MARK_A, add_special_tokens=False)
    b = tokenizer.encode(_MARK_B, add_special_tokens=False)
    pair = tokenizer.post_process(a, b, add_special_tokens=True)
    ids, types = pair.ids, pair.type_ids
    i = _find(ids, a.ids, 0)
    j = _find(ids, b.ids, i + len(a.ids))
    if i < 0 or j < 0:
        raise UserError("cannot locate the query and document in the tokenizer's pair encoding")
    prefix, middle, suffix = ids[:i], ids[i + len(a.ids):j], ids[j + len(b.ids):]
    if len(prefix) != 1 or len(suffix) != 1 or middle not in ([suffix[0]], [suffix[0]] * 2):
        raise UserError(
            f"the tokenizer's pair template ({_describe(tokenizer, prefix, middle, suffix)}) is"
            " not `s A e B e` or `s A e e B e`, the forms Vespa's token functions can build"
        )
    first = 1 + len(a.ids) + 1  # tokenTypeIds: 0 for "s A e", 1 after
    follows = list(types) == [0] * first + [1] * (len(types) - first)
    if not follows and any(types):
        raise UserError(f"the tokenizer's token types {types} cannot be built by tokenTypeIds")
    return PairLayout(prefix[0], suffix[0], len(middle) == 2, follows)


def write_tokenizer(source: Path, out: Path) -> Path:
    """tokenizer.json as Vespa runs it: no template, no truncation, no padding.

    Vespa forces the same settings; shipping them makes the file behave alike anywhere."""
    from tokenizers.processors import TemplateProcessing

    tokenizer = load_tokenizer(source)
    tokenizer.post_processor = TemplateProcessing(single="$A", pair="$A $B:1",
                                                  special_tokens=[])
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(json.loads(tokenizer.to_str()), ensure_ascii=False) + "\n",
                   encoding="utf-8")
    return out


def _find(haystack: list[int], needle: list[int], start: int) -> int:
    for i in range(start, len(haystack) - len(needle) + 1):
        if haystack[i:i + len(needle)] == needle:
            return i
    return -1


def _describe(tokenizer, prefix, middle, suffix) -> str:
    name = lambda ids: " ".join(tokenizer.id_to_token(i) or str(i) for i in ids)  # noqa: E731
    return " ".join(p for p in (name(prefix), "A", name(middle), "B", name(suffix)) if p)
