"""Deploy defaults that fit the packaged model: instance type, serverless, the DLC version.

``make package`` records in reranker.json whether the model is an LLM reranker, its
parameter count (from the safetensors headers) and its model_type; ``deploy`` reads that
first member of the archive and:

- picks the instance type when none was given: the CPU default for cross-encoders, a GPU
  for LLM rerankers by size (bf16 weights with room for activations and the prompt cache):
  up to ~4.5 B parameters (Qwen3-Reranker-0.6B/4B, mxbai-rerank-v2, bge-reranker-v2-gemma
  at 2.5 B) one 24 GB A10G, ml.g5.xlarge; up to ~20 B (Qwen3-Reranker-8B) one 48 GB L40S,
  ml.g6e.xlarge; larger models need an explicit choice;
- refuses a GPU instance type whose GPU cannot hold the weights, and serverless where the
  model does not fit (serverless has no GPU and at most 6144 MB; weights are fp32 on CPU);
- sizes an inference component's memory per copy from the weights, unless set, and
  refuses a setting below the loaded weights;
- checks the DLC's transformers version against the model family (images.transformers_for);
- refuses RERANK_COMPILE=true for a cross-encoder, which the container would refuse at load.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from deploy.errors import UserError

CPU_DEFAULT = "ml.m5.xlarge"
MB = 1024 * 1024
SERVERLESS_MAX_MB = 6144
# An inference component's memory per copy when the model does not need more.
COMPONENT_MIN_MB = 2048
# Memory besides the weights: Python, torch, tokenizer, activations of one batch.
RUNTIME_MB = 1024
# GPU memory per GPU by instance family (GB).
GPU_GB = {"g4dn": 16, "g5": 24, "g6": 24, "g6e": 48, "p3": 16, "p3dn": 32, "p4d": 40,
          "p4de": 80, "p5": 80, "p5e": 141, "p5en": 141}
# (largest parameter count, instance type) for LLM rerankers, smallest first.
LLM_DEFAULTS = ((4.5e9, "ml.g5.xlarge"), (20e9, "ml.g6e.xlarge"))


def manifest_of(config) -> dict | None:
    """reranker.json of the archive to be deployed; None for MODEL_DATA or no archive."""
    from deploy.package import archive

    path = Path(config.archive)
    if config.model_data or not path.is_file():
        return None
    raw = archive.read_member(path, archive.MANIFEST)
    try:
        data = json.loads(raw) if raw else None
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def default_instance_type(manifest: dict | None, spelled: str = "INSTANCE_TYPE") -> str:
    if not manifest or not manifest.get("llm"):
        return CPU_DEFAULT
    parameters = manifest.get("parameters") or 0
    for limit, instance_type in LLM_DEFAULTS:
        if parameters <= limit:
            return instance_type
    raise UserError(f"{manifest.get('model_id')} has {parameters / 1e9:.0f} B parameters:"
                    f" more than one 48 GB GPU holds; set {spelled} yourself")


def is_gpu(instance_type: str) -> bool:
    """ml.g*/ml.p* instance types have NVIDIA GPUs (accelerators per copy apply)."""
    match = re.match(r"^ml\.([a-z]+)\d", instance_type or "")
    return bool(match) and match.group(1)[0] in ("g", "p")


# Families whose instances store on local NVMe disks (besides every family with a "d" after
# its generation: m5d, c6id, g4dn, p4d, ...): SageMaker refuses a KMS key for their volumes.
LOCAL_STORAGE = ("g5", "g6", "g6e", "gr6", "p5", "p5e", "p5en", "p6", "p6e", "trn1", "trn1n",
                 "trn2")


def has_local_storage(instance_type: str) -> bool:
    """The instance type's volumes are local NVMe disks, encrypted by the instance's
    hardware (AWS's "Instance Store Volumes" list)."""
    # ml.<letters><generation><suffix>[-<variant>].<size>, e.g. ml.p6-b200.48xlarge
    match = re.match(r"^ml\.([a-z]+)(\d+)([a-z]*)(?:-[a-z0-9]+)?\.", instance_type or "")
    if not match:
        return False
    family = "".join(match.groups())
    return "d" in match.group(3) or family in LOCAL_STORAGE


def gpu_gb(instance_type: str) -> int | None:
    match = re.match(r"^ml\.([a-z0-9]+)\.", instance_type or "")
    return GPU_GB.get(match.group(1)) if match else None


def needed_gb_on_gpu(parameters: int) -> float:
    """bf16 weights plus a fifth for activations and cache, plus the CUDA context."""
    return parameters * 2 * 1.2 / 1024 ** 3 + 1.0


def loaded_mb(parameters: int, bytes_per_parameter: int) -> int:
    """The weights in host memory as loaded, with a quarter more for what loading holds."""
    return int(parameters * bytes_per_parameter * 1.25 / MB)


def needed_mb_on_cpu(parameters: int) -> int:
    return loaded_mb(parameters, 4) + RUNTIME_MB


def host_mb(parameters: int, gpu: bool) -> int:
    """Host memory one server needs: the weights as loaded (bf16 on a GPU, on their way to
    it; fp32 on CPU) with a quarter more, the runtime (and CUDA's libraries), in whole GB."""
    need = loaded_mb(parameters, 2) + 2 * RUNTIME_MB if gpu else needed_mb_on_cpu(parameters)
    return max(COMPONENT_MIN_MB, -(-need // 1024) * 1024)


def fit_component_memory(config, manifest: dict | None, instance_type: str | None = None
                         ) -> None:
    """An inference component's MinMemoryRequiredInMb for ``instance_type`` (default: the
    setting's): sized from the model when not set (``host_mb``), and sized again when the
    endpoint it joins turns out to run on another kind of instance; a setting below the
    loaded weights alone is refused, since copies would be packed onto memory that cannot
    hold them."""
    instance_type = instance_type or config.instance_type
    parameters = int((manifest or {}).get("parameters") or 0)
    gpu = is_gpu(instance_type)
    if config.component_memory_mb is None or config.memory_sized_for is not None:
        config.component_memory_mb = host_mb(parameters, gpu) if parameters else COMPONENT_MIN_MB
        config.memory_sized_for = instance_type
        return
    weights = loaded_mb(parameters, 2 if gpu else 4)
    if parameters and config.component_memory_mb < weights:
        name = (manifest or {}).get("model_id", "the model")
        raise UserError(f"{name} ({parameters / 1e9:.2f} B parameters) takes about {weights} MB"
                        f" of host memory to load on {instance_type};"
                        f" {config.name('component_memory_mb')}={config.component_memory_mb}"
                        f" is too little (unset, it is {host_mb(parameters, gpu)})")


def check(config, manifest: dict | None) -> None:
    """Refuse, in one line, what cannot serve this model; before anything is created."""
    if not manifest:
        return
    parameters = int(manifest.get("parameters") or 0)
    name = manifest.get("model_id", "the model")
    if config.deploy_mode.serverless and parameters:
        need = needed_mb_on_cpu(parameters)
        if need > SERVERLESS_MAX_MB:
            raise UserError(f"{name} ({parameters / 1e9:.2f} B parameters) needs about {need}"
                            f" MB on CPU: serverless has no GPU and at most"
                            f" {SERVERLESS_MAX_MB} MB; deploy it real-time or as a component"
                            " on a GPU instance")
        if need > config.memory_mb:
            raise UserError(f"{name} needs about {need} MB on CPU;"
                            f" {config.name('memory_mb')}={config.memory_mb} is too little"
                            f" (serverless allows up to {SERVERLESS_MAX_MB})")
    if not manifest.get("llm") and _compiles(config.env):
        raise UserError(f"RERANK_COMPILE=true applies to LLM rerankers; {name} is a"
                        " cross-encoder, whose load would refuse it: unset RERANK_COMPILE")
    gpu = gpu_gb(config.instance_type)
    if manifest.get("llm") and gpu and parameters and needed_gb_on_gpu(parameters) > gpu:
        raise UserError(f"{name} ({parameters / 1e9:.1f} B parameters) needs about"
                        f" {needed_gb_on_gpu(parameters):.0f} GB of GPU memory;"
                        f" {config.instance_type} has {gpu} GB per GPU (try"
                        f" {default_instance_type(manifest)})")


def _compiles(env: dict) -> bool:
    """RERANK_COMPILE as the container will read it (the value was checked by then)."""
    from reranker.settings import Settings

    return Settings.from_env(env).compile


def apply(config, manifest: dict | None) -> None:
    """Fill what was left to the model (instance type, DLC version), then ``check``."""
    from deploy.sagemaker import images

    if config.instance_type is None:
        config.instance_type = default_instance_type(manifest, config.name("instance_type"))
    if manifest and not config.image:
        config.transformers_version = images.transformers_for(
            manifest.get("model_type"), config.transformers_version,
            config.name("transformers_version"))
    if config.deploy_mode.component:
        fit_component_memory(config, manifest)
    check(config, manifest)
