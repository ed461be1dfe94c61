"""The official Hugging Face inference DLC's image URI for a region, instance type and versions.

The SageMaker SDK's ``image_uris.retrieve("huggingface", ...)`` answers this from a JSON table
it ships.  The SDK itself cannot live in our environment (sagemaker 2.x pins attrs<26,
packaging<25, protobuf<7; sagemaker-core 2.x pins rich<15, protobuf<7 and pulls pandas, scipy
and paramiko), so we ship its table instead -- ``deploy/sagemaker/data/huggingface_dlc.json``, the
``inference`` scope of sagemaker-core's ``image_uri_config/huggingface.json`` -- and apply the
same rules as the SDK: account per region from the table, ECR host name from botocore's
endpoint data, tag ``<torch>-transformers<version>-<cpu|gpu>-<py>-<container version>``.
Refresh the table with ``make dlc-images`` (reads the pinned wheel from PyPI).
"""

from __future__ import annotations

import json
import re
import sys
import zipfile
from functools import cache
from pathlib import Path

from deploy.errors import UserError
from reranker.profiles import DECODER_TYPES

TABLE = Path(__file__).resolve().parent / "data" / "huggingface_dlc.json"
# The first transformers release with each family's architecture (config.json model_type);
# a family not listed is older than every DLC in the table.  Qwen3 (Qwen3-Reranker) arrived
# in 4.51, Gemma (bge-reranker-v2-gemma) in 4.38, Qwen2 (mxbai-rerank-v2) in 4.37,
# ModernBERT (gte-reranker-modernbert) in 4.48.  Every decoder (an LLM reranker,
# reranker/profiles.py DECODER_TYPES) is sent only to a DLC from 4.51 on: the engine's LLM
# path (its shared prompt caches) is tested there (tests/test_families_on_the_dlc.py), and
# older caches differ (tuples, another DynamicCache).
LLM_MIN_TRANSFORMERS = "4.51.0"
FAMILY_MIN_TRANSFORMERS = {"modernbert": "4.48.0",
                           **dict.fromkeys(DECODER_TYPES, LLM_MIN_TRANSFORMERS)}
# The DLC stack tests/test_dlc_parity.py runs our handler on: preferred when it serves.
PARITY_TRANSFORMERS = "4.51.3"
SDK_WHEEL_MEMBER = "sagemaker/core/image_uri_config/huggingface.json"


@cache
def _table() -> dict:
    return json.loads(TABLE.read_text())["inference"]


def _vkey(version: str) -> tuple:
    return tuple(int(x) if x.isdigit() else 0 for x in re.split(r"[.]", version))


def processor_for(instance_type: str | None, serverless: bool = False) -> str:
    """cpu or gpu, as the SDK decides it from the instance family."""
    if serverless:
        return "cpu"  # serverless endpoints have no GPUs
    match = re.match(r"^ml[._]([a-z0-9-]+)\.?\w*$", instance_type or "")
    if not match:
        raise UserError(f"invalid SageMaker instance type {instance_type!r} (e.g. ml.g5.xlarge)")
    family = match.group(1)
    if family.startswith(("inf", "trn")):
        raise UserError(f"{instance_type} needs the Neuron DLC, which this tool does not look"
                        " up; pass --image with a Neuron-compiled image")
    return "gpu" if family[0] in ("g", "p") else "cpu"


def versions() -> list[str]:
    return sorted(_table()["versions"], key=_vkey)


def serving(model_type: str | None) -> list[str]:
    """The table's DLC transformers versions that have this model family, oldest first."""
    least = _vkey(FAMILY_MIN_TRANSFORMERS.get(model_type or "", "0"))
    return [v for v in versions() if _vkey(v) >= least]


def transformers_for(model_type: str | None, requested: str | None,
                     spelled: str = "TRANSFORMERS_VERSION") -> str | None:
    """The DLC's transformers version for this family: ``requested`` when it has the
    family (refused in one line when it does not), else the parity-tested one, else the
    oldest that has it.  None: the newest in the table, as before."""
    good = serving(model_type)
    if requested:
        version = _table()["version_aliases"].get(requested, requested)
        if version in _table()["versions"] and version not in good:
            raise UserError(f"{model_type} models need transformers"
                            f" {FAMILY_MIN_TRANSFORMERS[model_type]} or later; the DLC with"
                            f" transformers {version} cannot serve them (DLCs that can:"
                            f" {', '.join(good) or 'none'}; set {spelled})")
        return requested
    if not good:
        raise UserError(f"no Hugging Face DLC in the table has {model_type} models"
                        " (`make dlc-images` refreshes the table; or deploy our own image)")
    return PARITY_TRANSFORMERS if PARITY_TRANSFORMERS in good else good[0]


def dlc_image(region: str, instance_type: str | None, *, serverless: bool = False,
              transformers_version: str | None = None, pytorch_version: str | None = None,
              py_version: str | None = None) -> str:
    table = _table()
    tv = table["version_aliases"].get(transformers_version, transformers_version)
    tv = tv or versions()[-1]
    if tv not in table["versions"]:
        raise UserError(f"no Hugging Face DLC for transformers {transformers_version}; known:"
                        f" {', '.join(versions())}")
    per_version = table["versions"][tv]
    frameworks = sorted((k for k in per_version if k.startswith("pytorch")),
                        key=lambda k: _vkey(k[7:]))
    if not frameworks:
        raise UserError(f"the DLC for transformers {tv} has no PyTorch image")
    wanted = f"pytorch{pytorch_version}" if pytorch_version else frameworks[-1]
    framework = per_version.get("version_aliases", {}).get(wanted, wanted)
    if framework not in per_version:
        raise UserError(f"no DLC for transformers {tv} with PyTorch {pytorch_version}; known:"
                        f" {', '.join(f[7:] for f in frameworks)}")
    entry = per_version[framework]
    py = py_version or entry["py_versions"][0]
    if py not in entry["py_versions"]:
        raise UserError(f"the DLC for transformers {tv} / PyTorch {framework[7:]} has Python"
                        f" {', '.join(entry['py_versions'])}, not {py}")
    if region not in entry["registries"]:
        raise UserError(f"no Hugging Face DLC is published in region {region!r}")
    processor = processor_for(instance_type, serverless)
    tag = "-".join([f"{framework[7:]}-transformers{tv}", processor, py,
                    entry["container_version"][processor]])
    return f"{entry['registries'][region]}.dkr.{_ecr_host(region)}/{entry['repository']}:{tag}"


def _ecr_host(region: str) -> str:
    """ECR's host name for the region from botocore's bundled endpoint data (offline)."""
    import botocore.loaders
    import botocore.regions

    resolver = botocore.regions.EndpointResolver(
        botocore.loaders.create_loader().load_data("endpoints"))
    endpoint = resolver.construct_endpoint("ecr", region)
    return endpoint["hostname"] if endpoint else f"ecr.{region}.amazonaws.com"


def refresh(wheel: Path) -> None:
    """Rewrite the table from a downloaded sagemaker-core wheel."""
    with zipfile.ZipFile(wheel) as zf:
        data = json.loads(zf.read(SDK_WHEEL_MEMBER))
    out = {"_source": f"{wheel.name} (PyPI, Apache-2.0): {SDK_WHEEL_MEMBER}, 'inference'"
                      " scope; refresh with `make dlc-images`",
           "inference": data["inference"]}
    TABLE.write_text(json.dumps(out, indent=1, sort_keys=True) + "\n")


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] != "--refresh":
        sys.exit("usage: python -m deploy.sagemaker.images --refresh"
                 " sagemaker_core-X-py3-none-any.whl")
    refresh(Path(sys.argv[2]))
    print(f"wrote {TABLE} ({', '.join(versions()[-3:])} newest)")
