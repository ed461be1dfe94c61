"""LLM rerankers built offline: the real families' architectures on the real Qwen vocabulary.

Random weights (initialised wide enough that yes/no logits differ by O(1), so parity checks
mean something), real tokenizers, saved with ``save_pretrained`` as the hub ships them:

* ``qwen3_reranker``: Qwen3ForCausalLM (Qwen3-Reranker), judged "yes"/"no".
* ``qwen3_seq_cls``: the same model converted to Qwen3ForSequenceClassification the way the
  ``*-seq-cls`` checkpoints are (one label: the "yes" row minus the "no" row of the LM head).
* ``mxbai_v2``: Qwen2ForCausalLM (mxbai-rerank-base/large-v2), judged "1"/"0".
* ``bge_gemma``: GemmaForCausalLM (bge-reranker-v2-gemma) on the Qwen BPE vocabulary with a
  ``<bos>`` and a ``<pad>`` token added: no Gemma SentencePiece model ships on PyPI, and the
  FlagEmbedding scoring rule only needs "Yes" to be one token (it is, 9454).
* ``chat_template_llm``: a LlamaForCausalLM of no known family whose chat template renders a
  query and a document message (scored as sentence-transformers 6's CrossEncoder does).
* ``qwen3_reranker_shape``: Qwen3-Reranker-0.6B's exact shape for benchmarks.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import torch
import transformers

from reranker import profiles

from .qwen_tokenizer import QWEN3_VOCAB, qwen_tokenizer

TINY = dict(hidden_size=16, intermediate_size=32, num_hidden_layers=2, num_attention_heads=2,
            num_key_value_heads=1, head_dim=8)
# Wide random weights: the default 0.02 leaves every logit near zero.
INIT_RANGE = 0.3
# Qwen3-Reranker-0.6B's config.json.
QWEN3_06B = dict(hidden_size=1024, intermediate_size=3072, num_hidden_layers=28,
                 num_attention_heads=16, num_key_value_heads=8, head_dim=128,
                 max_position_embeddings=40960, rope_theta=1_000_000, rms_norm_eps=1e-6,
                 tie_word_embeddings=True)


def _literal(text: str) -> str:
    """``text`` as a Jinja expression: printed literally, trailing newlines kept."""
    return "{{ " + json.dumps(text) + " }}"


# The Qwen3-Reranker model card's prompt as a chat template with "query" and "document"
# messages: what sentence-transformers' CrossEncoder renders for a causal LM, so it scores
# the same prompt as the card (and as the engine's qwen3-reranker profile).
QWEN3_RERANKER_CHAT_TEMPLATE = (
    _literal(profiles.QWEN3_SYSTEM + f"<Instruct>: {profiles.QWEN3_INSTRUCTION}\n<Query>: ")
    + "{{ (messages | selectattr('role', 'eq', 'query') | first).content }}"
    + _literal("\n<Document>: ")
    + "{{ (messages | selectattr('role', 'eq', 'document') | first).content }}"
    + _literal(profiles.QWEN3_SUFFIX)
)


def _save(model, tokenizer, out: Path) -> Path:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)
    return out


def _qwen3_config(**shape):
    return transformers.Qwen3Config(
        vocab_size=QWEN3_VOCAB, max_position_embeddings=shape.pop("max_position_embeddings", 8192),
        initializer_range=shape.pop("initializer_range", INIT_RANGE), bos_token_id=151643,
        eos_token_id=151645, pad_token_id=151643,
        tie_word_embeddings=shape.pop("tie_word_embeddings", False), **shape)


def qwen3_reranker(out: Path, seed: int = 0, chat_template: bool = False, **shape) -> Path:
    """``chat_template``: the tokenizer carries the card's prompt as a chat template (how
    sentence-transformers' CrossEncoder prompts a causal LM)."""
    tokenizer = qwen_tokenizer()
    if chat_template:
        tokenizer.chat_template = QWEN3_RERANKER_CHAT_TEMPLATE
    torch.manual_seed(seed)
    model = transformers.Qwen3ForCausalLM(_qwen3_config(**{**TINY, **shape}))
    return _save(model, tokenizer, out)


def qwen3_reranker_shape(out: Path, seed: int = 0, num_hidden_layers: int = 28) -> Path:
    """Qwen3-Reranker-0.6B's architecture (random weights: the same compute), with the
    card's prompt as its chat template so CrossEncoder can be compared on it."""
    shape = {**QWEN3_06B, "num_hidden_layers": num_hidden_layers, "initializer_range": 0.02}
    return qwen3_reranker(out, seed=seed, chat_template=True, **shape)


def qwen3_seq_cls(out: Path, seed: int = 0) -> Path:
    """A Qwen3-Reranker converted to one-label sequence classification: score = the LM head's
    "yes" row minus its "no" row, so its logit is the causal model's log-odds."""
    tokenizer = qwen_tokenizer()
    torch.manual_seed(seed)
    causal = transformers.Qwen3ForCausalLM(_qwen3_config(**TINY))
    config = _qwen3_config(**TINY, num_labels=1)
    model = transformers.Qwen3ForSequenceClassification(config)
    model.model.load_state_dict(causal.model.state_dict())
    yes, no = tokenizer.convert_tokens_to_ids(["yes", "no"])
    with torch.no_grad():
        head = causal.lm_head.weight
        model.score.weight.copy_((head[yes] - head[no])[None, :])
    return _save(model, tokenizer, out)


def mxbai_v2(out: Path, seed: int = 0) -> Path:
    tokenizer = qwen_tokenizer()
    config = transformers.Qwen2Config(
        vocab_size=QWEN3_VOCAB, max_position_embeddings=8192, initializer_range=INIT_RANGE,
        bos_token_id=151643, eos_token_id=151645, pad_token_id=151643,
        tie_word_embeddings=False,
        **{k: v for k, v in TINY.items() if k != "head_dim"})
    torch.manual_seed(seed)
    return _save(transformers.Qwen2ForCausalLM(config), tokenizer, out)


def bge_gemma(out: Path, seed: int = 0) -> Path:
    tokenizer = qwen_tokenizer(extra_special=("<bos>", "<pad>"), bos_token="<bos>",
                               pad_token="<pad>", eos_token="<|endoftext|>")
    config = transformers.GemmaConfig(
        vocab_size=len(tokenizer), max_position_embeddings=8192, initializer_range=INIT_RANGE,
        bos_token_id=tokenizer.bos_token_id, pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id, tie_word_embeddings=True, **TINY)
    torch.manual_seed(seed)
    return _save(transformers.GemmaForCausalLM(config), tokenizer, out)


# A prompt with an instruction, the query and the document, as a chat template.
JUDGE_CHAT_TEMPLATE = (
    profiles.QWEN3_SYSTEM + "<Instruct>: judge\n<Query>: "
    "{{ (messages | selectattr('role', 'eq', 'query') | first).content }}\n<Document>: "
    "{{ (messages | selectattr('role', 'eq', 'document') | first).content }}"
    + profiles.QWEN3_SUFFIX)


def chat_template_llm(out: Path, seed: int = 0) -> Path:
    tokenizer = qwen_tokenizer()
    tokenizer.chat_template = JUDGE_CHAT_TEMPLATE
    config = transformers.LlamaConfig(vocab_size=len(tokenizer), hidden_size=16,
                                      intermediate_size=32, num_hidden_layers=2,
                                      num_attention_heads=2, num_key_value_heads=1,
                                      initializer_range=INIT_RANGE, pad_token_id=151643)
    torch.manual_seed(seed)
    return _save(transformers.LlamaForCausalLM(config), tokenizer, out)


# A fine-tune's own prompt: a system message when a default prompt sends one, then the
# query and the passage, answered 1 or 0.
FINE_TUNE_CHAT_TEMPLATE = (
    "{% for m in messages %}{% if m.role == 'system' %}<|im_start|>system\n{{ m.content }}"
    "<|im_end|>\n{% endif %}{% endfor %}<|im_start|>user\nRate 1 or 0.\nQuery: "
    "{{ (messages | selectattr('role', 'eq', 'query') | first).content }}\nPassage: "
    "{{ (messages | selectattr('role', 'eq', 'document') | first).content }}<|im_end|>\n"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def saved_cross_encoder(out: Path, seed: int = 0, template: str = FINE_TUNE_CHAT_TEMPLATE,
                        judged: tuple[str, str | None] = ("1", "0"), prompt: str | None = None,
                        chat_kwargs: dict | None = None, weights: Path | None = None) -> Path:
    """A Qwen3ForCausalLM (Qwen3-Reranker's architecture) fine-tuned elsewhere and saved by
    sentence-transformers' CrossEncoder: its own chat ``template``, a LogitScore judging
    ``judged``, a default ``prompt`` and template arguments ``chat_kwargs`` if given; the
    weights of ``weights`` (a qwen3_reranker directory) when given, else new ones."""
    from sentence_transformers import CrossEncoder  # the full install's, not serving's

    out = Path(out)
    base = out.with_name(out.name + "-base")
    if weights is None:
        qwen3_reranker(base, seed)
    else:
        shutil.copytree(weights, base)
    (base / "chat_template.jinja").write_text(template)  # where transformers 5 reads it
    model = CrossEncoder(str(base), device="cpu", prompts={"rerank": prompt} if prompt else None,
                         default_prompt_name="rerank" if prompt else None)
    true, false = (None if t is None else model.tokenizer.convert_tokens_to_ids(t)
                   for t in judged)
    model[1].true_token_id, model[1].false_token_id = true, false
    if chat_kwargs:
        model[0].processing_kwargs = {"chat_template": chat_kwargs}
    model.save(str(out))
    shutil.rmtree(base)
    return out


BUILDERS = {"qwen3": qwen3_reranker, "qwen3-seq-cls": qwen3_seq_cls, "mxbai-v2": mxbai_v2,
            "gemma": bge_gemma, "chat-template": chat_template_llm,
            "sentence-transformers": saved_cross_encoder}
