"""The host image (AMI) a GPU endpoint runs on, so that its NVIDIA driver can run our image.

Our GPU image takes torch from PyPI (container/requirements.txt), and PyPI's torch 2.13.0
wheels are built for CUDA 13.0 (they require cuda-toolkit 13.0.3), which needs NVIDIA driver
580 or newer.  SageMaker hosts endpoints on an older driver unless the production variant
names ``InferenceAmiVersion``; there torch finds no usable GPU.  So an endpoint that runs
our image on a GPU instance type (real-time, async, or one hosting inference components)
is created on al2023-ami-sagemaker-inference-gpu-4-1 (driver 580, CUDA 13.0).  The Hugging
Face DLC ships CUDA 12 with its compatibility libraries and keeps SageMaker's default.
Batch transform hosts offer driver 535 at most (``TransformAmiVersion``), too old for our
GPU image, so a transform on a GPU runs the DLC.
"""

from __future__ import annotations

from deploy.errors import UserError
from deploy.sagemaker import sizing

OUR_GPU_IMAGE_CUDA = "13.0"   # torch 2.13.0 from PyPI (tests/test_host_ami.py checks the pin)
NEEDED_DRIVER = 580           # CUDA 13.0's minimum Linux driver
FOR_OUR_IMAGE = "al2023-ami-sagemaker-inference-gpu-4-1"
# The NVIDIA driver of each GPU host image, as botocore's service model documents them.
DRIVERS = {"al2-ami-sagemaker-inference-gpu-2": 535, "al2-ami-sagemaker-inference-gpu-2-1": 535,
           "al2-ami-sagemaker-inference-gpu-3-1": 550, FOR_OUR_IMAGE: 580}


def choices() -> list[str]:
    """The values SageMaker takes for InferenceAmiVersion (botocore's service model)."""
    import botocore.session

    model = botocore.session.get_session().get_service_model("sagemaker")
    return list(model.shape_for("ProductionVariantInferenceAmiVersion").enum)


def chosen(config, instance_type: str | None = None) -> str | None:
    """The InferenceAmiVersion to send, or None for SageMaker's default."""
    if config.inference_ami != "auto":
        return config.inference_ami
    return FOR_OUR_IMAGE if _ours_on_gpu(config, instance_type) else None


def variant_fields(config, instance_type: str | None = None) -> dict:
    ami = chosen(config, instance_type)
    return {"InferenceAmiVersion": ami} if ami else {}


def validate(config) -> None:
    """A known value; none whose driver is too old for our GPU image; no GPU transform of
    our image."""
    value = config.inference_ami
    if value != "auto" and value not in choices():
        raise UserError(f"{config.name('inference_ami')} must be auto or one of"
                        f" {', '.join(choices())}, not {value!r}")
    if not config.deploy_mode.endpoint:
        if _ours_on_gpu(config):
            raise UserError(f"our GPU image needs NVIDIA driver {NEEDED_DRIVER} (CUDA"
                            f" {OUR_GPU_IMAGE_CUDA}) and batch transform's GPU hosts have 535"
                            f" at most: unset {config.name('image')} to run the Hugging Face"
                            " DLC, or use a CPU instance type")
        return
    _check_driver(config, chosen(config), config.instance_type, "")


def check_existing(config, instance_type: str, variant: dict) -> None:
    """A component joins an endpoint whose host image was chosen when it was created."""
    where = f" endpoint {config.endpoint} was created on"
    _check_driver(config, variant.get("InferenceAmiVersion"), instance_type, where)


def _check_driver(config, ami: str | None, instance_type: str | None, where: str) -> None:
    """Refuse SageMaker's default host image, or one whose driver is known to be older than
    our GPU image needs (a host image newer than this table is trusted)."""
    trusted = ami is not None and DRIVERS.get(ami, NEEDED_DRIVER) >= NEEDED_DRIVER
    if not _ours_on_gpu(config, instance_type) or trusted:
        return
    host = f"{ami} (driver {DRIVERS[ami]})" if ami in DRIVERS else "SageMaker's default host image"
    fix = (f"create the endpoint anew with {config.name('inference_ami')}=auto" if where
           else f"set {config.name('inference_ami')}=auto or {FOR_OUR_IMAGE}")
    raise UserError(f"our GPU image needs NVIDIA driver {NEEDED_DRIVER} (CUDA"
                    f" {OUR_GPU_IMAGE_CUDA}), and{where or ' this would run on'} {host}:"
                    f" {fix}")


def _ours_on_gpu(config, instance_type: str | None = None) -> bool:
    return bool(config.image) and sizing.is_gpu(instance_type or config.instance_type)
