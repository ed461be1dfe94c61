"""Model profiles: how each LLM-reranker family is prompted and scored, from its reference.

A cross-encoder needs no profile: its tokenizer's pair template and its trained head say
everything.  An LLM reranker judges relevance from next-token logits after a prompt that
only its model card or library knows, so the engine never guesses one: the family is
recognised from config.json (architectures, model_type) and the profile below applies,
unless the directory declares its own prompt (a chat template with query and document
messages, sentence-transformers' saved LogitScore: saved_cross_encoder.py) that differs;
``reranker.json`` in the model directory or ``RERANK_PROFILE`` / ``RERANK_INSTRUCTION``
override both; an unknown causal LM without a usable chat template is refused.

A template is pieces, each tokenized on its own exactly as the reference implementation
tokenizes it: ``prefix`` (shared by every document of a query: computed once per request),
``document`` (the only piece that is ever cut), then ``suffix``.  Fields: ``{query}``,
``{document}``, ``{instruction}``: the profile's ``instruction_format`` in its place, itself
template text (a chat template's system-message wrapper keeps its special tokens) around
the request's instruction, or nothing when there is none.

In every profile raw is a log-odds and relevance its sigmoid: ``log-odds`` is
logit(true) - logit(false) (Qwen3's softmax([no, yes])[1] is its sigmoid), ``logit`` is
logit(true) alone (FlagEmbedding's bge-reranker-v2-gemma score).
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
from collections.abc import Mapping

from . import saved_cross_encoder
from .backends.base import ModelLoadError
from .model_dir import read_json
from .saved_cross_encoder import SavedScoring

QWEN3_SYSTEM = (
    "<|im_start|>system\nJudge whether the Document meets the requirements based on the Query"
    ' and the Instruct provided. Note that the answer can only be "yes" or "no".<|im_end|>\n'
    "<|im_start|>user\n"
)
QWEN3_SUFFIX = "<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n"
QWEN3_INSTRUCTION = "Given a web search query, retrieve relevant passages that answer the query"

# FlagEmbedding's FlagLLMReranker (inference/reranker/decoder_only/base.py).
GEMMA_PROMPT = (
    "Given a query A and a passage B, determine whether the passage contains an answer to the"
    " query by providing a prediction of either 'Yes' or 'No'."
)

# mixedbread's mxbai-rerank library, MxbaiRerankV2 (mxbai_rerank/mxbai_rerank_v2.py).
MXBAI_CHAT_PREFIX = (
    "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful"
    " assistant.<|im_end|>\n<|im_start|>user\n"
)
MXBAI_CHAT_SUFFIX = "<|im_end|>\n<|im_start|>assistant\n"
MXBAI_TASK = (
    "You are a search relevance expert who evaluates how well documents match search queries."
    " For each query-document pair, carefully analyze the semantic relationship between them,"
    " then provide your binary relevance judgment (0 for not relevant, 1 for relevant).\n"
    "Relevance:"
)

# Tokens per prompt for LLM rerankers unless RERANK_LLM_MAX_LENGTH says otherwise (the
# model's own limit wins when lower): long enough for a page of text, short enough that
# one request cannot hold a CPU for minutes.
DEFAULT_LLM_MAX_LENGTH = 4096
HEADS = ("causal", "seq-cls")
# The {instruction} field of a piece (not an escaped "{{instruction}}" literal).
_INSTRUCTION_FIELD = re.compile(r"(?<!\{)\{instruction\}(?!\})")
FORMULAS = ("log-odds", "logit")


@dataclasses.dataclass(frozen=True)
class Profile:
    name: str
    # config.json architectures[0] values this profile is recognised by.
    architectures: tuple[str, ...]
    # "causal": the decoder body, last real position, the judged tokens' LM-head rows.
    # "seq-cls": a converted *-seq-cls checkpoint whose one-label head already is the formula.
    head: str
    prefix: tuple[str, ...]
    document: str
    suffix: tuple[str, ...]
    # (true token, false token or None): the text whose first token id is judged.
    judged: tuple[str, str | None] = ("yes", "no")
    # The judged token ids themselves, where a saved configuration names ids (not text).
    judged_ids: tuple[int, int | None] | None = None
    formula: str = "log-odds"
    instruction_format: str = ""
    default_instruction: str | None = None
    # Prepend the tokenizer's BOS (when it has one that is not its pad), as FlagLLMReranker.
    bos: bool = False
    # The model's context (the reference's max_length).
    max_length: int = 8192
    reference: str = ""

    @property
    def takes_instruction(self) -> bool:
        return bool(self.instruction_format)

    @property
    def query_after_document(self) -> bool:
        """The query is in the suffix (a document-first prompt): each query's suffix differs,
        and the prefix its documents share is the template's head alone."""
        return any("{query}" in p for p in self.suffix)

    def with_instruction(self, instruction: str | None
                         ) -> tuple[tuple[str, ...], tuple[str, ...], str]:
        """The prefix and suffix pieces with ``instruction_format`` in the place of their
        ``{instruction}`` field (nothing there without an instruction), and the instruction
        that now fills it (the request's, else the default, else "")."""
        given = instruction or self.default_instruction or ""
        wrapper = self.instruction_format if given else ""

        def placed(pieces: tuple[str, ...]) -> tuple[str, ...]:
            return tuple(_INSTRUCTION_FIELD.sub(lambda _: wrapper, p) for p in pieces)

        return placed(self.prefix), placed(self.suffix), given

    def validate(self) -> None:
        """Every field's type and what the formula needs (reranker.json may set any of
        them): a profile that would fail on the first request is a load error."""
        self._check_types()
        if self.head not in HEADS:
            raise ModelLoadError(f"profile {self.name!r}: head must be one of {HEADS}")
        if self.formula not in FORMULAS:
            raise ModelLoadError(f"profile {self.name!r}: formula must be one of {FORMULAS}")
        if "{document}" not in self.document:
            raise ModelLoadError(f"profile {self.name!r}: the document piece needs {{document}}")
        if sum(p.count("{query}") for p in (*self.prefix, *self.suffix)) != 1:
            raise ModelLoadError(f"profile {self.name!r}: {{query}} must appear once, in the"
                                 " prefix or the suffix")
        false = self.judged[1] if self.judged_ids is None else self.judged_ids[1]
        if self.formula == "log-odds" and self.head == "causal" and false is None:
            raise ModelLoadError(f"profile {self.name!r}: the log-odds formula needs a false"
                                 " token (judged[1]); one judged token takes formula"
                                 ' "logit"')

    def _check_types(self) -> None:
        def wrong(field: str, expected: str) -> ModelLoadError:
            return ModelLoadError(f"profile {self.name!r}: {field} must be {expected}")

        texts = lambda v: isinstance(v, tuple) and all(isinstance(p, str) for p in v)  # noqa: E731
        for field in ("prefix", "suffix"):
            if not texts(getattr(self, field)):
                raise wrong(field, "a list of strings")
        for field in ("head", "document", "formula", "instruction_format", "reference"):
            if not isinstance(getattr(self, field), str):
                raise wrong(field, "a string")
        if not (self.default_instruction is None or isinstance(self.default_instruction, str)):
            raise wrong("default_instruction", "a string or null")
        if not _pair(self.judged, str):
            raise wrong("judged", "[the true token's text, the false token's text or null]")
        if self.judged_ids is not None and not _pair(self.judged_ids, int):
            raise wrong("judged_ids", "[the true token's id, the false token's id or null]")
        if not isinstance(self.bos, bool):
            raise wrong("bos", "true or false")
        if isinstance(self.max_length, bool) or not (isinstance(self.max_length, int)
                                                     and self.max_length > 0):
            raise wrong("max_length", "a positive integer")


def _pair(value, kind: type) -> bool:
    """(true, false-or-None), each of ``kind`` (never a bool)."""
    ok = lambda v: isinstance(v, kind) and not isinstance(v, bool)  # noqa: E731
    return (isinstance(value, tuple) and len(value) == 2 and ok(value[0])
            and (value[1] is None or ok(value[1])))


_QWEN3 = dict(
    prefix=(QWEN3_SYSTEM, "<Instruct>: {instruction}\n<Query>: {query}\n"),
    document="<Document>: {document}",
    suffix=(QWEN3_SUFFIX,),
    judged=("yes", "no"),
    instruction_format="{instruction}",
    default_instruction=QWEN3_INSTRUCTION,
    max_length=8192,
    reference="the Qwen3-Reranker model card (format_instruction, process_inputs)",
)

PROFILES: Mapping[str, Profile] = {
    p.name: p for p in (
        Profile(name="qwen3-reranker", architectures=("Qwen3ForCausalLM",), head="causal",
                **_QWEN3),
        Profile(name="qwen3-reranker-seq-cls", architectures=("Qwen3ForSequenceClassification",),
                head="seq-cls", **_QWEN3),
        Profile(
            name="bge-reranker-v2-gemma", architectures=("GemmaForCausalLM",), head="causal",
            prefix=("A: {query}", "\n"), document="B: {document}", suffix=("\n", "{instruction}"),
            judged=("Yes", None), formula="logit", instruction_format="{instruction}",
            default_instruction=GEMMA_PROMPT, bos=True, max_length=8192,
            reference="FlagEmbedding's FlagLLMReranker (decoder_only/base.py)"),
        Profile(
            name="mxbai-rerank-v2", architectures=("Qwen2ForCausalLM",), head="causal",
            prefix=(MXBAI_CHAT_PREFIX, "{instruction}query: {query}", "\n"),
            document="document: {document}", suffix=("\n", MXBAI_TASK, MXBAI_CHAT_SUFFIX),
            judged=("1", "0"), instruction_format="instruction: {instruction}\n",
            max_length=8192, reference="mixedbread's mxbai-rerank library (MxbaiRerankV2)"),
    )
}
CHAT_TEMPLATE = "chat-template"
# The sentinel a chat template renders in the document's place, to split it into pieces.
_SENTINEL = "\u2063DOCUMENT\u2063"
# ... and in a system message's, to find where an instruction goes.
_INSTRUCTION = "\u2063INSTRUCTION\u2063"


def supported() -> str:
    return ", ".join(f"{p.name} ({p.architectures[0]})" for p in PROFILES.values()) + (
        f", or any *ForCausalLM whose tokenizer's chat template renders 'query' and 'document'"
        f" messages ({CHAT_TEMPLATE}, scored like sentence-transformers' CrossEncoder)")


# Decoder families whose *ForSequenceClassification conversions read a prompt, not a pair
# template: served only with a profile that says the prompt.
DECODER_TYPES = ("qwen2", "qwen3", "llama", "mistral", "gemma", "gemma2", "gemma3", "phi3",
                 "gpt2", "gpt_neox", "olmo", "olmo2")


def is_llm(config: Mapping) -> bool:
    architectures = config.get("architectures") or []
    return bool(architectures) and (
        architectures[0].endswith("ForCausalLM")
        or (architectures[0].endswith("ForSequenceClassification")
            and config.get("model_type") in DECODER_TYPES))


def recognise(config: Mapping, tokenizer, model_dir: str, forced: str = "") -> Profile | None:
    """The profile for this model directory; None for a cross-encoder; ModelLoadError for an
    LLM the engine cannot score correctly."""
    overrides = read_overrides(model_dir)
    name = forced or overrides.pop("name", "")
    saved = saved_cross_encoder.read(model_dir)
    if not name and not overrides and saved is None and not is_llm(config):
        return None
    architecture = (config.get("architectures") or [""])[0]
    _refuse_embedding_model(model_dir, architecture)
    if name and name not in PROFILES and name != CHAT_TEMPLATE:
        raise ModelLoadError(f"profile {name!r} is unknown; supported: {sorted(PROFILES)}"
                             f" or {CHAT_TEMPLATE!r}")
    if name:  # named by the operator: no arbitration
        profile = PROFILES.get(name) or chat_template_profile(tokenizer, saved,
                                                              _head_of(architecture))
    else:
        profile = _directory_profile(architecture, tokenizer, saved, model_dir, config)
    if profile is None:
        raise ModelLoadError(
            f"{model_dir!r} is a {architecture or 'model'} with no reranker profile and no chat"
            " template that declares a query and a document: the engine does not guess a"
            f" prompt. Supported: {supported()}. Name one with RERANK_PROFILE or"
            ' reranker.json\'s "profile"')
    if profile.name == CHAT_TEMPLATE:  # the directory's own prompt, not a family's
        _check_pieces_tokenize_as_whole(profile, tokenizer, saved)
    fields = {f.name for f in dataclasses.fields(Profile)} - {"name", "architectures"}
    unknown = sorted(set(overrides) - fields)
    if unknown:
        raise ModelLoadError(f"{model_dir}/reranker.json: unknown profile keys {unknown};"
                             f" known: {sorted(fields)}")
    changes = {k: tuple(v) if isinstance(v, list) else v for k, v in overrides.items()}
    profile = dataclasses.replace(profile, **changes)
    profile.validate()
    return profile


def _directory_profile(architecture: str, tokenizer, saved: SavedScoring | None,
                       model_dir: str, config: Mapping) -> Profile | None:
    """The family's profile, or the prompt the directory declares itself.

    A chat template that renders a query and a document message, and sentence-transformers'
    saved LogitScore, are the directory's own word on how it is prompted and scored: they
    win over the family an architecture suggests (a fine-tune of Qwen3 with its own prompt
    is a Qwen3ForCausalLM too), unless both prompt and judge alike, where the family's
    profile stays for what it adds (instructions)."""
    family = _by_architecture(architecture)
    head = _head_of(architecture)
    declared = chat_template_profile(tokenizer, saved, head)
    if family is not None and declared is None and saved is None:
        _require_reranker_name(family, architecture, model_dir, config)
    if declared is None and saved is not None:
        judged = [saved.true_id, saved.false_id]
        if family is None or _judged_ids(family, tokenizer) != judged:
            raise ModelLoadError(
                f"{model_dir!r} was saved by sentence-transformers to judge token ids {judged}"
                f" ({saved.source}), but its chat template renders no query and document"
                " message: the engine cannot rebuild its prompt")
        return _saved_length(family, saved)
    if family is None or declared is None:
        return family or declared
    # A converted checkpoint's one-label head is its score: only the prompt can differ.
    same = (_rendered(family, tokenizer) == _rendered(declared, tokenizer)
            and (head == "seq-cls"
                 or _judged_ids(family, tokenizer) == _judged_ids(declared, tokenizer)))
    return _saved_length(family, saved) if same else declared


def _saved_length(family: Profile, saved: SavedScoring | None) -> Profile:
    """The family's profile under the directory's saved max_length, which CrossEncoder
    cuts its prompts to (the family's own limit where it is lower)."""
    if saved is None or not saved.max_length or saved.max_length >= family.max_length:
        return family
    return dataclasses.replace(family, max_length=saved.max_length)


# What the names of the families' rerankers hold (Qwen3-Reranker, bge-reranker-v2-gemma,
# mxbai-rerank-base-v2) and their chat and base models' names do not.
_RERANKER_NAME = re.compile(r"rerank", re.IGNORECASE)


def _require_reranker_name(family: Profile, architecture: str, model_dir: str,
                           config: Mapping) -> None:
    """A family's profile only for a directory that says it is that family's reranker: the
    architecture alone is also its chat and base models' (Qwen3-0.6B is a Qwen3ForCausalLM
    too), whose LM head judges nothing, and their scores would be noise."""
    if _reranker_name(model_dir, config) is None:
        raise ModelLoadError(
            f"{model_dir!r} is a {architecture}, as {family.name} is, but nothing names it a"
            " reranker: the family's chat and base models have the same architecture, and"
            f" their scores would be noise. If it is {family.name}, say so with"
            f" RERANK_PROFILE={family.name} (or reranker.json's \"profile\"); a folder, hub"
            " id or reranker.json model_id whose name holds 'rerank' says so too")


def _reranker_name(model_dir: str, config: Mapping) -> str | None:
    """The name that says this directory is a reranker: the folder's own (or, in a hub
    cache, its repository's: models--Qwen--Qwen3-Reranker-0.6B/snapshots/<sha>), the model
    id reranker.json records (packaging writes it), or config.json's _name_or_path."""
    parts = os.path.realpath(model_dir).split(os.sep)
    names = [parts[-1]] + ([parts[-3]] if len(parts) >= 3 and parts[-2] == "snapshots" else [])
    manifest = read_json(os.path.join(model_dir, "reranker.json"), required=False)
    names += [manifest.get("model_id"), config.get("_name_or_path")]
    return next((n for n in names if isinstance(n, str) and _RERANKER_NAME.search(n)), None)


def _refuse_embedding_model(model_dir: str, architecture: str) -> None:
    """sentence-transformers' modules.json with a Pooling module: an embedding model (a
    Qwen3-Embedding is a Qwen3ForCausalLM too), which embeds and judges nothing."""
    modules = os.path.join(model_dir, "modules.json")
    if not os.path.isfile(modules):
        return
    try:
        with open(modules) as fh:
            listed = json.load(fh)
    except (OSError, ValueError):
        return  # not ours to judge: saved_cross_encoder reports a broken file
    if isinstance(listed, list) and any(
            isinstance(m, dict) and "Pooling" in str(m.get("type", "")) for m in listed):
        raise ModelLoadError(
            f"{model_dir!r} is a sentence-transformers embedding model ({architecture} with a"
            " Pooling module in modules.json): it embeds texts, it does not judge pairs; serve"
            " a reranker")


def _head_of(architecture: str) -> str:
    return "seq-cls" if architecture.endswith("ForSequenceClassification") else "causal"


def _judged_ids(profile: Profile, tokenizer) -> list:
    """[true id, false id or None] (a text of several tokens: its ids, never equal to one)."""
    if profile.judged_ids is not None:
        return list(profile.judged_ids)
    ids = [None if text is None else tokenizer(text, add_special_tokens=False)["input_ids"]
           for text in profile.judged]
    return [i if i is None or len(i) != 1 else i[0] for i in ids]


# A pair to render both prompts with, when deciding whether they are the same prompt.
_PROBE = {"query": "what is the capital of france?",
          "document": "Paris is the capital and largest city of France."}


def _rendered(profile: Profile, tokenizer) -> str:
    """The whole prompt of the probe pair, with the default instruction, as text."""
    prefix, suffix, instruction = profile.with_instruction(None)
    bos = (tokenizer.bos_token or "") if profile.bos else ""
    pieces = (*prefix, profile.document, *suffix)
    return bos + "".join(piece.format(**_PROBE, instruction=instruction) for piece in pieces)


def _by_architecture(architecture: str) -> Profile | None:
    for profile in PROFILES.values():
        if architecture in profile.architectures:
            return profile
    return None


def chat_template_profile(tokenizer, saved: SavedScoring | None = None,
                          head: str = "causal") -> Profile | None:
    """sentence-transformers 6's rule for other decoder rerankers: a chat template that
    renders a ``query`` and a ``document`` message, scored by the saved LogitScore (without
    one, logit("yes") - logit("no")) or, for a ``seq-cls`` head, by that head.  Where the
    template renders a system message outside the document's piece, that is the
    instruction's place (CrossEncoder's ``prompt``; the saved default prompt is the default
    instruction).  The query may come before the document or after it."""
    bare = _render_pair(tokenizer, saved, None)
    if bare is None:
        return None
    slot = _instruction_slot(tokenizer, saved, bare)
    default = saved.system_prompt if saved else None
    if slot is not None and _INSTRUCTION in "".join(_pieces(slot.text, tokenizer)[1:3]):
        slot = None  # inside the document's own piece, which holds nothing but the document
    text = (slot.text if slot else bare if default is None
            else _render_pair(tokenizer, saved, default))
    if text is None:
        return None
    start, label, trailer, tail = _pieces(text, tokenizer)
    judged = {} if saved is None else dict(
        judged_ids=(saved.true_id, saved.false_id),
        formula="log-odds" if saved.false_id is not None else "logit")
    instruction = {} if slot is None else dict(
        instruction_format=_escape(slot.wrapper).replace(_INSTRUCTION, "{instruction}"),
        default_instruction=default or slot.default)
    profile = Profile(name=CHAT_TEMPLATE, architectures=(), head=head,
                      prefix=(_fields(start),) if start else (),
                      document=_escape(label) + "{document}" + _escape(trailer),
                      suffix=(_fields(tail),) if tail else (),
                      max_length=min(8192, saved.max_length or 8192) if saved else 8192,
                      reference=_reference(head, saved), **judged, **instruction)
    return profile


def _check_pieces_tokenize_as_whole(profile: Profile, tokenizer,
                                    saved: SavedScoring | None) -> None:
    """The engine tokenizes the prompt's pieces apart; CrossEncoder tokenizes the rendered
    template whole.  Byte-level BPE (Qwen, Llama 3) splits both alike at the pieces' edges;
    a SentencePiece tokenizer (Mistral, Llama 2, Gemma) marks each piece's start as a word's
    ("▁"), and its rows would differ from the reference's: refused, never scored."""
    from .prompts import PromptEncoder  # which imports this module

    rendered = _render_pair(tokenizer, saved, saved.system_prompt if saved else None)
    query, document = _PROBE["query"], _PROBE["document"]
    text = rendered.replace("{query}", query).replace(_SENTINEL, document)
    reference = tokenizer(text, add_special_tokens=False)["input_ids"]
    ours = PromptEncoder(tokenizer, profile, 1 << 20).encode([(query, document)]).full_rows()
    if ours[0][0] != reference:
        raise ModelLoadError(
            "its tokenizer does not split the chat template's pieces as it splits the whole"
            " prompt (a SentencePiece tokenizer marks where each piece starts): the engine"
            " cannot reproduce CrossEncoder's prompts for this model")


def _pieces(text: str, tokenizer) -> tuple[str, str, str, str]:
    """A rendered pair as (prefix, document label, document trailer, suffix).

    The pieces are tokenized apart, so they must meet where the tokenizer splits anyway
    (": " + "doc" is not ":" + " doc"; "doc." + "\n" is not "doc.\n"): right after a newline
    or at a special token.  The label is what follows the last special token before the
    document where no field lies between them (a newline ending the prefix would merge with
    a document that starts with whitespace: "\n" + "\nText" is not "\n\nText"), else what
    follows the last newline.  Query first, the trailer runs to the first special token
    after it; document first, to the last newline before the query, which starts the
    suffix."""
    start, tail = text.split(_SENTINEL)
    cut = start.rfind("\n") + 1
    specials = [t for t in _special_tokens(tokenizer) if t in start]
    after_special = max((start.rindex(t) + len(t) for t in specials), default=0)
    if after_special < cut and not any(field in start[after_special:]
                                       for field in ("{query}", _INSTRUCTION)):
        cut = after_special
    start, label = start[:cut], start[cut:]
    if "{query}" in start:
        specials = [t for t in _special_tokens(tokenizer) if t in tail]
        end = min((tail.index(t) for t in specials), default=len(tail))
    else:
        end = tail.rfind("\n", 0, tail.index("{query}")) + 1 if "{query}" in tail else 0
    if end == 0 and "{query}" not in start:
        raise ModelLoadError(
            "its chat template renders the query and the document on one line; the engine"
            " tokenizes the document apart from the query, which is exact only where a"
            " newline separates them")
    return start, label, tail[:end], tail[end:]


def _special_tokens(tokenizer) -> set[str]:
    """Every special token: the named ones (bos, eos, pad, ...) and the added ones marked
    special (``<|im_start|>``, a chat format's headers) or written as markup (Qwen3's
    ``<think>``, not marked special), as the prompt encoder keeps them in a template."""
    named = getattr(tokenizer, "all_special_tokens", None) or []
    added = getattr(tokenizer, "added_tokens_decoder", None) or {}
    return {t for t in named if t} | {t.content for t in added.values()
                                      if t.special or MARKUP.fullmatch(t.content)}


# How a control token is written (<think>, <|im_end|>): an added token like this that a
# template uses is the template's, whether its tokenizer marks it special or not.
MARKUP = re.compile(r"<[^<>\s]+>")


def _fields(text: str) -> str:
    """A prefix or suffix piece: {query} and the instruction's place as fields."""
    return _escape(text).replace(_INSTRUCTION, "{instruction}")


def _reference(head: str, saved: SavedScoring | None) -> str:
    scored = ("its one-label head" if head == "seq-cls"
              else f"its saved LogitScore ({saved.source})" if saved else "logit(yes) - logit(no)")
    return f"sentence-transformers' CrossEncoder: the directory's chat template, {scored}"


@dataclasses.dataclass(frozen=True)
class _Slot:
    text: str  # the rendered pair, _INSTRUCTION where the wrapped instruction goes
    wrapper: str  # the system message around _INSTRUCTION
    default: str | None  # what the template writes there when it is given none


def _instruction_slot(tokenizer, saved: SavedScoring | None, bare: str) -> _Slot | None:
    """Where a system message lands in the rendered pair, if it lands there as one stretch
    (outside the query): rendered without a system message (``bare``) and with one, the two texts
    differ by that stretch alone (the template adds it), or by its content alone (the
    template writes a default system text of its own when given none)."""
    marked = _render_pair(tokenizer, saved, _INSTRUCTION)
    if marked is None or marked.count(_INSTRUCTION) != 1:
        return None
    front = len(os.path.commonprefix([bare, marked]))
    back = len(os.path.commonprefix([bare[front:][::-1], marked[front:][::-1]]))
    added, removed = marked[front:len(marked) - back], bare[front:len(bare) - back]
    if _INSTRUCTION not in added or "{query}" in added:
        return None
    text = marked[:front] + _INSTRUCTION + marked[len(marked) - back:]
    if not removed:
        return _Slot(text, added, None)
    specials = getattr(tokenizer, "all_special_tokens", [])
    if added == _INSTRUCTION and not any(t and t in removed for t in specials):
        return _Slot(text, _INSTRUCTION, removed)
    return None


def _render_pair(tokenizer, saved: SavedScoring | None, system: str | None) -> str | None:
    """The chat template's text for a query placeholder and a document sentinel (after a
    ``system`` message, if given), in the message format the template reads (plain or typed
    content); None if it renders them not exactly once each."""
    template = getattr(tokenizer, "chat_template", None)
    if not isinstance(template, str) or "query" not in template or "document" not in template:
        return None
    kwargs = dict(saved.chat_kwargs) if saved else {}
    saved_format = saved.message_format if saved else None
    formats = [saved_format == "structured"] if saved_format else [False, True]
    for typed in formats:
        def message(role, text, typed=typed):
            return {"role": role, "content": [{"type": "text", "text": text}] if typed else text}
        messages = [message("query", "{query}"), message("document", _SENTINEL)]
        if system is not None:
            messages.insert(0, message("system", system))
        try:
            text = tokenizer.apply_chat_template(messages, tokenize=False, **kwargs)
        except Exception:  # noqa: BLE001 - a template that cannot render the pair
            continue
        if isinstance(text, str) and text.count(_SENTINEL) == 1 and text.count("{query}") == 1:
            return text
    return None


def _escape(text: str) -> str:
    """Rendered template text as a str.format piece: only {query} stays a field."""
    return text.replace("{", "{{").replace("}", "}}").replace("{{query}}", "{query}")


def read_overrides(model_dir: str) -> dict:
    """reranker.json's "profile": a profile's name, or an object with "name" and the fields
    it changes (the file is also the packaged model's manifest: other keys are not ours)."""
    path = os.path.join(model_dir, "reranker.json")
    data = read_json(path, required=False)
    profile = data.get("profile")
    if profile is None:
        return {}
    if isinstance(profile, str):
        return {"name": profile}
    if not isinstance(profile, dict):
        raise ModelLoadError(f'{path}: "profile" must be a name or an object')
    return dict(profile)
