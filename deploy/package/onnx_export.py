"""Export a cross-encoder to ONNX (fp32, or int8 by dynamic quantization), checked against torch.

``export_onnx(model_dir, out_dir, quantize=..., tolerance=...)`` writes ``out_dir/onnx/``:
``model.onnx`` (fp32) or ``model_int8.onnx`` (int8), and ``report.json``.  Before anything
lands there, the exported graph is run through the engine's own ONNX backend on a fixed
probe set (queries x documents of mixed lengths, padded batches) and compared with the
torch model: fp32 must agree within 1e-4 (raw logits); int8 must keep its largest score
difference (relevance scores, 0..1, what clients see) within ``tolerance``.  A refused
export leaves ``out_dir`` as it was.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

from deploy.errors import UserError
from deploy.package import model_kind
from reranker import model_dir as model_facts

OPSET = 17
FP32_TOLERANCE = 1e-4
TOP_K = 10
# Protobuf cannot hold more than 2 GB: larger weights (bge-reranker-large, -v2-m3 in fp32)
# go to one side file, onnx/model.onnx.data, which ONNX Runtime reads from the same folder.
PROTOBUF_LIMIT = 2_000_000_000
PROBE_ROWS = 8  # pairs per probe batch

PROBE_QUERIES = [
    "what is the capital of the united states",
    "how do giant pandas survive on a diet of bamboo",
    "symptoms of vitamin d deficiency in adults",
    "best way to reduce latency of a search cluster under heavy load",
]
_SENTENCES = [
    "Washington, D.C. is the capital city of the United States of America.",
    "The giant panda is a bear species endemic to China; it eats almost only bamboo.",
    "Carson City is the capital of the American state of Nevada.",
    "Vitamin D deficiency can cause fatigue, bone pain, muscle weakness and low mood.",
    "Search latency grows when shards are unbalanced and caches are cold.",
    "Harlem was the birthplace of the Harlem Renaissance in the 1920s.",
    "Pandas spend ten to sixteen hours a day feeding, mostly on bamboo shoots and leaves.",
    "Adding replicas spreads query load, while fewer, larger shards cut coordination cost.",
    "Sunlight on the skin is the main natural source of vitamin D for most people.",
    "The United States Capitol is where Congress meets, on Capitol Hill in Washington.",
    "A super hero mystery action movie about bats opened in theaters last summer.",
    "Rice, wheat and maize supply about half of the calories eaten by people worldwide.",
]


def probe_documents() -> list[str]:
    """21 deterministic documents: single words, sentences, paragraphs, a section and a
    page that must be truncated, so padding and truncation are both exercised."""
    s = _SENTENCES
    docs = ["bamboo", "capital", "vitamin", "cache"]
    docs += s
    docs += [" ".join(s[i:i + 3]) for i in (0, 3, 6)]
    docs += [" ".join(s[5:] + s[:5])]
    docs += [" ".join(s[::-1] * 6)]
    return docs


class ExportRefused(UserError):
    """The exported graph does not score like the torch model within the tolerance."""


def export_onnx(model_dir: Path, out_dir: Path, *, quantize: bool, tolerance: float) -> dict:
    """Export, verify and install ``out_dir/onnx/``; return the report (also in report.json)."""
    model_dir, out_dir = Path(model_dir), Path(out_dir)
    model_kind.refuse_llm(model_kind.read_config(model_dir), "ONNX export",
                          "serve it with the torch backend on a GPU instance")
    if not tolerance > 0:
        raise UserError(f"the ONNX tolerance must be a positive number, not {tolerance}")
    out_dir.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".onnx-export-", dir=out_dir))
    try:
        report = _export_and_verify(model_dir, work, quantize, tolerance)
        # Timings vary run to run; the file stays byte-stable so archives are reproducible.
        (work / "report.json").write_text(json.dumps(without_timings(report), indent=2,
                                                     sort_keys=True) + "\n")
        _progress(", ".join(f"{k.replace('_pairs_per_second', '')} {v} pairs/s"
                            for k, v in report.items() if k.endswith("_per_second"))
                  + " on the probe")
        _install(work, out_dir / "onnx")
        return report
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _export_and_verify(model_dir: Path, work: Path, quantize: bool, tolerance: float) -> dict:
    model, tokenizer, config = _load_torch(model_dir)
    facts = model_facts.read(model_dir)
    batches = probe_batches(tokenizer, facts.max_length, facts.segments)
    _torch_logits(model, batches[:1])  # warm-up, as the ONNX backend's load-time probe
    started = time.perf_counter()
    reference = _torch_logits(model, batches)
    torch_seconds = time.perf_counter() - started
    inputs = [n for n in ("input_ids", "attention_mask", "token_type_ids")
              if n in batches[0]]
    fp32_path = work / "model.onnx"
    _progress(f"exporting {model_dir.name} to ONNX (opset {OPSET})")
    # Eager attention exports to plain ONNX ops that every runtime (and Vespa) runs; the
    # reference above used SDPA where the model has it, as the engine's torch backend does.
    model.set_attn_implementation("eager")
    _torch_export(model, batches[0], inputs, fp32_path)
    weight_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
    del model
    _consolidate(fp32_path, weight_bytes > PROTOBUF_LIMIT)
    _annotate(fp32_path, config, "float32")
    fp32 = _compare(model_dir, fp32_path, batches, reference)
    report = {
        "variant": "int8" if quantize else "fp32",
        "opset": OPSET,
        "inputs": ",".join(_graph_inputs(fp32_path)),
        "probe_pairs": int(sum(len(b["input_ids"]) for b in batches)),
        "fp32_max_abs_logit_diff": fp32["max_abs_logit_diff"],
        "fp32_max_abs_score_diff": fp32["max_abs_score_diff"],
        "torch_pairs_per_second": _rate(batches, torch_seconds),
        "fp32_pairs_per_second": fp32["pairs_per_second"],
        "fp32": fp32,
    }
    fp32_limit = FP32_TOLERANCE if quantize else tolerance
    if fp32["max_abs_logit_diff"] > fp32_limit:
        raise ExportRefused(
            f"the fp32 ONNX graph differs from torch by {fp32['max_abs_logit_diff']:.3g}"
            f" (limit {fp32_limit:g}): not shipping it; nothing was written"
        )
    if quantize:
        report.update(_quantize_and_check(model_dir, work, fp32_path, config, batches,
                                          reference, tolerance))
        for item in work.glob("model.onnx*"):  # the fp32 graph and its weights file
            item.unlink()
    report["file"] = f"onnx/{'model_int8.onnx' if quantize else 'model.onnx'}"
    report["bytes"] = os.path.getsize(work / Path(report["file"]).name)
    report["tolerance"] = tolerance
    return report


def _quantize_and_check(model_dir, work, fp32_path, config, batches, reference, tolerance):
    from onnxruntime.quantization import QuantType, quantize_dynamic

    int8_path = work / "model_int8.onnx"
    _progress("quantizing to int8 (dynamic; int8 weights per output channel)")
    with warnings.catch_warnings(), _quiet_root_logger():
        warnings.simplefilter("ignore")
        # Per-channel weight scales halve the score deviation of per-tensor ones on MiniLM
        # (measured), at the same speed.
        quantize_dynamic(str(fp32_path), str(int8_path), weight_type=QuantType.QInt8,
                         per_channel=True)
    _annotate(int8_path, config, "int8")
    int8 = _compare(model_dir, int8_path, batches, reference)
    out = {
        "int8_max_abs_score_diff": int8["max_abs_score_diff"],
        "int8_max_abs_logit_diff": int8["max_abs_logit_diff"],
        "int8_min_spearman": min(int8["spearman"]),
        "int8_min_top10_overlap": min(int8["top10_overlap"]),
        "int8_pairs_per_second": int8["pairs_per_second"],
        "int8": int8,
    }
    if int8["max_abs_score_diff"] > tolerance:
        raise ExportRefused(
            f"the int8 model's scores differ from torch by up to"
            f" {int8['max_abs_score_diff']:.3g} (tolerance {tolerance:g}; Spearman >="
            f" {out['int8_min_spearman']:.3f}, top-{TOP_K} overlap >="
            f" {out['int8_min_top10_overlap']:.2f}): not shipping it; nothing was written."
            " Use --onnx fp32, or raise --onnx-tolerance if that is acceptable"
        )
    return out


# ---- the probe set -------------------------------------------------------------------

def probe_batches(tokenizer, max_length: int, segments: bool = False) -> list[dict]:
    """The probe as the engine batches it: its PairEncoder (the document cut first) and
    its batch planner (sorted by length, padded per batch), ``PROBE_ROWS`` rows a batch.
    Batches never mix queries, so each query's documents can be ranked on their own."""
    from reranker.batching import pad_batch, plan_batches
    from reranker.encoding import PairEncoder
    from reranker.settings import Settings

    settings = Settings()
    encoder = PairEncoder(tokenizer, min(settings.max_length, max_length),
                          settings.max_query_share, segments=segments)
    docs = probe_documents()
    batches = []
    for query in PROBE_QUERIES:
        enc = encoder.encode([(query, d) for d in docs])
        lengths = [len(row) for row in enc.ids]
        for picked in plan_batches(lengths, token_budget=10**9, max_rows=PROBE_ROWS):
            ids, mask = pad_batch([enc.ids[i] for i in picked], encoder.pad_id)
            batch = {"input_ids": ids, "attention_mask": mask}
            if enc.type_ids is not None:
                batch["token_type_ids"] = pad_batch([enc.type_ids[i] for i in picked], 0)[0]
            batches.append(batch)
    return batches


def _per_query(logits: list[np.ndarray]) -> list[np.ndarray]:
    """Rows of each probe query, in the (sorted) order probe_batches produced them."""
    per = -(-len(probe_documents()) // PROBE_ROWS)  # batches per query
    return [np.concatenate(logits[i:i + per]) for i in range(0, len(logits), per)]


# ---- torch side ----------------------------------------------------------------------

def _load_torch(model_dir: Path):
    import transformers

    from reranker.backends.torch_backend import TorchBackend

    config = json.loads((model_dir / "config.json").read_text())
    # A sharded checkpoint has its index instead of model.safetensors.
    safetensors = any((model_dir / name).exists()
                      for name in ("model.safetensors", "model.safetensors.index.json"))
    try:
        tokenizer = transformers.AutoTokenizer.from_pretrained(model_dir)
        # The engine's own model, with its last-layer shortcut: the graph inherits it.
        model = TorchBackend(str(model_dir), device="cpu", dtype="float32",
                             trust_remote_code=False, use_safetensors=safetensors).model
    except (OSError, ValueError) as exc:
        raise UserError(f"cannot load {model_dir} with transformers: {exc}") from None
    return model.eval(), tokenizer, config


def _torch_logits(model, batches: list[dict]) -> list[np.ndarray]:
    import torch

    out = []
    with torch.inference_mode():
        for batch in batches:
            feed = {k: torch.from_numpy(v) for k, v in batch.items()}
            out.append(model(**feed).logits.float().numpy())
    return out


def _torch_export(model, example: dict, inputs: list[str], path: Path) -> None:
    import torch

    class Logits(torch.nn.Module):
        """Positional inputs in a fixed order, logits out."""

        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, *args):
            return self.inner(**dict(zip(inputs, args))).logits

    wrapper = Logits(model).eval()
    args = tuple(torch.from_numpy(example[n][:2]) for n in inputs)
    axes = {n: {0: "batch", 1: "sequence"} for n in inputs}
    axes["logits"] = {0: "batch"}
    with warnings.catch_warnings():
        # The TorchScript exporter warns about Python-side constants in the mask code; the
        # probe comparison below is what proves the graph right for every shape.
        warnings.simplefilter("ignore")
        torch.onnx.export(wrapper, args, str(path), dynamo=False, input_names=inputs,
                          output_names=["logits"], dynamic_axes=axes, opset_version=OPSET,
                          do_constant_folding=True)


# ---- ONNX side -----------------------------------------------------------------------

def _consolidate(path: Path, external: bool) -> None:
    """One self-contained file, or (beyond protobuf's limit) the graph plus one weights
    file, instead of the per-tensor files the exporter writes for large models."""
    import onnx

    strays = [p for p in path.parent.iterdir() if p != path]
    if not external and not strays:
        return
    model = onnx.load(str(path))  # pulls in any per-tensor files written beside it
    for stray in strays:
        stray.unlink()
    if external:
        onnx.save_model(model, str(path), save_as_external_data=True,
                        all_tensors_to_one_file=True, location=path.name + ".data",
                        size_threshold=1024)
    else:
        onnx.save_model(model, str(path))


def _annotate(path: Path, config: dict, precision: str) -> None:
    """Record which model the graph came from; the ONNX backend checks it at load."""
    import onnx

    from reranker.backends.onnx_backend import META_PREFIX

    # Graph only: weights in a side file stay where they are, referenced by name.
    model = onnx.load(str(path), load_external_data=False)
    facts = {"model_type": config.get("model_type"), "vocab_size": config.get("vocab_size"),
             "num_labels": model_facts.num_labels(config), "precision": precision}
    del model.metadata_props[:]
    for key, value in facts.items():
        if value is not None:
            entry = model.metadata_props.add()
            entry.key, entry.value = META_PREFIX + key, str(value)
    onnx.save(model, str(path))


def _graph_inputs(path: Path) -> list[str]:
    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph
    initializers = {i.name for i in graph.initializer}
    return [i.name for i in graph.input if i.name not in initializers]


def _compare(model_dir: Path, path: Path, batches, reference) -> dict:
    """Run the graph through the engine's ONNX backend (the serving code) on the probe."""
    from reranker import scoring
    from reranker.backends.base import ModelLoadError
    from reranker.backends.onnx_backend import OnnxBackend
    from reranker.settings import Settings

    try:
        backend = OnnxBackend(str(model_dir), settings=Settings(), path=str(path))
    except ModelLoadError as exc:
        raise ExportRefused(f"the exported graph does not load: {exc}") from None
    started = time.perf_counter()
    got = [backend.forward(b["input_ids"], b["attention_mask"], b.get("token_type_ids"))
           for b in batches]
    seconds = time.perf_counter() - started
    logit_diff = max(float(np.abs(g - r).max()) for g, r in zip(got, reference))
    spearman, overlap, score_diff = [], [], 0.0
    for g, r in zip(_per_query(got), _per_query(reference)):
        ref_rel, got_rel = scoring.relevance_scores(r), scoring.relevance_scores(g)
        score_diff = max(score_diff, float(np.abs(ref_rel - got_rel).max()))
        spearman.append(round(spearman_rho(scoring.raw_scores(r), scoring.raw_scores(g)), 6))
        overlap.append(top_k_overlap(scoring.raw_scores(r), scoring.raw_scores(g), TOP_K))
    return {"max_abs_logit_diff": logit_diff, "max_abs_score_diff": score_diff,
            "spearman": spearman, "top10_overlap": overlap,
            "pairs_per_second": _rate(batches, seconds)}


def without_timings(report: dict) -> dict:
    return {k: without_timings(v) if isinstance(v, dict) else v
            for k, v in report.items() if "per_second" not in k}


def spearman_rho(a: np.ndarray, b: np.ndarray) -> float:
    ra, rb = _ranks(np.asarray(a, float)), _ranks(np.asarray(b, float))
    if ra.std() == 0 or rb.std() == 0:
        return 1.0 if np.array_equal(ra, rb) else 0.0
    return float(np.corrcoef(ra, rb)[0, 1])


def _ranks(x: np.ndarray) -> np.ndarray:
    """Ranks with ties averaged (what scipy.stats.rankdata does)."""
    order = np.argsort(x, kind="stable")
    ranks = np.empty(len(x))
    ranks[order] = np.arange(len(x), dtype=float)
    for value in np.unique(x):
        tied = x == value
        ranks[tied] = ranks[tied].mean()
    return ranks


def top_k_overlap(a: np.ndarray, b: np.ndarray, k: int) -> float:
    k = min(k, len(a))
    top = lambda s: set(np.argsort(-np.asarray(s), kind="stable")[:k].tolist())  # noqa: E731
    return len(top(a) & top(b)) / k


def _rate(batches, seconds: float) -> float:
    pairs = sum(len(b["input_ids"]) for b in batches)
    return round(pairs / seconds, 1) if seconds > 0 else 0.0


def _install(work: Path, target: Path) -> None:
    """Swap the new onnx/ in whole, so no stale file from an earlier export survives."""
    staged = work / "onnx"
    staged.mkdir()
    for item in list(work.iterdir()):
        if item.is_file():
            item.rename(staged / item.name)
    old = target.with_name(target.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if target.exists():
        target.rename(old)
    staged.rename(target)
    shutil.rmtree(old, ignore_errors=True)


@contextlib.contextmanager
def _quiet_root_logger():
    """onnxruntime.quantization logs advice through the root logger; keep the CLI clean."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        yield
    finally:
        root.setLevel(level)


def _progress(message: str) -> None:
    print(f"onnx: {message}", flush=True)
