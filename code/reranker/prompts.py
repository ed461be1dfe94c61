"""Prompt encoding for LLM rerankers: a profile's template, pieces tokenized as its reference.

Each query of a request becomes one shared prefix (system prompt, instruction, query); each
document one continuation (the document piece, then the suffix).  Only the document is
ever cut: template, instruction and query stay whole, and a query that leaves no room for
a document is refused.  Rows equal the reference's ``prefix + document + suffix`` tokens.
"""

from __future__ import annotations

import dataclasses

from tokenizers import Tokenizer

from .backends.base import ModelLoadError
from .errors import PayloadTooLarge
from .profiles import Profile


@dataclasses.dataclass
class PromptGroup:
    """The documents of one query: ``rows[k]`` continues ``prefix`` and scores pair
    ``pairs[k]``."""

    prefix: list[int]
    rows: list[list[int]]
    pairs: list[int]


@dataclasses.dataclass
class PromptRows:
    groups: list[PromptGroup]

    @property
    def tokens(self) -> int:
        """Tokens of every full prompt, what a model without a shared prefix computes."""
        return sum(len(g.prefix) * len(g.rows) + sum(map(len, g.rows)) for g in self.groups)

    @property
    def computed(self) -> int:
        """Tokens computed with each prefix run once."""
        return sum(len(g.prefix) + sum(map(len, g.rows)) for g in self.groups)

    def full_rows(self) -> tuple[list[list[int]], list[int]]:
        """Whole prompts and their pair indices, for a model that cannot share prefixes."""
        rows, owner = [], []
        for group in self.groups:
            rows.extend(group.prefix + row for row in group.rows)
            owner.extend(group.pairs)
        return rows, owner


class PromptEncoder:
    def __init__(self, hf_tokenizer, profile: Profile, max_length: int):
        if not getattr(hf_tokenizer, "is_fast", False):
            raise ModelLoadError("the model needs a fast tokenizer (tokenizer.json)")
        # A private copy without the truncation/padding tokenizer.json may carry.
        self._tokenizer = Tokenizer.from_str(hf_tokenizer.backend_tokenizer.to_str())
        self._tokenizer.no_truncation()
        self._tokenizer.no_padding()
        self.profile = profile
        self.max_length = max_length
        bos, pad = hf_tokenizer.bos_token_id, hf_tokenizer.pad_token_id
        self.bos = [bos] if profile.bos and bos is not None and bos != pad else []
        self.pad_id = int(pad if pad is not None else (hf_tokenizer.eos_token_id or 0))
        true, false = profile.judged
        self.judged = [self._one_token(true)] + ([self._one_token(false)] if false else [])
        # The document piece around {document}, braces unescaped (a document is never
        # formatted: its own braces stay as sent).
        self._before, self._after = (p.format() for p in profile.document.split("{document}", 1))
        label_ids = self._ids(self._before) if self._before else []
        # The label ("<Document>: ") survives a left cut when it tokenizes as a prefix.
        self._label = len(label_ids)

    def _ids(self, text: str) -> list[int]:
        return self._tokenizer.encode(text, add_special_tokens=False).ids

    def _one_token(self, text: str) -> int:
        ids = self._ids(text)
        if len(ids) != 1:
            raise ModelLoadError(f"profile {self.profile.name!r} judges {text!r}, which is"
                                 f" {len(ids)} tokens in this tokenizer, not one")
        return ids[0]

    def _pieces(self, pieces: tuple[str, ...], **fields) -> list[int]:
        ids: list[int] = []
        for piece in pieces:
            ids.extend(self._ids(piece.format(**fields)))
        return ids

    def encode(self, pairs: list[tuple[str, str]], *, instruction: str | None = None,
               truncate: bool = True, direction: str = "right",
               field: str = "documents") -> PromptRows:
        instruction_text = self.profile.instruction_text(instruction)
        suffix = self._pieces(self.profile.suffix, instruction=instruction_text)
        queries: dict[str, PromptGroup] = {}
        for query, _ in pairs:
            if query not in queries:
                prefix = self.bos + self._pieces(self.profile.prefix, query=query,
                                                 instruction=instruction_text)
                queries[query] = PromptGroup(prefix, [], [])
        texts = [self._before + d + self._after for _, d in pairs]
        docs = self._tokenizer.encode_batch(texts, add_special_tokens=False)
        for index, ((query, _), doc) in enumerate(zip(pairs, docs)):
            group = queries[query]
            room = self.max_length - len(group.prefix) - len(suffix)
            if room <= self._label:
                raise PayloadTooLarge(
                    f"the query and the prompt take {len(group.prefix) + len(suffix)} tokens,"
                    f" leaving no room for a document within {self.max_length}"
                    " (RERANK_LLM_MAX_LENGTH)", field="query")
            ids = doc.ids
            if len(ids) > room:
                if not truncate:
                    raise PayloadTooLarge(
                        f"pair {index} has {len(ids) + len(group.prefix) + len(suffix)} tokens,"
                        f" more than {self.max_length}; send truncate=true or shorten it",
                        field=f"{field}[{index}]")
                ids = self._cut(ids, room, direction)
            group.rows.append(ids + suffix)
            group.pairs.append(index)
        return PromptRows(list(queries.values()))

    def _cut(self, ids: list[int], room: int, direction: str) -> list[int]:
        if direction == "left":
            return ids[: self._label] + ids[len(ids) - (room - self._label):]
        return ids[:room]
