"""Pair encoding with the model's own fast tokenizer, cut the way CrossEncoder cuts.

Queries and documents are tokenized separately (documents in one parallel batch that
releases the GIL), and the tokenizer's own post-processor adds the special tokens.  A pair
that fits is kept whole; one that does not is cut as ``tokenizer(q, d, truncation=True)``
(longest first, what ``CrossEncoder.predict`` calls) cuts it: the longer side gives way,
and when both are long the query keeps ``RERANK_MAX_QUERY_SHARE`` of the room (half, as the
tokenizer splits it).  So each row equals that call, with ``split_special_tokens=True``
(special tokens typed in the text are text).
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
    def __init__(self, hf_tokenizer, max_length: int, max_query_share: float,
                 segments: bool = False):
        """``segments``: the model takes segment ids (``model_dir.ModelDir.segments``),
        sent even where the tokenizer's class does not list them: transformers 5's generic
        tokenizer drops them, 4's keeps them, and the model was trained with them."""
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
        self.uses_token_type_ids = segments or "token_type_ids" in hf_tokenizer.model_input_names
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
        field: str = "documents[{i}]",
        max_length: int | None = None,
        max_document_tokens: int | None = None,
    ) -> EncodedPairs:
        """``field``: the request's name for document ``{i}``, for errors.
        ``max_length``: the request's own cap on a pair, where lower than the model's.
        ``max_document_tokens``: the request's cap on each document's own tokens, kept from
        the side ``direction`` keeps."""
        limit = min(self.max_length, max_length or self.max_length)
        queries = _QueryCuts(self._tokenizer, [q for q, _ in pairs], direction)
        docs = self._tokenizer.encode_batch([d for _, d in pairs], add_special_tokens=False)
        ids, type_ids, owner = [], [], []
        for index, ((query, _), doc) in enumerate(zip(pairs, docs)):
            # Cohere's cap is on the document, not on the pair: it cuts first, so chunk mode
            # windows only the capped document and a capped document that fits is not
            # refused by truncate=false.
            if max_document_tokens is not None and len(doc.ids) > max_document_tokens:
                doc.truncate(max_document_tokens, direction=direction)
            whole = queries.length(query) + len(doc.ids) + self.special
            if not truncate and not chunk and whole > limit:  # chunk mode cuts no window
                whose = "the model's" if limit == self.max_length else "the requested"
                raise PayloadTooLarge(
                    f"pair {index} has {whole} tokens, more than {whose} {limit}; send"
                    " truncate=true or shorten it", field=field.format(i=index))
            q = queries.cut(query, self._query_keep(queries.length(query), len(doc.ids),
                                                    limit - self.special))
            room = limit - self.special - len(q.ids)
            for piece in self._pieces(doc, room, chunk, max_chunks, overlap, direction):
                row = self._tokenizer.post_process(q, piece, add_special_tokens=True)
                ids.append(row.ids)
                type_ids.append(row.type_ids)
                owner.append(index)
        return EncodedPairs(ids, type_ids if self.uses_token_type_ids else None, owner)

    def smallest_length(self) -> int:
        """The fewest tokens a pair can be cut to: its special tokens, one of each text."""
        return self.special + 2

    def _query_keep(self, query: int, document: int, room: int) -> int:
        """The query's tokens in a pair of ``room`` text tokens, as the tokenizers' longest-
        first truncation keeps them at a share of 0.5: all of it when the pair fits, else the
        longer side gives way until both reach their share (the longer one keeps the odd
        token)."""
        if query + document <= room:
            return query
        if query <= document:
            share = int(room * self.max_query_share)
        else:
            share = room - int(room * (1 - self.max_query_share))
        keep = min(query, max(room - document, share))
        if query and document and room >= 2:
            # One token of each text at least (smallest_length): a share far from 0.5 in a
            # small room would leave one text nothing, and a document window of 0 tokens.
            keep = min(max(keep, 1), room - 1)
        return keep

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


class _QueryCuts:
    """Each query of a request tokenized once, and each cut of it made once, from the side
    ``direction`` keeps (the tokenizer cuts both texts of a pair from the same side)."""

    def __init__(self, tokenizer: Tokenizer, queries: list[str], direction: str = "right"):
        self._tokenizer, self._direction = tokenizer, direction
        unique = list(dict.fromkeys(queries))
        encoded = tokenizer.encode_batch(unique, add_special_tokens=False)
        self._whole = dict(zip(unique, encoded))
        self._cuts: dict[tuple[str, int], Encoding] = {}

    def length(self, query: str) -> int:
        return len(self._whole[query].ids)

    def cut(self, query: str, keep: int) -> Encoding:
        if keep >= self.length(query):
            return self._whole[query]
        if (query, keep) not in self._cuts:
            # Encoding.truncate works in place, so a cut is made on a fresh encoding.
            encoding = self._tokenizer.encode(query, add_special_tokens=False)
            encoding.truncate(keep, direction=self._direction)
            self._cuts[(query, keep)] = encoding
        return self._cuts[(query, keep)]
