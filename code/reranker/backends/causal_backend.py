"""The causal-LM scoring head: decoder body, last real position, judged LM-head rows only.

An LLM reranker's score is a difference of two next-token logits.  The full LM head
(vocabulary x hidden: 155M multiply-adds per row for Qwen3-0.6B, more than a layer) is not
run: the hidden state at each row's last real token is multiplied by the judged tokens'
rows, in fp32.  A converted ``*-seq-cls`` checkpoint has that difference as its one-label
``score`` head over the same decoder, so it runs here too (``head="seq-cls"``).

Documents are continuations of one shared prefix (system prompt, instruction, query).
With causal attention the prefix's keys and values do not depend on what follows, so they
are computed once (:meth:`prefix`) and every batch of continuations attends to them
(:meth:`continuations`): right-padded rows at positions ``P..P+t-1``, each row read at its
own last real token, which padding after it cannot reach.  The result equals a full
forward pass of each whole prompt (tests/test_llm_parity.py).

The prefix's cache is transformers' DynamicCache, in 5.x's layout (per-layer objects) or
4.x's (key/value lists; the Hugging Face DLC runs 4.51).  A transformers without either
runs each continuation with its prefix in full: the same scores, without the saving.
"""

from __future__ import annotations

import numpy as np
import torch
import transformers

from ..errors import PayloadTooLarge
from .base import ModelLoadError
from .checkpoint import load_complete
from .memory_cap import MemoryCap, padded_widths
from .regional_compile import compile_cache_free
from .torch_setup import DTYPES, place

# Continuations on CPU score the most pairs/s in 1024-token batches in bf16 as in fp32
# (Qwen3-0.6B shape, 8 layers, Xeon with AMX: bf16 2048 -> 1024 tokens gave +7%/+23%/+19%
# at 10/25/100 documents; fp32 512-1024 beat 2048 by 4-22%; docs/models.md).  On CUDA the
# settings' GPU budget applies.
CPU_BATCH_TOKENS = 1024


class CausalBackend:
    name = "torch"
    # The engine's PrefixBatcher forms the batches (continuations per prefix).
    batches_itself = True

    def __init__(self, model_dir: str, judged: list[int], *, device: str, dtype: str,
                 trust_remote_code: bool, use_safetensors: bool, threads: int = 0,
                 compiled: bool = False, head: str = "causal"):
        self.device, self.dtype = place(device, dtype, threads)
        self.device_type = self.device.type
        self.batch_tokens = CPU_BATCH_TOKENS if self.device_type == "cpu" else 0
        self.memory = MemoryCap()
        auto = (transformers.AutoModelForSequenceClassification if head == "seq-cls"
                else transformers.AutoModelForCausalLM)
        model = load_complete(auto, model_dir, dtype=DTYPES[self.dtype],
                              trust_remote_code=trust_remote_code,
                              use_safetensors=use_safetensors)
        self.config = model.config
        linear, judged = _head(model, head, judged, model_dir)
        # Only the judged rows of the head are kept (fp32); the rest is freed with the wrapper.
        self.rows = linear.weight.detach()[judged].float().to(self.device)
        bias = getattr(linear, "bias", None)
        self.bias = None if bias is None else bias.detach()[judged].float().to(self.device)
        self.softcap = getattr(self.config, "final_logit_softcapping", None)
        body = model.get_decoder() if head == "causal" else model.base_model
        self.body = body.to(self.device).eval()
        self.head = head
        del model, linear, body
        # Asked of the eager body: compiling happens at the warm-up, where its failures
        # become a readable load error.
        self.shares_prefix = _caches_can_be_shared() and self._returns_a_cache()
        self.compiled_modules = (compile_cache_free(self.body, self.device_type) if compiled
                                 else 0)
        self.num_labels = 1
        self.judged = judged
        self.pad_multiple = 8 if self.device.type == "cuda" else 1

    @torch.inference_mode()
    def _returns_a_cache(self) -> bool:
        """Whether the body hands back a cache object the continuations can share (some
        architectures, in some transformers versions, return plain tuples): asked once, on
        one token, at load."""
        out = self.body(input_ids=torch.zeros((1, 1), dtype=torch.long, device=self.device),
                        use_cache=True)
        cache = getattr(out, "past_key_values", None)
        return hasattr(cache, "layers") or hasattr(cache, "key_cache")

    def prefix(self, ids: list[int]):
        """The prefix's key/value cache (one row); a 413 naming the query when it does not
        fit in the GPU's memory.  Without shareable caches, or nothing to share (a prompt
        that opens with the document): the prefix's ids."""
        if not self.shares_prefix or not ids:
            return list(ids)
        try:
            return self._prefix(ids)
        except torch.cuda.OutOfMemoryError:
            pass  # the traceback, and the failed pass's tensors with it, are released here
        torch.cuda.empty_cache()
        raise PayloadTooLarge(f"the query's prompt ({len(ids)} tokens) does not fit in the GPU's"
                              " memory; send a shorter query or instruction", field="query")

    @torch.inference_mode()
    def _prefix(self, ids: list[int]):
        tensor = torch.tensor([ids], dtype=torch.long, device=self.device)
        out = self.body(input_ids=tensor, use_cache=True)
        return out.past_key_values

    def continuations(self, cache, prefix_length: int, ids: np.ndarray,
                      lengths: np.ndarray) -> np.ndarray:
        """Judged logits ``[rows, judged]`` (fp32) of right-padded continuations of the prefix
        whose cache is ``cache``, in passes that fit the GPU's memory (memory_cap.py)."""
        if not self.shares_prefix or not prefix_length:
            return self._with_prefix(cache, ids, lengths)

        def rows(start: int, stop: int, width: int) -> np.ndarray:
            return self._continuations(cache, prefix_length, ids[start:stop, :width],
                                       lengths[start:stop])

        widths = padded_widths(lengths, self.pad_multiple, ids.shape[1])
        return self.memory.run(rows, widths, len(self.judged))

    @torch.inference_mode()
    def _continuations(self, cache, prefix_length: int, ids: np.ndarray,
                       lengths: np.ndarray) -> np.ndarray:
        rows, width = ids.shape
        batch_cache = _expanded(cache, rows, self.config)
        input_ids = torch.from_numpy(ids).to(self.device)
        real = torch.from_numpy(np.arange(width)[None, :] < lengths[:, None]).to(self.device)
        mask = torch.cat([torch.ones(rows, prefix_length, dtype=torch.long, device=self.device),
                          real.long()], dim=1)
        positions = torch.arange(prefix_length, prefix_length + width,
                                 device=self.device).expand(rows, -1)
        out = self.body(input_ids=input_ids, attention_mask=mask, position_ids=positions,
                        past_key_values=batch_cache, use_cache=True)
        last = torch.from_numpy(lengths - 1).to(self.device)
        hidden = out.last_hidden_state[torch.arange(rows, device=self.device), last]
        return self._judge(hidden)

    def _with_prefix(self, prefix: list[int], ids: np.ndarray, lengths: np.ndarray
                     ) -> np.ndarray:
        """Judged logits of each continuation run whole, after its prefix."""
        rows, width = ids.shape
        head = np.broadcast_to(np.asarray(prefix, dtype=ids.dtype), (rows, len(prefix)))
        real = (np.arange(width)[None, :] < lengths[:, None]).astype(np.int64)
        mask = np.concatenate([np.ones((rows, len(prefix)), dtype=np.int64), real], axis=1)
        return self.forward(np.concatenate([head, ids], axis=1), mask, None)

    @torch.inference_mode()
    def whole(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """Judged logits of whole right-padded prompts (no shared prefix)."""
        input_ids = torch.from_numpy(ids).to(self.device)
        attention = torch.from_numpy(mask).to(self.device)
        out = self.body(input_ids=input_ids, attention_mask=attention, use_cache=False)
        last = attention.sum(dim=1) - 1
        hidden = out.last_hidden_state[torch.arange(len(ids), device=self.device), last]
        return self._judge(hidden)

    def _judge(self, hidden: torch.Tensor) -> np.ndarray:
        logits = hidden.float() @ self.rows.T
        if self.bias is not None:
            logits = logits + self.bias
        if self.softcap:
            logits = torch.tanh(logits / self.softcap) * self.softcap
        return logits.cpu().numpy()

    def forward(self, ids: np.ndarray, mask: np.ndarray, types: np.ndarray | None) -> np.ndarray:
        """The Backend contract's call: judged logits of whole prompts."""
        def rows(start: int, stop: int, width: int) -> np.ndarray:
            return self.whole(ids[start:stop, :width], mask[start:stop, :width])

        widths = padded_widths(mask.sum(axis=1), self.pad_multiple, ids.shape[1])
        return self.memory.run(rows, widths, len(self.judged))

    def health(self) -> bool:
        if self.device_type != "cuda":
            return True
        try:
            torch.cuda.synchronize(self.device)
        except RuntimeError:
            return False
        return True

    def describe(self) -> dict:
        return {
            "backend": self.name,
            "head": ("causal-lm judged tokens" if self.head == "causal"
                     else "converted one-label head"),
            "judged_tokens": self.judged if self.head == "causal" else None,
            "device": str(self.device),
            "dtype": self.dtype,
            "attention": getattr(self.config, "_attn_implementation", None),
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "threads": torch.get_num_threads(),
            "memory_cap_tokens": self.memory.tokens,
            "shared_prefix": self.shares_prefix,
            "compiled_modules": self.compiled_modules,
        }


def _head(model, head: str, judged: list[int], model_dir: str):
    """The linear layer that scores the last hidden state, and which of its rows count: the
    judged tokens' rows of the LM head, or a converted checkpoint's one-label head (already
    logit(yes) - logit(no))."""
    if head == "seq-cls":
        linear = getattr(model, "score", None)
        if linear is None or linear.weight.shape[0] != 1:
            raise ModelLoadError(f"{model_dir!r}: a converted reranker needs a one-label"
                                 " `score` head")
        return linear, [0]
    linear = model.get_output_embeddings()
    if linear is None or max(judged) >= linear.weight.shape[0]:
        raise ModelLoadError(f"{model_dir!r}: the LM head has no rows for tokens {judged}")
    return linear, list(judged)


def _caches_can_be_shared() -> bool:
    """transformers' DynamicCache in either layout: per-layer objects (``layers``, 5.x) or
    key/value lists (``key_cache``, 4.x, the DLC's 4.51)."""
    from transformers import DynamicCache

    cache = DynamicCache()
    return hasattr(cache, "layers") or hasattr(cache, "key_cache")


def _expanded(cache, rows: int, config):
    """A new cache whose layers view the prefix's keys and values ``rows`` times: the
    continuation's tokens are appended to the copy, never to the shared prefix."""
    from transformers import DynamicCache

    def views(pairs):
        return [(k.expand(rows, -1, -1, -1), v.expand(rows, -1, -1, -1)) for k, v in pairs]

    if hasattr(cache, "layers"):
        return DynamicCache(views((layer.keys, layer.values) for layer in cache.layers),
                            config=config)
    # transformers 4.x: key/value lists, built from (keys, values) per layer, no config
    return DynamicCache(views(zip(cache.key_cache, cache.value_cache)))
