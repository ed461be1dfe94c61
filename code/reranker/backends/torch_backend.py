"""The PyTorch backend: transformers' sequence-classification model on CPU or CUDA."""

from __future__ import annotations

import numpy as np
import torch
import transformers

from .checkpoint import load_complete
from .memory_cap import MemoryCap, padded_widths
from .torch_setup import DTYPES, place


class TorchBackend:
    """The model in the chosen dtype (fp32 on CPU unless bf16 is asked for; bf16 or fp16 on
    CUDA), with SDPA attention where the model supports it."""

    name = "torch"
    batches_itself = False
    batch_tokens = 0  # the settings' defaults were measured on this backend
    # Cross-encoders are never compiled (RERANK_COMPILE is for LLM rerankers, which run on
    # the causal backend, converted seq-cls checkpoints included).
    compiled_modules = 0

    def __init__(self, model_dir: str, *, device: str, dtype: str, trust_remote_code: bool,
                 use_safetensors: bool, threads: int = 0):
        self.device, self.dtype = place(device, dtype, threads)
        self.device_type = self.device.type
        self.memory = MemoryCap()
        # bf16 weights, not fp32 weights under autocast: autocast re-casts every weight on
        # every forward pass, which cost 30-40% of bf16's speed on CPU (docs/BENCHMARKS.md).
        self.model = _load(model_dir, DTYPES[self.dtype], trust_remote_code, use_safetensors)
        self.model.to(self.device).eval()
        self.first_token_tail = _classify_from_first_token_only(self.model)
        self.num_labels = int(self.model.config.num_labels)
        self.pad_multiple = 8 if self.device.type == "cuda" else 1

    def forward(self, ids: np.ndarray, mask: np.ndarray, types: np.ndarray | None) -> np.ndarray:
        def rows(start: int, stop: int, width: int) -> np.ndarray:
            return self._forward(ids[start:stop, :width], mask[start:stop, :width],
                                 None if types is None else types[start:stop, :width])

        widths = padded_widths(mask.sum(axis=1), self.pad_multiple, ids.shape[1])
        return self.memory.run(rows, widths, self.num_labels)

    def _forward(self, ids: np.ndarray, mask: np.ndarray, types: np.ndarray | None) -> np.ndarray:
        inputs = {
            "input_ids": torch.from_numpy(ids).to(self.device, non_blocking=True),
            "attention_mask": torch.from_numpy(mask).to(self.device, non_blocking=True),
        }
        if types is not None:
            inputs["token_type_ids"] = torch.from_numpy(types).to(self.device, non_blocking=True)
        with torch.inference_mode():
            logits = self.model(**inputs).logits
        return logits.float().cpu().numpy()

    def health(self) -> bool:
        if self.device_type != "cuda":
            return True
        try:
            torch.cuda.synchronize(self.device)
        except RuntimeError:  # a lost or faulted GPU
            return False
        return True

    def describe(self) -> dict:
        return {
            "backend": self.name,
            "device": str(self.device),
            "dtype": self.dtype,
            "attention": getattr(self.model.config, "_attn_implementation", None),
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "threads": torch.get_num_threads(),
            "first_token_tail": self.first_token_tail,
            "memory_cap_tokens": self.memory.tokens,
            "compiled_modules": self.compiled_modules,
        }


# Architectures whose classification head reads the first token's hidden state only.
FIRST_TOKEN_HEADS = ("bert", "roberta", "xlm-roberta", "camembert", "electra", "deberta-v2")


def _classify_from_first_token_only(model) -> bool:
    """Run the last layer's feed-forward on the first token alone.

    The head of these models reads hidden_states[:, 0] and nothing else, so after the last
    layer's attention (which still attends over every token) the other rows are dead
    work: about two thirds of the last layer, 11% of a 6-layer model's FLOPs.  The result
    is the same computation for the token that matters (tests/test_engine_parity.py).
    """
    if getattr(model.config, "model_type", None) not in FIRST_TOKEN_HEADS:
        return False
    layers = getattr(getattr(model.base_model, "encoder", None), "layer", None)
    attention = getattr(layers[-1], "attention", None) if layers else None
    if attention is None:
        return False

    def keep_first_token(module, args, output):
        if isinstance(output, tuple):
            return (output[0][:, :1],) + tuple(output[1:])
        return output[:, :1]

    attention.register_forward_hook(keep_first_token)
    return True


def _load(model_dir: str, dtype, trust_remote_code: bool, use_safetensors: bool):
    return load_complete(transformers.AutoModelForSequenceClassification, model_dir, dtype=dtype,
                         trust_remote_code=trust_remote_code, use_safetensors=use_safetensors)
