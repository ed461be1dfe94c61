"""The Qwen3-Reranker-0.6B shape: an LLM reranker, measured once the engine serves one.

The engine scores it only if it scores it right: the model card's computation (its prompt
around instruction, query and document; softmax over the logits of "no" and "yes" at the
last position, in fp32) is the reference.  If the engine refuses the directory, or loads
it but scores unlike that reference (a sequence-classification head bolted on a causal
LM), this part is skipped with that reason.  Otherwise it runs like the encoder shapes:
parity, then pairs/s in bf16 and fp16 against CrossEncoder (sentence-transformers loads
``*ForCausalLM`` checkpoints as yes/no rerankers) where that loads.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from . import encoders
from .results import Results, Skip

PREFIX = ("<|im_start|>system\nJudge whether the Document meets the requirements based on"
          " the Query and the Instruct provided. Note that the answer can only be \"yes\" or"
          " \"no\".<|im_end|>\n<|im_start|>user\n")
SUFFIX = "<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n"
INSTRUCTION = "Given a web search query, retrieve relevant passages that answer the query"
PROBE_TOLERANCE = 1e-4
# Seconds a peer needs left to start: loading 2.4 GB and compiling the MLPs and norms with
# Inductor takes about a minute before the first request is timed.
PEER_SECONDS = {"ours bf16 compiled": 90}
# Qwen3-Reranker's context, as the model card truncates: CrossEncoder's default of 512
# would cut the prompt's end off long documents (another computation, fewer tokens).
MAX_LENGTH = 8192


def reference_scores(model_dir: Path, device: str, requests
                     ) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """The model card's computation, one pair at a time, fp32: per request, the relevance
    softmax([no, yes])[1] and the raw score logit(yes) - logit(no) (its log-odds)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).to(device)
    model.eval()
    yes, no = tokenizer.convert_tokens_to_ids("yes"), tokenizer.convert_tokens_to_ids("no")
    relevance, raw = [], []
    with torch.inference_mode():
        for query, docs in requests:
            scores, odds = [], []
            for doc in docs:
                text = (f"{PREFIX}<Instruct>: {INSTRUCTION}\n<Query>: {query}\n"
                        f"<Document>: {doc}{SUFFIX}")
                ids = tokenizer(text, return_tensors="pt", truncation=True,
                                max_length=MAX_LENGTH)["input_ids"].to(device)
                # Only the last position's logits: the full [tokens, 151k] would not fit.
                logits = model(input_ids=ids, logits_to_keep=1).logits[0, -1].float()
                pair = torch.stack([logits[no], logits[yes]])
                scores.append(float(torch.softmax(pair, 0)[1]))
                odds.append(float(pair[1] - pair[0]))
            relevance.append(np.asarray(scores))
            raw.append(np.asarray(odds))
    del model
    encoders.empty_cache(device)
    return relevance, raw


def probe(model_dir: Path, device: str, requests, references) -> float:
    """Max |engine relevance - reference|; Skip when the engine cannot serve the model."""
    from reranker.engine import Reranker
    from reranker.settings import Settings

    try:
        engine = Reranker.from_dir(str(model_dir), Settings(device=device, dtype="float32",
                                                            max_length=MAX_LENGTH))
    except Exception as exc:
        raise Skip(f"the engine does not load Qwen3ForCausalLM yet:"
                   f" {type(exc).__name__}: {str(exc)[:300]}") from exc
    try:
        diff = max(float(np.abs(np.asarray(engine.score(q, d)) - ref).max())
                   for (q, d), ref in zip(requests, references))
    finally:
        engine.close()
    if diff > PROBE_TOLERANCE:
        raise Skip(f"the engine loads Qwen3ForCausalLM but does not score it as"
                   f" Qwen3-Reranker (max |diff| {diff:.3g} against the model card's yes/no"
                   f" computation): no LLM-reranker support yet")
    return diff


def measure(model_dir: Path, *, device: str, quick: bool, gemm_flops: float,
            results: Results, key: tuple[str, ...], time_left) -> dict:
    sets = encoders.request_sets(quick, heavy=True)
    checked = encoders.parity_requests(sets, quick)
    relevance, raw = reference_scores(model_dir, device, checked)
    results.put(key + ("probe_max_abs",), probe(model_dir, device, checked, relevance))
    for label, build in _builders(model_dir, device, results, key).items():
        if time_left() < PEER_SECONDS.get(label, 30):
            results.put(key + ("peers", label), {"skipped": "time budget spent"})
            continue
        try:
            # Peers report raw scores: compared with the reference's log-odds.
            row = encoders.run_peer(build, sets, checked, raw,
                                    {name: 0.0 for name in sets}, gemm_flops, device)
        except Exception as exc:
            row = {"error": f"{type(exc).__name__}: {exc}"[:500]}
        results.put(key + ("peers", label), row)
    return {}


def _builders(model_dir: Path, device: str, results: Results, key: tuple[str, ...]) -> dict:
    """The encoders' peers, then our engine in bf16 with RERANK_COMPILE where Inductor can
    build kernels (a C++ compiler on CPU, Triton on CUDA): last, so that a short budget
    drops it before CrossEncoder."""
    from reranker.backends.regional_compile import missing_toolchain

    from ..peers import EnginePeer

    builders = encoders.peer_builders(model_dir, device, MAX_LENGTH)
    missing = missing_toolchain(device)
    if missing:
        results.put(key + ("peers", "ours bf16 compiled"), {"skipped": missing})
        return builders
    mode = "bf16-cuda-compiled" if device == "cuda" else "bf16-compiled"
    builders["ours bf16 compiled"] = lambda: EnginePeer(model_dir, mode, device=device)
    return builders
