"""Is each wheel set complete?  Every requirement of every carried wheel must be met by the
same set or by the GPU machine, because the kit installs with ``--no-deps``.

The machine's packages are those its image lists (read on 2026-11-17); versions are
known for a few, and checked where known.  Known, deliberate mismatches are listed with
the reason they are harmless.
"""

from __future__ import annotations

import zipfile
from email.parser import Parser
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

# The GPU image's Python packages (the device tool's list of what is installed there).
MACHINE_HAS = frozenset(canonicalize_name(n) for n in """
absl-py accelerate aiofiles aiohappyeyeballs aiohttp aiosignal annotated-doc anyio attrs
botorch build certifi charset-normalizer chex click cloudpickle cmake colorama contourpy
coverage cuda-bindings cuda-core cuda-pathfinder cuda-toolkit cupy-cuda13x cycler cython
diffrax e3nn einops equinox etils execnet filelock flatbuffers flax fonttools formulaic
frozenlist fsspec gpytorch grpcio h11 h5py hf-xet httpcore httpx huggingface-hub humanize
hypothesis idna imageio iniconfig interface-meta jax jaxlib jaxtyping jinja2 joblib
kiwisolver lazy-loader lightning lightning-utilities linear-operator lineax llvmlite lxml
markdown markdown-it-py markupsafe matplotlib mdurl meson ml-dtypes mpi4py mpmath msgpack
multidict multipledispatch mypy-extensions nanobind narwhals networkx ninja numba numba-cuda
numpy numpyro nvidia-ml-py onnx onnx-ir onnxruntime onnxscript opencv-python-headless optax
opt-einsum orbax-checkpoint packaging pandas pathspec patsy peft pillow pip pluggy
portalocker prometheus-client propcache protobuf psutil pyarrow pybind11 py-cpuinfo pygments
pyparsing pyproject-hooks python-dateutil pytorch-lightning pyyaml regex requests rich
sacrebleu safetensors scikit-build-core scikit-image scikit-learn scipy seaborn sentencepiece
sentence-transformers setuptools shellingham simplejson six sortedcontainers statsmodels
sympy tabulate tensorboard threadpoolctl tifffile tiktoken timm tokenizers toolz torch
torchaudio torchvision tqdm transformers triton typer typing-extensions typing-inspect
urllib3 uvloop werkzeug wheel wrapt xarray xxhash yarl zipp
""".split())
MACHINE_VERSIONS = {"numpy": "2.5.2", "transformers": "5.17.0", "torch": "2.11.0",
                    "huggingface-hub": "1.33.0", "tokenizers": "0.23.2",
                    "safetensors": "0.8.0", "sentence-transformers": "6.0.1"}
# (wheel, requirement): why the mismatch does not matter.
ACCEPTED = {
    ("infinity-emb", "numpy"): "declares numpy<2; its reranking path runs on numpy 2",
    ("sentence-transformers", "transformers"): "3.4.1 declares transformers<5; its"
                                               " CrossEncoder runs on transformers 5",
}
# setuptools vendors its own dependencies (setuptools/_vendor).
VENDORS_ITS_DEPENDENCIES = {"setuptools"}


def unmet(wheel_dir: Path, python: str = "3.12") -> list[str]:
    """One line per requirement that neither the set nor the machine meets."""
    wheels = {}
    for path in sorted(wheel_dir.glob("*.whl")):
        meta = _metadata(path)
        wheels[canonicalize_name(meta["Name"])] = (meta["Version"], meta)
    environment = {"python_version": python, "python_full_version": f"{python}.0",
                   "sys_platform": "linux", "platform_system": "Linux",
                   "platform_machine": "x86_64", "implementation_name": "cpython",
                   "platform_python_implementation": "CPython", "os_name": "posix",
                   "extra": ""}
    problems = []
    for name, (_, meta) in wheels.items():
        if name in VENDORS_ITS_DEPENDENCIES:
            continue
        for line in meta.get_all("Requires-Dist") or []:
            req = Requirement(line)
            if req.marker and not req.marker.evaluate(environment):
                continue
            problem = _check(req, wheels)
            if problem and (name, canonicalize_name(req.name)) not in ACCEPTED:
                problems.append(f"{name}: {problem}")
    return problems


def _check(req: Requirement, wheels: dict) -> str | None:
    dep = canonicalize_name(req.name)
    if dep in wheels:
        version = wheels[dep][0]
    elif dep in MACHINE_HAS:
        version = MACHINE_VERSIONS.get(dep)
        if version is None:
            return None  # there, version unknown
    else:
        return f"needs {req}, which is neither carried nor on the machine"
    if req.specifier and not req.specifier.contains(version, prereleases=True):
        return f"needs {req}, gets {dep} {version}"
    return None


def _metadata(path: Path):
    with zipfile.ZipFile(path) as archive:
        name = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        return Parser().parsestr(archive.read(name).decode("utf-8"))
