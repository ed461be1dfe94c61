"""What a SageMaker model runs: the archive's S3 URI (uploaded if needed) and the image."""

from __future__ import annotations

from pathlib import Path

from deploy.package import archive
from deploy.sagemaker import images


def resolve_image(config, region: str, instance_type: str | None = None) -> str:
    """IMAGE_URI, or the HF DLC for the region, instance type (cpu/gpu) and versions;
    ``instance_type``: where it runs when not ``config.instance_type`` (an existing
    endpoint's, for a component)."""
    if config.image:
        return config.image
    return images.dlc_image(region, instance_type or config.instance_type,
                            serverless=config.deploy_mode.serverless,
                            transformers_version=config.transformers_version,
                            pytorch_version=config.pytorch_version,
                            py_version=config.py_version)


def check_source(aws, config) -> None:
    """Before anything is created: MODEL_DATA is in S3, or the archive to upload reads as a
    complete model.tar.gz (the check is remembered; the upload does not read it again)."""
    if config.model_data:
        check_model_data(aws, config)
    else:
        from deploy.sagemaker.upload import checked_sha

        checked_sha(Path(config.archive))


def check_model_data(aws, config) -> None:
    """MODEL_DATA names an object (or a prefix with objects under it) that exists: SageMaker
    would otherwise take the model and fail only when an instance starts."""
    from botocore.exceptions import ClientError

    from deploy.errors import UserError
    from deploy.sagemaker.aws import error_code, error_message

    uri, spelled = config.model_data, config.name("model_data")
    bucket, _, key = uri[len("s3://"):].partition("/")
    s3 = aws.client("s3")
    try:
        if key.endswith("/"):
            found = bool(s3.list_objects_v2(Bucket=bucket, Prefix=key, MaxKeys=1)
                         .get("KeyCount"))
        else:
            s3.head_object(Bucket=bucket, Key=key)
            found = True
    except ClientError as exc:
        code = error_code(exc)
        if code in ("403", "AccessDenied", "Forbidden"):
            print(f"note: cannot check that {uri} exists ({code}); the execution role reads"
                  " it")
            return
        if code not in ("404", "NoSuchKey", "NotFound", "NoSuchBucket"):
            raise UserError(f"{spelled} {uri}: {code}: {error_message(exc)}") from None
        found = False
    if not found:
        what = "no object is under the prefix" if key.endswith("/") else "no such object"
        raise UserError(f"{spelled} {uri} does not exist ({what} in S3): upload the model"
                        f" first (`make upload` prints its URI), or unset {spelled} to upload"
                        f" {config.name('archive')}")


def model_data_for(aws, config) -> tuple[str, bool]:
    """The model's S3 URI (uploading it if needed): the archive, or with UNCOMPRESSED=1 the
    prefix of its files; and whether network isolation fits."""
    if config.model_data:
        return config.model_data, bool(config.network_isolation)
    from deploy.sagemaker.upload import upload
    from deploy.sagemaker.upload_files import upload_files

    path = Path(config.archive)
    if (not config.uncompressed and config.deploy_mode.uncompressed_data and path.is_file()
            and path.stat().st_size > archive.LARGE_INPUT):
        print(f"{path} is over {archive.LARGE_INPUT >> 30} GB: with"
              f" {config.name('uncompressed')}=1 SageMaker copies its files with nothing to"
              " gunzip at each instance start")
    uri = (upload_files if config.uncompressed else upload)(aws, path)
    requirements = (archive.read_member(path, "code/requirements.txt") or b"").decode()
    needs_pypi = any(line.strip() and not line.lstrip().startswith("#")
                     for line in requirements.splitlines())
    if needs_pypi and config.network_isolation:
        print("code/requirements.txt lists packages the DLC must pip-install: deploying"
              " without network isolation")
    return uri, bool(config.network_isolation) and not needs_pypi
