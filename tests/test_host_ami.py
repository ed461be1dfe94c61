"""Our GPU image on SageMaker: the host image (InferenceAmiVersion) whose NVIDIA driver runs
its CUDA, chosen by deploy and checked against moto's server with the real boto3 clients;
and the engine, which refuses a GPU it cannot use instead of serving on the CPU."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch

import test_deploy_moto as moto_tests
from deploy.errors import UserError
from deploy.sagemaker import components, host_ami
from reranker.backends.base import ModelLoadError
from reranker.backends.torch_setup import has_kernels_for, pick_device, unusable_gpu
from test_cloudformation import lint, template_args
from test_components import component_config, valid
from test_deploy_moto import BUCKET, cli, deploy_args, one_error_line

moto_url = moto_tests.moto_url
aws = moto_tests.aws
archive_path = moto_tests.archive_path

ROOT = Path(__file__).resolve().parents[1]
IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/reranker-serving:gpu"
GPU = ["--instance-type", "ml.g4dn.xlarge"]
# What PyPI's torch wheels are built for (their Requires-Dist: cuda-toolkit==13.0.3).
TORCH_CUDA = {"2.13.0": "13.0"}


def variant_of(aws) -> dict:
    sm = aws("sagemaker")
    name = sm.describe_endpoint(EndpointName="rr")["EndpointConfigName"]
    return sm.describe_endpoint_config(EndpointConfigName=name)["ProductionVariants"][0]


def test_the_constant_follows_the_gpu_images_torch():
    pin = re.search(r"^torch==(\S+)", (ROOT / "container" / "requirements.txt").read_text(),
                    re.M).group(1)
    assert TORCH_CUDA[pin] == host_ami.OUR_GPU_IMAGE_CUDA  # a new torch: check its CUDA
    assert host_ami.NEEDED_DRIVER == 580
    assert set(host_ami.DRIVERS) <= set(host_ami.choices())


@pytest.mark.slow
def test_our_image_on_a_gpu_gets_the_driver_580_host(aws, archive_path, capsys):
    code, _, err = cli(capsys, *deploy_args(archive_path, "--image", IMAGE, *GPU))
    assert code == 0, err
    assert variant_of(aws)["InferenceAmiVersion"] == "al2023-ami-sagemaker-inference-gpu-4-1"
    _, printed, _ = cli(capsys, "status", "--endpoint", "rr")
    assert "1 x ml.g4dn.xlarge on al2023-ami-sagemaker-inference-gpu-4-1" in printed


@pytest.mark.slow
@pytest.mark.parametrize("extra", [GPU, ["--image", IMAGE, "--instance-type", "ml.m5.xlarge"]])
def test_the_dlc_and_cpu_instances_keep_sagemakers_default(aws, archive_path, capsys, extra):
    code, _, err = cli(capsys, *deploy_args(archive_path, *extra))
    assert code == 0, err
    assert "InferenceAmiVersion" not in variant_of(aws)


@pytest.mark.slow
@pytest.mark.parametrize("extra, message", [
    (["--image", IMAGE, *GPU, "--inference-ami", "al2-ami-sagemaker-inference-gpu-3-1"],
     "our GPU image needs NVIDIA driver 580 (CUDA 13.0), and this would run on"
     " al2-ami-sagemaker-inference-gpu-3-1 (driver 550)"),
    (["--inference-ami", "latest"], "must be auto or one of al2-ami-sagemaker-inference-gpu-2,"),
])
def test_refusals_before_any_call(aws, archive_path, capsys, extra, message):
    code, _, err = cli(capsys, *deploy_args(archive_path, *extra))
    assert code == 2 and message in one_error_line(err)
    assert aws("sagemaker").list_models()["Models"] == []


@pytest.mark.slow
def test_a_gpu_transform_of_our_image_is_refused(aws, archive_path, capsys):
    code, _, err = cli(capsys, "transform", "--archive", archive_path, "--bucket", BUCKET,
                       "--role", moto_tests.ROLE, "--endpoint", "rr", "--image", IMAGE, *GPU,
                       "--transform-input", f"s3://{BUCKET}/in/",
                       "--transform-output", f"s3://{BUCKET}/out/")
    assert code == 2 and "batch transform's GPU hosts have 535 at most" in one_error_line(err)


@pytest.mark.slow
def test_the_template_names_the_host_image(aws, archive_path, capsys, tmp_path):
    out = tmp_path / "t.json"
    code, _, err = cli(capsys, *template_args(archive_path, out, "--image", IMAGE, *GPU))
    assert code == 0, err
    assert lint(out) == []
    variant = json.loads(out.read_text())["Resources"]["EndpointConfig"]["Properties"][
        "ProductionVariants"][0]
    assert variant["InferenceAmiVersion"] == "al2023-ami-sagemaker-inference-gpu-4-1"


def test_a_components_endpoint_gets_it_and_a_component_joins_only_such_an_endpoint():
    config = component_config()  # our image on ml.g5.xlarge
    request = components.endpoint_config_request(config, "search-1")
    assert request["ProductionVariants"][0]["InferenceAmiVersion"] == host_ami.FOR_OUR_IMAGE
    valid("sagemaker", "CreateEndpointConfig", request)
    host_ami.check_existing(config, "ml.g5.xlarge", {"InferenceAmiVersion": host_ami.FOR_OUR_IMAGE})
    host_ami.check_existing(config, "ml.m5.xlarge", {})  # a CPU endpoint: any host image
    # A host image newer than the table (botocore lists it first) is trusted.
    host_ami.check_existing(config, "ml.g5.xlarge",
                            {"InferenceAmiVersion": "al2023-ami-sagemaker-inference-gpu-5-1"})
    with pytest.raises(UserError, match="endpoint search was created on SageMaker's default"
                                        " host image: create the endpoint anew"):
        host_ami.check_existing(config, "ml.g5.xlarge", {})


# --- the engine on a host whose GPU torch cannot use ---------------------------------------

DRIVER_535 = ("NVRM version: NVIDIA UNIX x86_64 Kernel Module  535.54.03  Tue Jun  6 22:20:39"
              " UTC 2023\nGCC version:  gcc version 10.5.0\n")
DRIVER_580 = ("NVRM version: NVIDIA UNIX Open Kernel Module for x86_64  580.65.06  Release"
              " Build  (dvs-builder@U16-I3-B03-4-3)  Sun Jul 27 07:09:29 UTC 2025\n")


@pytest.fixture()
def cuda_build(monkeypatch):
    """torch as PyPI's CUDA 13 build would say it is, on this machine without a GPU."""
    monkeypatch.setattr(torch.version, "cuda", "13.0")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)


def test_an_old_driver_is_refused_with_its_fix(cuda_build, tmp_path):
    proc = tmp_path / "version"
    proc.write_text(DRIVER_535)
    with pytest.raises(ModelLoadError, match=r"its driver 535 is older than the 580 that torch"
                                             r" .* \(CUDA 13.0\) needs .*INFERENCE_AMI=auto"):
        pick_device("auto", proc)
    with pytest.raises(ModelLoadError, match="RERANK_DEVICE=cuda but no CUDA device is"
                                             " visible: its driver 535"):
        pick_device("cuda", proc)
    assert pick_device("cpu", proc).type == "cpu"  # asked for: allowed


def test_a_gpu_not_given_to_the_container_is_refused(cuda_build, tmp_path):
    proc = tmp_path / "version"
    proc.write_text(DRIVER_580)
    with pytest.raises(ModelLoadError, match=r"driver 580, torch built for CUDA 13.0\): the GPU"
                                             r" was not given to this container"):
        pick_device("auto", proc)


CUDA13_ARCHS = ["sm_75", "sm_80", "sm_86", "sm_90", "sm_100", "sm_120", "compute_120"]


@pytest.mark.parametrize("capability,runs", [
    ((7, 0), False),  # V100 (ml.p3): CUDA 13 builds have no Volta kernels
    ((7, 5), True), ((8, 6), True),
    ((8, 9), True),  # L4, L40S: the sm_86 cubin runs on a later minor of its major
    ((9, 0), True),
    ((12, 1), True), ((13, 0), True),  # compute_120 PTX is compiled for what comes after
])
def test_a_gpu_has_kernels_in_a_build_for_its_architecture(capability, runs):
    assert has_kernels_for(capability, CUDA13_ARCHS) is runs
    assert has_kernels_for((7, 0), ["sm_50", "sm_60", "sm_70"])  # a CUDA 12.6 build


def test_a_gpu_the_build_has_no_kernels_for_is_refused_at_load(monkeypatch, tmp_path):
    """Not a "no kernel image is available" at the first request: one line at load."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: (7, 0))
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "Tesla V100")
    monkeypatch.setattr(torch.cuda, "get_arch_list", lambda: CUDA13_ARCHS)
    with pytest.raises(ModelLoadError, match=r"compute capability 7.0, Tesla V100\) has no"
                                             r" kernels .*use a newer GPU"):
        pick_device("auto", tmp_path / "absent")


def test_no_driver_or_a_cpu_build_runs_on_the_cpu(monkeypatch, tmp_path):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert unusable_gpu(tmp_path / "absent", "13.0") is None
    assert pick_device("auto", tmp_path / "absent").type == "cpu"
    proc = tmp_path / "version"
    proc.write_text(DRIVER_535)
    monkeypatch.setattr(torch.version, "cuda", None)  # the CPU image's torch: a choice
    assert pick_device("auto", proc).type == "cpu"
