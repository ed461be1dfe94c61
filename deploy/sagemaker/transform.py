"""``transform``: rerank a whole corpus offline with SageMaker Batch Transform.

INPUT is an s3:// prefix (or one object) of jsonlines files, one rerank request per line
in any dialect; SageMaker splits them by line, packs lines into calls of up to
MAX_PAYLOAD_MB (MultiRecord), and writes ``<file>.out`` under OUTPUT with one answer line
per request line.  The model is created if no model of the same archive, image and
settings exists yet (``<endpoint>-batch-<hash>``), then reused.  Waits with progress
(files written so far) and prints where the results are.  Nothing is created before
every setting and the input are checked; a failure names what exists.
"""

from __future__ import annotations

import posixpath

from botocore.exceptions import BotoCoreError, ClientError

from deploy import config as cfg
from deploy.errors import UserError
from deploy.sagemaker import modes, names, resources
from deploy.sagemaker.aws import Aws, error_code, error_message, translate_errors
from deploy.sagemaker.endpoints import print_policies, require_role
from deploy.sagemaker.model_source import check_source, model_data_for, resolve_image
from deploy.sagemaker.waiter import WaitFailed, judge_status, wait

RUNNING = ("InProgress", "Stopping")
@translate_errors
def run_transform(args) -> int:
    config = cfg.load(args, container=True, mode=modes.Transform.name)
    if print_policies(args, config):
        return 0
    require_role(config, "transform")
    aws = Aws(config)
    check_source(aws, config)  # the model data, before the model or the job is made
    transform(aws, config, wait=args.wait)
    return 0


def transform(aws: Aws, config, *, wait: bool = True) -> dict:
    """Check the input, create the model if needed and the job; wait; report the output."""
    s3, sm = aws.client("s3"), aws.client("sagemaker")
    inputs = list_inputs(s3, config.transform_input, config.name("transform_input"))
    check_outputs_apart(config, inputs)
    check_bucket(s3, config.transform_output, config.name("transform_output"))
    model_data, isolation = model_data_for(aws, config)
    image = resolve_image(config, aws.region)
    model, created = ensure_model(sm, config, image, model_data, isolation, aws.region)
    job = names.stamped(config.endpoint, model, config.transform_input,
                        config.transform_output)
    start_job(sm, config, job, model, created)
    if not wait:
        print(f"not waiting: `aws sagemaker describe-transform-job --transform-job-name {job}`"
              f" follows it; results go to {config.transform_output}")
        return {"TransformJobName": job}
    final = wait_for_job(sm, s3, config, job, model, inputs)
    report(final, s3, config, inputs)
    return final


def list_inputs(s3, uri: str, spelled: str = "INPUT") -> dict[str, int]:
    """{key: size} of the objects SageMaker will read (S3Prefix: every key under it)."""
    bucket, prefix = split(uri)
    found: dict[str, int] = {}
    try:
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            found.update({o["Key"]: o["Size"] for o in page.get("Contents", [])
                          if not o["Key"].endswith("/")})
    except ClientError as exc:
        raise UserError(f"cannot list {spelled} {uri}: {error_code(exc)}: {error_message(exc)}"
                        ) from None
    if not found:
        raise UserError(f"no objects under {spelled} {uri}: upload the .jsonl files first"
                        " (one rerank request per line)")
    return found


def check_outputs_apart(config, inputs: dict[str, int]) -> None:
    """No result file may land where the next run would read it as input."""
    source_bucket, source = split(config.transform_input)
    if split(config.transform_output)[0] != source_bucket:
        return
    clash = next((k for k in inputs if output_key(config, k).startswith(source)), None)
    if clash:
        raise UserError(f"the results of {clash} would land under"
                        f" {config.name('transform_input')} ({output_key(config, clash)}):"
                        f" choose {config.name('transform_output')} outside"
                        f" {config.transform_input}")


def check_bucket(s3, uri: str, spelled: str = "OUTPUT") -> None:
    bucket, _ = split(uri)
    try:
        s3.head_bucket(Bucket=bucket)
    except ClientError as exc:
        raise UserError(f"{spelled} bucket {bucket}: {error_code(exc)}: {error_message(exc)}"
                        ) from None


def ensure_model(sm, config, image: str, model_data: str, isolation: bool, region: str
                 ) -> tuple[str, bool]:
    """The model for this archive, image and environment: reused if it exists."""
    model = names.batch_model(config.endpoint, model_data, image, sorted(config.env.items()),
                              isolation, config.role, config.subnets, config.security_groups)
    if resources.model_of(sm, model):
        print(f"reusing model {model}")
        return model, False
    try:
        resources.create_model(sm, config, model, image, model_data, isolation, region)
    except (ClientError, BotoCoreError) as exc:
        raise UserError(f"CreateModel {model}: {error_code(exc)}: {error_message(exc)}"
                        " (nothing was left behind)") from None
    print(f"created model {model} ({image})")
    return model, True


def start_job(sm, config, job: str, model: str, created: bool) -> None:
    request = config.deploy_mode.job_request(config, job, model)
    try:
        sm.create_transform_job(**request, Tags=names.resource_tags(config))
    except (ClientError, BotoCoreError) as exc:
        if created:  # no job uses it: this run's model can simply go
            resources.quietly(sm.delete_model, ModelName=model)
            left = "nothing was left behind"
        else:
            left = f"model {model} was there before and is kept"
        raise UserError(f"CreateTransformJob failed: {error_code(exc)}: {error_message(exc)}"
                        f" ({left})") from None
    print(f"started transform job {job}: {config.transform_input} ->"
          f" {config.transform_output}")


def wait_for_job(sm, s3, config, job: str, model: str, inputs: dict[str, int]) -> dict:
    def show(description: dict, elapsed: float) -> str:
        done = len(written(s3, config, inputs))
        return (f"{job}: {description['TransformJobStatus']}, {done}/{len(inputs)} files"
                f" written ({elapsed:.0f} s)")

    kept = (f"; model {model} is kept for the next run (`make delete ENDPOINT="
            f"{config.endpoint}` removes it); results so far are under {config.transform_output}")
    try:
        return wait(lambda: sm.describe_transform_job(TransformJobName=job), judge_job, show,
                    lambda d: f"{job} is still {d['TransformJobStatus']} after"
                              f" {config.wait_timeout:.0f} s; it keeps running",
                    config.wait_timeout, config.poll_seconds)
    except WaitFailed as exc:
        raise WaitFailed(f"{exc}{kept}") from None
    except KeyboardInterrupt:
        raise UserError(f"stopped waiting; job {job} keeps running (`aws sagemaker"
                        f" stop-transform-job --transform-job-name {job}` stops it)") from None


def judge_job(description: dict) -> bool:
    """True when Completed, False while running; raises WaitFailed with AWS's reason."""
    return judge_status(description, "transform job", "TransformJob", RUNNING, "Completed")


def output_key(config, input_key: str) -> str:
    """Where SageMaker writes ``input_key``'s results: the key's path below the input
    prefix's folder, under the output prefix, with ``.out`` appended."""
    _, in_prefix = split(config.transform_input)
    _, out_prefix = split(config.transform_output)
    folder = posixpath.dirname(in_prefix)
    relative = input_key[len(folder):].lstrip("/") if folder else input_key
    return posixpath.join(out_prefix, relative) + ".out" if out_prefix else relative + ".out"


def written(s3, config, inputs: dict[str, int]) -> dict[str, int]:
    """{output key: size} of the results present so far."""
    bucket, prefix = split(config.transform_output)
    expected = {output_key(config, k) for k in inputs}
    found = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        found.update({o["Key"]: o["Size"] for o in page.get("Contents", [])
                      if o["Key"] in expected})
    return found


def report(final: dict, s3, config, inputs: dict[str, int]) -> None:
    out = written(s3, config, inputs)
    took = _seconds(final.get("TransformStartTime"), final.get("TransformEndTime"))
    rows = [("job", f"{final['TransformJobName']} {final['TransformJobStatus']}{took}"),
            ("model", final.get("ModelName")),
            ("input", f"{config.transform_input} ({len(inputs)} files,"
                      f" {sum(inputs.values())} bytes)"),
            ("output", f"{config.transform_output} ({len(out)} of {len(inputs)} .out files,"
                       f" {sum(out.values())} bytes)")]
    for key, value in rows:
        print(f"{key:<7} {value}")
    missing = sorted(set(output_key(config, k) for k in inputs) - set(out))
    if missing:
        print(f"note: {len(missing)} result files are not there (yet), e.g."
              f" s3://{split(config.transform_output)[0]}/{missing[0]}")


def split(uri: str) -> tuple[str, str]:
    bucket, _, key = uri[len("s3://"):].partition("/")
    return bucket, key


def _seconds(start, end) -> str:
    """" in N s" from DescribeTransformJob's start and end times (datetimes), if both."""
    return f" in {(end - start).total_seconds():.0f} s" if start and end else ""
