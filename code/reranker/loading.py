"""Open an unpacked model directory safely and choose the backend that will run it."""

from __future__ import annotations

import dataclasses
import glob
import os

from .settings import Settings


class ModelLoadError(RuntimeError):
    """The model directory cannot be served; the message says what is missing."""


@dataclasses.dataclass(frozen=True)
class ModelFiles:
    safetensors: bool
    pickle: bool
    onnx: tuple[str, ...]


def inspect_model_dir(model_dir: str) -> ModelFiles:
    if not os.path.isdir(model_dir):
        raise ModelLoadError(f"model directory {model_dir!r} does not exist")
    if not os.path.isfile(os.path.join(model_dir, "config.json")):
        raise ModelLoadError(f"{model_dir!r} has no config.json: not a transformers model")
    has = lambda *names: any(os.path.isfile(os.path.join(model_dir, n)) for n in names)  # noqa: E731
    if not has("tokenizer.json"):
        raise ModelLoadError(
            f"{model_dir!r} has no tokenizer.json: the engine needs a fast tokenizer"
            " (package the model with `make package`, which writes one)"
        )
    onnx = tuple(sorted(glob.glob(os.path.join(model_dir, "onnx", "*.onnx"))))
    return ModelFiles(
        safetensors=has("model.safetensors", "model.safetensors.index.json"),
        pickle=has("pytorch_model.bin", "pytorch_model.bin.index.json"),
        onnx=onnx,
    )


def choose_backend(files: ModelFiles, settings: Settings, cuda: bool) -> str:
    if settings.backend != "auto":
        return settings.backend
    if files.onnx and not cuda and settings.device != "cuda":
        return "onnx"
    return "torch"


def load_backend(model_dir: str, settings: Settings):
    files = inspect_model_dir(model_dir)
    import torch

    backend = choose_backend(files, settings, torch.cuda.is_available())
    if backend == "onnx":
        if not files.onnx:
            raise ModelLoadError(f"RERANK_BACKEND=onnx but {model_dir!r}/onnx has no .onnx file")
        from .backends.onnx_backend import OnnxBackend

        return OnnxBackend(model_dir, settings=settings)
    if not files.safetensors:
        if not files.pickle:
            raise ModelLoadError(f"{model_dir!r} has no weights (model.safetensors)")
        if not settings.allow_pickle:
            raise ModelLoadError(
                f"{model_dir!r} has only pickle weights (pytorch_model.bin); convert them to"
                " safetensors (`make package` does) or set RERANK_ALLOW_PICKLE=true to load"
                " them weights-only"
            )
    from .backends.torch_backend import TorchBackend

    return TorchBackend(
        model_dir,
        device=settings.device,
        dtype=settings.dtype,
        trust_remote_code=settings.trust_remote_code,
        use_safetensors=files.safetensors,
        threads=settings.threads,
    )
