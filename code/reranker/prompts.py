"""Prompt encoding for LLM rerankers: a profile's template, pieces tokenized as its reference.

Each query of a request becomes one shared prefix (system prompt, instruction, query); each
document one continuation (the document piece, then the suffix).  Where the prompt puts the
query after the document, the shared prefix is the template's head and the query is in
each continuation's suffix.  Only the document is ever cut: template, instruction and
query stay whole, and a query that leaves no room for a document is refused.  Rows equal
the reference's ``prefix + document + suffix`` tokens.  A request's cap on a document's own
tokens (Cohere's ``max_tokens_per_doc``) shortens the document's text before its prompt is
built, so a capped row is the reference's prompt for the shorter document.

Special tokens are the template's alone: in the query, the instruction and the documents
they are tokenized as plain text (the template's added tokens too, marked special or not),
so a document holding ``<|im_end|>`` cannot close its turn and write the model's prompt
(docs/models.md says where this differs from the references).
"""

from __future__ import annotations

import dataclasses
import itertools
import re

from tokenizers import AddedToken, Encoding, Tokenizer

from .backends.base import ModelLoadError
from .errors import InvalidRequest, PayloadTooLarge, RerankError
from .profiles import MARKUP, Profile


def control_tokens(hf_tokenizer, profile: Profile) -> dict[str, int]:
    """The template's own tokens, which user text can only spell as text: every special
    token, and the added tokens written as markup that the template uses (Qwen3 marks
    ``<think>`` and ``</think>`` as added tokens that are not special).  Other added tokens
    (Gemma's HTML tags and runs of spaces) stay as the tokenizer splits them anywhere, as
    the references do."""
    template = "".join((*profile.prefix, profile.document, *profile.suffix,
                        profile.instruction_format or "", profile.default_instruction or ""))
    return {t.content: i for i, t in hf_tokenizer.added_tokens_decoder.items()
            if t.special or (MARKUP.fullmatch(t.content) and t.content in template)}


def _mark_special(tokenizer: Tokenizer, names) -> None:
    """Marks the added tokens ``names`` special, so that ``encode_special_tokens`` splits them
    in user text into plain text; each keeps its id and its other attributes.  (Through the
    API: rewriting an LLM's megabytes of tokenizer JSON took most of a second.)"""
    tokenizer.add_special_tokens([
        AddedToken(token.content, single_word=token.single_word, lstrip=token.lstrip,
                   rstrip=token.rstrip, normalized=token.normalized, special=True)
        for token in tokenizer.get_added_tokens_decoder().values() if token.content in names])


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
        # One private copy (an LLM's vocabulary is large), without the truncation/padding
        # tokenizer.json may carry.  User text is encoded with special tokens split into
        # plain text; the template's own special tokens are cut out of its pieces first and
        # kept as themselves.
        self._specials = control_tokens(hf_tokenizer, profile)
        added = hf_tokenizer.added_tokens_decoder
        self._plain = Tokenizer.from_str(hf_tokenizer.backend_tokenizer.to_str())
        _mark_special(self._plain,
                      {name for name, i in self._specials.items() if not added[i].special})
        self._plain.no_truncation()
        self._plain.no_padding()
        self._plain.encode_special_tokens = True
        self._special_re = re.compile("|".join(
            re.escape(t) for t in sorted(self._specials, key=len, reverse=True)) or r"(?!)")
        self.profile = profile
        self.max_length = max_length
        bos, pad = hf_tokenizer.bos_token_id, hf_tokenizer.pad_token_id
        self.bos = [bos] if profile.bos and bos is not None and bos != pad else []
        self.pad_id = int(pad if pad is not None else (hf_tokenizer.eos_token_id or 0))
        if profile.head == "seq-cls":  # its one-label head is the score: nothing judged
            self.judged = []
        elif profile.judged_ids is not None:
            self.judged = [i for i in profile.judged_ids if i is not None]
        else:
            true, false = profile.judged
            self.judged = [self._one_token(true)] + ([self._one_token(false)] if false else [])
        # The document piece around {document}, braces unescaped (a document is never
        # formatted: its own braces stay as sent), its special tokens cut off its ends.
        before, after = (p.format() for p in profile.document.split("{document}", 1))
        self._head, self._before = self._cut_specials(before, last=True)
        self._after, self._tail = self._cut_specials(after, last=False)
        # The label ("<Document>: ") survives a left cut when it tokenizes as a prefix.
        self._label = len(self._template(self._head)) + len(self._text(self._before, {}))
        # The template's tokens after the document within its piece (a document-first
        # prompt's "<|im_end|>\n<|im_start|>user\n"): kept whole, as the suffix is.
        self._tail_ids = self._template(self._tail)
        # The template's text between the document and that ("\nIs the document relevant?
        # Answer yes or no."): tokenized with the document (they may share a token) unless
        # the document is cut, when it is written back after the cut, as CrossEncoder does.
        self._after_ids = self._text(self._after, {})
        # Where the label's text ends within a document piece, its trailing spaces left out:
        # the space is the document's first token's ("<Document>:", " Paris").
        self._label_end = len(self._before.rstrip(" "))

    def _cut_specials(self, text: str, *, last: bool) -> tuple[str, str]:
        """``text`` split after its last (``last``) or before its first special token."""
        found = list(self._special_re.finditer(text))
        if not found:
            return ("", text) if last else (text, "")
        at = found[-1].end() if last else found[0].start()
        return text[:at], text[at:]

    def _template(self, piece: str, **fields) -> list[int]:
        """A template piece's ids: its own special tokens as themselves, every other part
        formatted with ``fields`` (user text) and encoded with special tokens split."""
        ids: list[int] = []
        start = 0
        for match in self._special_re.finditer(piece):
            ids.extend(self._text(piece[start:match.start()], fields))
            ids.append(self._specials[match.group()])
            start = match.end()
        ids.extend(self._text(piece[start:], fields))
        return ids

    def _text(self, template: str, fields: dict) -> list[int]:
        text = template.format(**fields) if fields else template
        return self._plain.encode(text, add_special_tokens=False).ids if text else []

    def _one_token(self, text: str) -> int:
        ids = self._template(text)
        if len(ids) != 1:
            raise ModelLoadError(f"profile {self.profile.name!r} judges {text!r}, which is"
                                 f" {len(ids)} tokens in this tokenizer, not one")
        return ids[0]

    def _pieces(self, pieces: tuple[str, ...], **fields) -> list[int]:
        ids: list[int] = []
        for piece in pieces:
            ids.extend(self._template(piece, **fields))
        return ids

    def encode(self, pairs: list[tuple[str, str]], *, instruction: str | None = None,
               truncate: bool = True, direction: str = "right",
               field: str = "documents[{i}]", max_length: int | None = None,
               max_chunks: int = 0, overlap: int = 0,
               max_document_tokens: int | None = None,
               instruction_field: str = "instruction",
               query_field: str = "query") -> PromptRows:
        """``max_length``: the request's own cap on a prompt, where lower than the model's.
        ``max_chunks`` > 0: a document too long for one prompt becomes up to that many
        overlapping windows, one row each for the same pair (the engine keeps the best).
        ``max_document_tokens``: the request's cap on each document's own tokens, kept from
        the side ``direction`` keeps; it applies before the prompt's limit and the windows
        (Cohere's cap is on the document, not on the prompt).  ``instruction_field``: the
        request's name for its instruction, ``query_field`` for the query of pair ``{i}`` and
        ``field`` for its document, for an error that blames them."""
        limit = min(self.max_length, max_length or self.max_length)
        which = "(RERANK_LLM_MAX_LENGTH)" if limit == self.max_length else "(the requested cap)"
        prefix_pieces, suffix_pieces, instruction = self.profile.with_instruction(instruction)
        # One suffix for every query, unless the query follows the document (then its own).
        shared = (None if self.profile.query_after_document
                  else self._pieces(suffix_pieces, instruction=instruction))
        queries: dict[str, PromptGroup] = {}
        suffixes: dict[str, list[int]] = {}
        for query, _ in pairs:
            if query not in queries:
                fields = {"query": query, "instruction": instruction}
                prefix = self.bos + self._pieces(prefix_pieces, **fields)
                queries[query] = PromptGroup(prefix, [], [])
                suffixes[query] = (shared if shared is not None
                                   else self._pieces(suffix_pieces, **fields))
        documents = [d for _, d in pairs]
        if max_document_tokens is not None:
            documents = self._capped(documents, max_document_tokens, direction)
        texts = [self._before + d + self._after for d in documents]
        docs = self._plain.encode_batch(texts, add_special_tokens=False)
        head, tail = self._template(self._head), self._tail_ids
        for index, ((query, _), doc) in enumerate(zip(pairs, docs)):
            group, suffix = queries[query], suffixes[query]
            suffix = tail + suffix  # cut and windowed as one: never the document's
            room = limit - len(group.prefix) - len(suffix)
            if room <= self._label:
                raise self._no_room(len(group.prefix) + len(suffix), limit, which,
                                    (prefix_pieces, suffix_pieces, instruction),
                                    instruction_field, query_field.format(i=index))
            ids = head + doc.ids
            pieces = [ids]
            if len(ids) > room:
                if not truncate and not max_chunks:  # chunk mode cuts no window
                    raise PayloadTooLarge(
                        f"pair {index} has {len(ids) + len(group.prefix) + len(suffix)} tokens,"
                        f" more than {limit} {which}; send truncate=true or shorten it",
                        field=field.format(i=index))
                if self._after_ids:  # the document alone is cut; the template's text stays
                    doc = self._plain.encode(self._before + documents[index],
                                             add_special_tokens=False)
                    ids, room = head + doc.ids, room - len(self._after_ids)
                    if room <= self._label:
                        raise self._no_room(limit - room, limit, which,
                                            (prefix_pieces, suffix_pieces, instruction),
                                            instruction_field, query_field.format(i=index))
                label = min(len(head) + self._label_tokens(doc), self._label)
                pieces = [piece + self._after_ids for piece in (
                    self._windows(ids, room, max_chunks, overlap, label) if max_chunks
                    else [self._cut(ids, room, direction, label)])]
            for piece in pieces:
                self._add(queries, query, piece + suffix, index, field)
        return PromptRows([group for group in queries.values() if group.rows])

    @staticmethod
    def _add(queries: dict, query: str, row: list[int], index: int, field: str) -> None:
        """``row`` into its query's group.  A template that ends with the document leaves an
        empty document nothing to continue the prefix with: that row takes the prefix's
        last token (the position the model judges from), in a group of its own."""
        group = queries[query]
        if not row:
            if len(group.prefix) < 1:
                where = field.format(i=index)
                raise InvalidRequest(f"{where} is empty, and so is the prompt around it",
                                     field=where)
            key = (query, "empty document")
            if key not in queries:
                queries[key] = PromptGroup(group.prefix[:-1], [], [])
            group, row = queries[key], group.prefix[-1:]
        group.rows.append(row)
        group.pairs.append(index)

    def _no_room(self, taken: int, limit: int, which: str, prompt: tuple, instruction_field: str,
                 query_field: str) -> RerankError:
        """The error for a prompt that leaves no room for a document, naming what to change:
        the request's token cap when the model's limit had room (a 422, as a cross-encoder
        answers a cap below its special tokens), else the instruction when even an empty
        query leaves none, else the query."""
        need = taken + self._label + 1
        if limit < self.max_length and need <= self.max_length:
            return InvalidRequest(
                f"truncate_prompt_tokens must be at least {need} for this request (the"
                " prompt's template, instruction and query, and one token of the document)",
                field="truncate_prompt_tokens")
        prefix_pieces, suffix_pieces, instruction = prompt
        empty = {"query": "", "instruction": instruction}
        fixed = (len(self.bos) + len(self._pieces(prefix_pieces, **empty))
                 + len(self._tail_ids) + len(self._pieces(suffix_pieces, **empty)))
        field = instruction_field if fixed + self._label >= limit else query_field
        return PayloadTooLarge(f"{field} and the rest of the prompt take {taken} tokens,"
                               f" leaving no room for a document within {limit} {which}",
                               field=field)

    def _capped(self, documents: list[str], cap: int, direction: str) -> list[str]:
        """Each document's text cut to its first (``direction`` "left": last) ``cap``
        tokens, as the model's tokenizer splits the document alone.  The prompt tokenizes
        the document piece as one text, its label included, so the cut is made on the text
        at a token's edge rather than on the prompt's ids: the row is then exactly the
        reference's prompt for that shorter document."""
        encoded = self._plain.encode_batch(documents, add_special_tokens=False)
        capped = []
        for text, doc in zip(documents, encoded):
            offsets = doc.offsets
            if len(offsets) > cap:
                # Byte-level tokens of one character (an emoji: three tokens) share its
                # span: the cut falls between characters, so it keeps at most ``cap``.
                whole = [k for k in range(1, len(offsets)) if offsets[k][0] >= offsets[k - 1][1]]
                if direction == "left":
                    start = min((k for k in whole if k >= len(offsets) - cap), default=None)
                    text = text[offsets[start][0]:] if start is not None else ""
                else:
                    end = max((k for k in whole if k <= cap), default=0)
                    text = text[: offsets[end - 1][1]] if end else ""
            capped.append(text)
        return capped

    def _label_tokens(self, piece: Encoding) -> int:
        """The document piece's leading tokens that hold nothing but its label: a window
        or a left cut puts the label before a later part of the document, so a token the
        label shares with the document's first word (" Paris") must stay out of it."""
        ends = itertools.takewhile(lambda end: end <= self._label_end,
                                   (end for _, end in piece.offsets))
        return sum(1 for _ in ends)

    @staticmethod
    def _windows(ids: list[int], room: int, max_chunks: int, overlap: int, label: int
                 ) -> list[list[int]]:
        """The document's ``label`` tokens, then each window of what follows them: ``room``
        tokens a row, consecutive windows sharing ``overlap`` (at most half a window), at
        most ``max_chunks`` of them from the start."""
        head, body = ids[:label], ids[label:]
        width = room - label
        step = width - min(overlap, width // 2)
        starts = range(0, max(len(body) - width, 0) + step, step)
        return [head + body[start:start + width] for start in starts[:max_chunks]]

    @staticmethod
    def _cut(ids: list[int], room: int, direction: str, label: int) -> list[int]:
        if direction == "left":
            return ids[:label] + ids[len(ids) - (room - label):]
        return ids[:room]
