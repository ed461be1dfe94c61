"""How Vespa's token functions rebuild the model's pair encoding, and the tokenizer files
that make them exact.

Vespa tokenizes the query and each document separately (the ``hugging-face-tokenizer``
component, ``embed``) and assembles the model input in the rank profile with

    tokenInputIds(L, q, d)             [CLS]=101 q [SEP]=102 d [SEP]=102, 0-padded to L
    customTokenInputIds(s, e, L, q, d) s q e d e, 0-padded to L
    tokenTypeIds(L, q, d)              0 for s q e, 1 for d e, 0 for padding
    tokenAttentionMask(L, q, d)        1 for s q e d e, 0 for padding

(config-model's TokenTransformer; a length is the count of non-zero ids).  Those cover
templates of the form ``s A e B e``.  XLM-R (bge-reranker) encodes pairs as
``<s> A </s></s> B </s>``: the second ``</s>`` is not expressible, so we ship a query
tokenizer whose single-sequence template appends it (``$A </s>``), truncating the query so
it is kept; customTokenInputIds(0, 2, ...) then yields the model's own sequence exactly.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from deploy.errors import UserError

BERT_CLS, BERT_SEP = 101, 102
_MARK_A, _MARK_B = "alpha beta", "gamma"


@dataclasses.dataclass(frozen=True)
class PairLayout:
    """The model's pair template as Vespa must rebuild it."""

    start: int                 # the id before the query
    sep: int                   # the id after the query and after the document
    query_suffix: tuple[int, ...]  # ids between the first sep and the document (XLM-R: </s>)
    types_follow_segments: bool    # type ids are 0 for "s q e..." and 1 for "d e"

    @property
    def bert_ids(self) -> bool:
        return (self.start, self.sep) == (BERT_CLS, BERT_SEP)

    def input_ids_expression(self, length: int, query: str, document: str) -> str:
        if self.bert_ids:
            return f"tokenInputIds({length}, {query}, {document})"
        return f"customTokenInputIds({self.start}, {self.sep}, {length}, {query}, {document})"

    def token_types_expression(self, length: int, query: str, document: str) -> str:
        if self.types_follow_segments:
            return f"tokenTypeIds({length}, {query}, {document})"
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
    if len(prefix) != 1 or len(suffix) != 1 or not middle or middle[0] != suffix[0]:
        raise UserError(
            f"the tokenizer's pair template ({_describe(tokenizer, prefix, middle, suffix)}) is"
            " not of the form `s A e [extra] B e` that Vespa's tokenInputIds /"
            " customTokenInputIds can rebuild"
        )
    first = len(prefix) + len(a.ids) + len(middle)
    follows = list(types) == [0] * first + [1] * (len(types) - first)
    if not follows and any(types):
        raise UserError(f"the tokenizer's token types {types} cannot be built by tokenTypeIds")
    return PairLayout(prefix[0], suffix[0], tuple(middle[1:]), follows)


def write_tokenizers(source: Path, layout: PairLayout, query_tokens: int, doc_tokens: int,
                     out_dir: Path) -> tuple[Path, Path]:
    """The document tokenizer (no special tokens) and the query tokenizer (the template's
    extra separator appended, truncated to the query tensor so that it survives)."""
    from tokenizers.processors import TemplateProcessing

    out_dir.mkdir(parents=True, exist_ok=True)
    doc = load_tokenizer(source)
    doc.post_processor = TemplateProcessing(single="$A", pair="$A $B:1", special_tokens=[])
    doc.enable_truncation(doc_tokens)
    query = load_tokenizer(source)
    extra = [query.id_to_token(i) for i in layout.query_suffix]
    query.post_processor = TemplateProcessing(
        single=" ".join(["$A", *extra]), pair="$A $B:1",
        special_tokens=sorted({(t, i) for t, i in zip(extra, layout.query_suffix)}))
    query.enable_truncation(query_tokens)
    paths = out_dir / "tokenizer.json", out_dir / "query_tokenizer.json"
    for tokenizer, path in zip((doc, query), paths):
        path.write_text(json.dumps(json.loads(tokenizer.to_str()), ensure_ascii=False) + "\n")
    return paths


def _find(haystack: list[int], needle: list[int], start: int) -> int:
    for i in range(start, len(haystack) - len(needle) + 1):
        if haystack[i:i + len(needle)] == needle:
            return i
    return -1


def _describe(tokenizer, prefix, middle, suffix) -> str:
    name = lambda ids: " ".join(tokenizer.id_to_token(i) or str(i) for i in ids)  # noqa: E731
    return " ".join(p for p in (name(prefix), "A", name(middle), "B", name(suffix)) if p)
