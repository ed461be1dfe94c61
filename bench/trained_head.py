"""A MiniLM-L6 whose head is trained for a few seconds on synthetic relevance.

The benchmark's MiniLM has a pretrained body and a random head: its 100 logits per query
sit in a narrow band, so a quantization error of 1e-3 swaps neighbours and Kendall tau says
little about what int8 or bf16 would do to a real reranker.  Here the head learns to score a
document by how much of the query it contains (positives: the query's words spliced into
a passage; negatives: a passage without them), from the frozen body's pooled output.  The
scores then spread like a trained reranker's, and rank agreement means something.
"""

from __future__ import annotations

import random
import shutil
from pathlib import Path

import numpy as np

from .workloads import WORDS

PAIRS = 256
STEPS = 300


def synthetic_pairs(n: int, seed: int = 0) -> tuple[list[tuple[str, str]], np.ndarray]:
    rng = random.Random(seed)
    words = list(dict.fromkeys(WORDS))
    pairs, labels = [], []
    for i in range(n):
        query = rng.sample(words, 3)
        passage = rng.choices([w for w in words if w not in query], k=rng.randint(8, 40))
        relevant = i % 2 == 0
        if relevant:
            for word in query[: rng.randint(2, 3)]:
                passage.insert(rng.randrange(len(passage) + 1), word)
        pairs.append((" ".join(query), " ".join(passage)))
        labels.append(1.0 if relevant else 0.0)
    return pairs, np.array(labels, dtype=np.float32)


def train_head(source: Path, out: Path, seed: int = 0) -> Path:
    """Copy ``source`` to ``out`` with its classifier fitted to :func:`synthetic_pairs`."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(source)
    model = AutoModelForSequenceClassification.from_pretrained(source).eval()
    pairs, labels = synthetic_pairs(PAIRS, seed)
    enc = tokenizer([q for q, _ in pairs], [d for _, d in pairs], padding=True,
                    truncation="only_second", max_length=128, return_tensors="pt")
    with torch.inference_mode():  # the body is frozen: its pooled output, computed once
        pooled = model.base_model(**enc).pooler_output
    head = model.classifier
    torch.manual_seed(seed)
    optimizer = torch.optim.Adam(head.parameters(), lr=0.05)
    target = torch.from_numpy(labels)[:, None]
    features = pooled.clone()
    for _ in range(STEPS):
        optimizer.zero_grad()
        loss = torch.nn.functional.binary_cross_entropy_with_logits(head(features), target)
        loss.backward()
        optimizer.step()
    partial = out.with_name(out.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    model.save_pretrained(partial, safe_serialization=True)
    tokenizer.save_pretrained(partial)
    shutil.rmtree(out, ignore_errors=True)
    partial.rename(out)
    return out
