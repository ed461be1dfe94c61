"""Pair encoding with the model's own fast tokenizer, protecting the query.

Queries and documents are tokenized separately (documents in one parallel batch that
releases the GIL), the document is cut first, and the tokenizer's own post-processor
adds the special tokens, so each row equals ``tokenizer(q, d, truncation="only_second")``
(with ``split_special_tokens=True``: special tokens typed in the text are text).
Chunk mode keeps the cut-off tail as overlapping windows, each scored with the query.
A request's cap on a document's own tokens (Cohere's ``max_tokens_per_doc``) cuts the
document before any of that.
"""

from __future__ import annotations

import dataclasses

from tokenizers import Encoding, Tokenizer

from .backends.base import ModelLoadError
from .errors import PayloadTooLarge


@dataclasses.dataclass
class EncodedPairs:
    """Model rows for a list of pairs; ``owner[r]`` is the pair that row ``r`` scores."""

    ids: list[list[int]]
    type_ids: list[list[int]] | None
    owner: list[int]

    @property
    def tokens(self) -> int:
        return sum(len(row) for row in self.ids)


class PairEncoder:
    def __init__(self, hf_tokenizer, max_length: int, max_query_share: float):
        if not getattr(hf_tokenizer, "is_fast", False):
            raise ModelLoadError("the model needs a fast tokenizer (tokenizer.json)")
        # A private copy: tokenizer.json may carry truncation/padding we must not inherit,
        # and the shared one's state is mutated by transformers on every __call__.
        self._tokenizer = Tokenizer.from_str(hf_tokenizer.backend_tokenizer.to_str())
        self._tokenizer.no_truncation()
        self._tokenizer.no_padding()
        # "[SEP]" or "</s>" in a query or document is text, not a segment boundary: the
        # pair's special tokens are the post-processor's alone (docs/models.md).
        self._tokenizer.encode_special_tokens = True
        self.max_length = max_length
        self.max_query_share = max_query_share
        self.special = hf_tokenizer.num_special_tokens_to_add(pair=True)
        self.uses_token_type_ids = "token_type_ids" in hf_tokenizer.model_input_names
        pad = hf_tokenizer.pad_token_id
        self.pad_id = 0 if pad is None else int(pad)

    def encode(
        self,
        pairs: list[tuple[str, str]],
        *,
        chunk: bool = False,
        max_chunks: int = 16,
        overlap: int = 0,
        truncate: bool = True,
        direction: str = "right",
        field: str = "documents",
        max_length: int | None = None,
        max_document_tokens: int | None = None,
    ) -> EncodedPairs:
        """``max_length``: the request's own cap on a pair, where lower than the model's.
        ``max_document_tokens``: the request's cap on each document's own tokens, kept from
        the side ``direction`` keeps."""
        limit = min(self.max_length, max_length or self.max_length)
        queries = self._encode_queries([q for q, _ in pairs], self._query_cap(limit))
        docs = self._tokenizer.encode_batch([d for _, d in pairs], add_special_tokens=False)
        ids, type_ids, owner = [], [], []
        for index, ((query, _), doc) in enumerate(zip(pairs, docs)):
            q = queries[query]
            # Cohere's cap is on the document, not on the pair: it cuts first, so chunk mode
            # windows only the capped document and a capped document that fits is not
            # refused by truncate=false.
            if max_document_tokens is not None and len(doc.ids) > max_document_tokens:
                doc.truncate(max_document_tokens, direction=direction)
            room = limit - self.special - len(q.ids)
            if not truncate and len(doc.ids) > room:
                whose = "the model's" if limit == self.max_length else "the requested"
                raise PayloadTooLarge(
                    f"pair {index} has {len(doc.ids) + len(q.ids) + self.special} tokens, more"
                    f" than {whose} {limit}; send truncate=true or shorten it",
                    field=f"{field}[{index}]",
                )
            for piece in self._pieces(doc, room, chunk, max_chunks, overlap, direction):
                row = self._tokenizer.post_process(q, piece, add_special_tokens=True)
                ids.append(row.ids)
                type_ids.append(row.type_ids)
                owner.append(index)
        return EncodedPairs(ids, type_ids if self.uses_token_type_ids else None, owner)

    def smallest_length(self) -> int:
        """The fewest tokens a pair can be cut to: its special tokens, one of each text."""
        return self.special + 2

    def _query_cap(self, limit: int) -> int:
        # The query keeps at most its share of the limit, and always leaves the document one.
        return max(1, min(int(limit * self.max_query_share), limit - self.special - 1))

    def _encode_queries(self, queries: list[str], cap: int) -> dict[str, Encoding]:
        unique = list(dict.fromkeys(queries))
        encoded = self._tokenizer.encode_batch(unique, add_special_tokens=False)
        for encoding in encoded:
            if len(encoding.ids) > cap:
                encoding.truncate(cap)
        return dict(zip(unique, encoded))

    @staticmethod
    def _pieces(doc: Encoding, room: int, chunk: bool, max_chunks: int, overlap: int,
                direction: str) -> list[Encoding]:
        if len(doc.ids) <= room:
            return [doc]
        if not chunk:
            doc.truncate(room, direction=direction)
            return [doc]
        # Windows advance by at least half their size, whatever the overlap setting.
        doc.truncate(room, stride=min(overlap, room // 2))
        return ([doc] + list(doc.overflowing))[:max_chunks]
