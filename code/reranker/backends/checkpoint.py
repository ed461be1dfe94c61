"""Load a transformers model and refuse it when any of its weights are not in its files.

``from_pretrained`` fills weights the checkpoint lacks with random values and only says
so in its loading report: a causal LM or a bi-encoder (a bare BertModel, bge-m3-like)
loaded as a sequence classifier gets a random head and serves noise.  Every torch load of
the engine goes through :func:`load_complete`, so model_fn, the server and the image all
refuse such a directory with the names of the missing weights.
"""

from __future__ import annotations

import logging

import transformers
from packaging.version import Version

from .base import WHAT_A_RERANKER_IS, ModelLoadError

log = logging.getLogger(__name__)

# transformers 4.56 renamed from_pretrained's torch_dtype to dtype.
DTYPE_KWARG = "dtype" if Version(transformers.__version__) >= Version("4.56") else "torch_dtype"


def load_complete(auto_class, model_dir: str, *, dtype, trust_remote_code: bool,
                  use_safetensors: bool):
    """``auto_class.from_pretrained`` with SDPA attention where the architecture has it,
    refused (ModelLoadError) when the checkpoint lacks weights the model needs."""
    kwargs = {DTYPE_KWARG: dtype, "trust_remote_code": trust_remote_code,
              "use_safetensors": use_safetensors, "output_loading_info": True}
    try:
        model, info = auto_class.from_pretrained(model_dir, attn_implementation="sdpa", **kwargs)
    except (ValueError, ImportError) as exc:  # architectures without SDPA (DeBERTa-v2)
        log.info("SDPA attention unavailable (%s); using the eager implementation", exc)
        model, info = auto_class.from_pretrained(model_dir, attn_implementation="eager",
                                                 **kwargs)
    check_loading_info(info, model_dir, type(model).__name__)
    return model


def check_loading_info(info: dict, model_dir: str, model_class: str) -> None:
    missing = sorted(info.get("missing_keys") or ())
    if not missing:
        return
    shown = ", ".join(missing[:8]) + (f" and {len(missing) - 8} more" if len(missing) > 8 else "")
    raise ModelLoadError(
        f"{model_dir!r} cannot be served as {model_class}: its files lack {shown}, which"
        " transformers would fill with random values (the scores would be noise). Is it a"
        f" bi-encoder or a base language model? {WHAT_A_RERANKER_IS}"
    )
