"""The ways to run the reranker on SageMaker, one object each.

A mode supplies everything that differs between them: its validation (AWS's limits,
named), the production variant and extra endpoint-config arguments of an endpoint, the
metric autoscaling tracks, the execution role's extra IAM statements and log group, and
for Batch Transform the job request.  Code elsewhere asks the mode; it never tests the
mode's name.  A new mode is a new class here and one entry in ``MODES``.
"""

from __future__ import annotations

import re

from deploy.errors import UserError
from deploy.sagemaker import host_ami, isolation

MB = 1024 * 1024
# Batch Transform: SageMaker's MaxPayloadInMB is 0..100 (0: no limit, SingleRecord only).
MAX_PAYLOAD_MB = 100
SPLIT_TYPES = ("Line", "None")
# multi-model-server's default max_request_size (6553500 bytes), which the DLC keeps.
DLC_PAYLOAD_MB = 6
# The fewest bytes a document takes in a JSON body: a one-character string and a comma.
SHORTEST_DOCUMENT_BYTES = 4
# How long SageMaker waits for a real-time (and serverless) invocation's answer.
REALTIME_INVOCATION_SECONDS = 60
# The longest an async invocation (InvocationTimeoutSeconds) or a batch transform call
# (InvocationsTimeoutInSeconds) may run.  The DLC's multi-model-server kills a request after
# its response timeout; these modes state it in seconds to match.  (SAGEMAKER_MODEL_SERVER_
# TIMEOUT, without _SECONDS, counts minutes: MMS multiplies it by 60.)
LONG_CALL_SECONDS = 3600
LONG_CALLS = {"SAGEMAKER_MODEL_SERVER_TIMEOUT_SECONDS": str(LONG_CALL_SECONDS)}


class Mode:
    name = ""
    endpoint = True      # an endpoint (`deploy`), or a job (`transform`)
    serverless = False   # runs on the DLC's CPU build whatever the instance type
    # MetricsConfig and the container's Prometheus endpoint (deploy.sagemaker.metrics_config):
    # AWS documents them for real-time endpoints on instances only.
    detailed_metrics = False
    component = False    # places an inference component (deploy.sagemaker.components)
    # Takes a model as files under an S3 prefix (ModelDataSource): AWS documents it for all
    # but batch transform, serverless endpoints, multi-model endpoints and Marketplace.
    uncompressed_data = True

    def validate(self, config) -> None:
        raise NotImplementedError

    def variant(self, config, model: str, current: dict | None) -> dict:
        raise NotImplementedError

    def extra_config(self, config) -> dict:
        """More CreateEndpointConfig arguments."""
        return {}

    def scaling_metric(self, config) -> dict | None:
        """The target-tracking metric, or None when this mode does not autoscale."""
        return None

    def scaling_target(self, config) -> float:
        """The value target tracking holds the metric at."""
        return float(config.target_invocations)

    def scaling_unit(self, config) -> str:
        return "invocations per instance per minute"

    def iam_statements(self, config, partition: str) -> list[dict]:
        return []

    def container_defaults(self) -> dict[str, str]:
        """Container settings this mode implies (the user's own win)."""
        # SageMaker gives up on a real-time invocation after 60 s: work past that is
        # answered to nobody, so our server drops it (SERVE_REQUEST_TIMEOUT).
        return {"SERVE_REQUEST_TIMEOUT": str(REALTIME_INVOCATION_SECONDS)}

    def log_group(self, config) -> str:
        return f"/aws/sagemaker/Endpoints/{config.endpoint}"


# ml.<family>.<size>: a typo such as ml.m5.xlargee is refused here, before an upload.
INSTANCE_TYPE = re.compile(r"ml\.[a-z][a-z0-9-]*\.(?:\d*xlarge|large|medium|small|micro|nano)")


def check_instance_type(config) -> None:
    if not INSTANCE_TYPE.fullmatch(config.instance_type):
        raise UserError(f"{config.name('instance_type')} {config.instance_type!r} is not a"
                        " SageMaker instance type (ml.<family>.<size>, e.g. ml.g5.xlarge)")


class _Instances(Mode):
    """Modes that run on instances the account pays for by the hour."""

    def validate(self, config) -> None:
        if config.instance_count < 1:
            raise UserError(f"{config.name('instance_count')} must be at least 1")
        check_instance_type(config)
        if config.max_capacity:
            low = config.min_capacity or config.instance_count
            if config.max_capacity < low:
                raise UserError(f"{config.name('max_capacity')} ({config.max_capacity}) is"
                                f" below {config.name('min_capacity')} ({low})")
            if config.target_invocations < 1:
                raise UserError(f"{config.name('target_invocations')} must be at least 1")

    def variant(self, config, model: str, current: dict | None) -> dict:
        count = config.instance_count
        if current and config.max_capacity:
            # Keep the capacity autoscaling had reached, within the new bounds, during the
            # update.
            running = max((v.get("CurrentInstanceCount") or 0)
                          for v in current.get("ProductionVariants") or [{}])
            low = config.min_capacity or config.instance_count
            count = min(max(running, low), config.max_capacity)
        return {"ModelName": model, "InstanceType": config.instance_type,
                "InitialInstanceCount": count, "InitialVariantWeight": 1.0,
                # Large models: time to download the archive and load before health checks.
                "ModelDataDownloadTimeoutInSeconds": 1800,
                "ContainerStartupHealthCheckTimeoutInSeconds": 900,
                **host_ami.variant_fields(config)}


class Realtime(_Instances):
    name = "realtime"
    detailed_metrics = True

    def validate(self, config) -> None:
        super().validate(config)
        if config.max_capacity and (config.min_capacity or config.instance_count) < 1:
            raise UserError(f"{config.name('min_capacity')} must be at least 1 for a real-time"
                            " endpoint")

    def scaling_metric(self, config) -> dict:
        # The concurrency metric (requests in the container, queued ones included) is
        # published every 10 s where invocations are counted per minute, so a burst adds
        # instances about a minute sooner; scale-in is as slow as with invocations.
        metric = ("SageMakerVariantConcurrentRequestsPerModelHighResolution"
                  if config.target_concurrency else "SageMakerVariantInvocationsPerInstance")
        return {"PredefinedMetricSpecification": {"PredefinedMetricType": metric}}

    def scaling_target(self, config) -> float:
        return float(config.target_concurrency or config.target_invocations)

    def scaling_unit(self, config) -> str:
        if config.target_concurrency:
            return "concurrent requests per instance (10-second metric)"
        return super().scaling_unit(config)


class Async(_Instances):
    name = "async"

    def container_defaults(self) -> dict[str, str]:
        # An async invocation may run up to an hour (InvocationTimeoutSeconds): no request
        # deadline of ours, and the DLC's model server waits as long.
        return dict(LONG_CALLS)

    def validate(self, config) -> None:
        super().validate(config)
        if not (config.async_output or "").startswith("s3://"):
            raise UserError(f"async mode needs {config.name('async_output')}, an s3:// prefix for"
                            " the results")

    def extra_config(self, config) -> dict:
        output = {"S3OutputPath": config.async_output, **isolation.output_key(config)}
        if config.async_failure:
            output["S3FailurePath"] = config.async_failure
        topics = {k: v for k, v in (("SuccessTopic", config.sns_success),
                                    ("ErrorTopic", config.sns_error)) if v}
        if topics:
            output["NotificationConfig"] = topics
        return {"AsyncInferenceConfig": {
            "OutputConfig": output,
            "ClientConfig": {"MaxConcurrentInvocationsPerInstance":
                             config.async_max_invocations}}}

    def scaling_metric(self, config) -> dict:
        return {"CustomizedMetricSpecification": {
            "MetricName": "ApproximateBacklogSizePerInstance", "Namespace": "AWS/SageMaker",
            "Dimensions": [{"Name": "EndpointName", "Value": config.endpoint}],
            "Statistic": "Average"}}

    def scaling_unit(self, config) -> str:
        return "waiting requests per instance"

    def iam_statements(self, config, partition: str) -> list[dict]:
        paths = [p for p in (config.async_output, config.async_failure) if p]
        out = [{"Sid": "WriteAsyncResults", "Effect": "Allow", "Action": "s3:PutObject",
                "Resource": [_objects(p, partition) for p in paths]}]
        topics = [t for t in (config.sns_success, config.sns_error) if t]
        if topics:
            out.append({"Sid": "NotifyAsync", "Effect": "Allow", "Action": "sns:Publish",
                        "Resource": topics})
        return out


def refuse_misplaced(config) -> None:
    """Settings that only one mode takes, refused elsewhere by name."""
    name = config.name
    if config.provisioned_concurrency and not config.deploy_mode.serverless:
        raise UserError(f"{name('provisioned_concurrency')} applies to serverless"
                        f" endpoints ({name('mode')}=serverless)")
    if config.scale_to_zero and not (config.mode == "async" and config.max_capacity):
        raise UserError(f"{name('scale_to_zero')} applies to async endpoints with autoscaling"
                        f" ({name('mode')}=async {name('max_capacity')}=N); real-time ones"
                        " scale to zero as inference components (MODE=component MIN_COPIES=0)")
    if config.target_concurrency < 0:
        raise UserError(f"{name('target_concurrency')} must be above 0 (or 0: track"
                        f" {name('target_invocations')}), not {config.target_concurrency:g}")
    if config.target_concurrency and not (config.mode == "realtime" and config.max_capacity):
        raise UserError(f"{name('target_concurrency')} applies to real-time endpoints with"
                        f" autoscaling ({name('mode')}=realtime {name('max_capacity')}=N);"
                        f" components scale on {name('scale_metric')} and"
                        f" {name('target_per_copy')}, async endpoints on their backlog")


class Serverless(Mode):
    name = "serverless"
    uncompressed_data = False
    serverless = True

    def validate(self, config) -> None:
        if config.memory_mb not in range(1024, 6145, 1024):
            raise UserError(f"{config.name('memory_mb')} must be 1024, 2048, ... 6144 for"
                            f" serverless, not"
                            f" {config.memory_mb}")
        if not 1 <= config.max_concurrency <= 200:
            raise UserError(f"{config.name('max_concurrency')} must be 1..200 for serverless, not"
                            f" {config.max_concurrency}")
        if config.max_capacity:
            raise UserError(f"serverless endpoints scale by {config.name('max_concurrency')};"
                            f" unset {config.name('max_capacity')}")
        if not 0 <= config.provisioned_concurrency <= config.max_concurrency:
            raise UserError(f"{config.name('provisioned_concurrency')} must be 0.."
                            f"{config.name('max_concurrency')} ({config.max_concurrency}),"
                            f" not {config.provisioned_concurrency}")

    def variant(self, config, model: str, current: dict | None) -> dict:
        serverless = {"MemorySizeInMB": config.memory_mb,
                      "MaxConcurrency": config.max_concurrency}
        if config.provisioned_concurrency:
            serverless["ProvisionedConcurrency"] = config.provisioned_concurrency
        return {"ModelName": model, "ServerlessConfig": serverless}


class Component(Mode):
    """An inference component on a (new or shared) endpoint: deploy.sagemaker.components."""

    name = "component"
    detailed_metrics = True
    component = True

    def validate(self, config) -> None:
        from deploy.sagemaker import components

        components.validate(config)

    def log_group(self, config) -> str:
        return f"/aws/sagemaker/InferenceComponents/{config.component}"


class Transform(_Instances):
    """Batch Transform: S3 jsonlines in, one answer line per request line out; no endpoint."""

    name = "transform"
    uncompressed_data = False
    endpoint = False

    def container_defaults(self) -> dict[str, str]:
        # The job's own environment carries a call's limits (job_environment), also for a
        # model an earlier job created.
        return {}

    def validate(self, config) -> None:
        super().validate(config)
        for field in ("transform_input", "transform_output"):
            value = getattr(config, field) or ""
            if not value.startswith("s3://") or len(value) <= len("s3://"):
                raise UserError(f"{config.name(field)} must be an s3:// URI"
                                f" (s3://bucket/prefix/), not {value!r}")
        # S3Prefix reads every key that starts with the input's text.
        if (config.transform_output.rstrip("/") + "/").startswith(config.transform_input):
            raise UserError(f"{config.name('transform_output')} must not be"
                            f" {config.name('transform_input')} or inside it"
                            " (results would be read back as input next time)")
        if config.split_type not in SPLIT_TYPES:
            raise UserError(f"{config.name('split_type')} must be one of"
                            f" {', '.join(SPLIT_TYPES)}, not {config.split_type!r}")
        if not 1 <= config.max_payload_mb <= MAX_PAYLOAD_MB:
            raise UserError(f"{config.name('max_payload_mb')} must be 1..{MAX_PAYLOAD_MB}, not"
                            f" {config.max_payload_mb}")
        if config.max_payload_mb > DLC_PAYLOAD_MB and not config.image:
            raise UserError(f"{config.name('max_payload_mb')} above {DLC_PAYLOAD_MB} needs our"
                            f" own image ({config.name('image')}): the DLC's"
                            " multi-model-server refuses requests over 6553500 bytes")
        if config.max_concurrent_transforms < 0:
            raise UserError(f"{config.name('max_concurrent_transforms')} must be >= 0"
                            " (0: SageMaker's default)")

    def job_request(self, config, job: str, model: str) -> dict:
        """CreateTransformJob's arguments: jsonlines, lines packed into MultiRecord batches
        (SplitType=None: each file whole, one call each -- AWS batches split records only)."""
        request = {
            "TransformJobName": job, "ModelName": model,
            "BatchStrategy": "MultiRecord" if config.split_type == "Line" else "SingleRecord",
            "MaxPayloadInMB": config.max_payload_mb,
            "TransformInput": {
                "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix",
                                                "S3Uri": config.transform_input}},
                "ContentType": "application/jsonlines", "SplitType": config.split_type,
                "CompressionType": "None"},
            "TransformOutput": {"S3OutputPath": config.transform_output,
                                "Accept": "application/jsonlines", "AssembleWith": "Line",
                                **isolation.output_key(config)},
            "TransformResources": {"InstanceType": config.instance_type,
                                   "InstanceCount": config.instance_count,
                                   **isolation.volume_key(config, "VolumeKmsKeyId")},
            "Environment": self.job_environment(config),
            # A call may take as long as its mini-batch needs (600 s unless set).
            "ModelClientConfig": {"InvocationsTimeoutInSeconds": LONG_CALL_SECONDS},
        }
        if config.max_concurrent_transforms:
            request["MaxConcurrentTransforms"] = config.max_concurrent_transforms
        return request

    def job_environment(self, config) -> dict[str, str]:
        """The container's limits raised to what one call of the job carries.

        Our server refuses bodies above SERVE_MAX_PAYLOAD_BYTES.  Every call's body is
        jsonlines (a MultiRecord mini-batch of lines, or with SplitType=None a whole file),
        and the engine counts all its lines' documents together against
        RERANK_MAX_BODY_DOCUMENTS (default: RERANK_MAX_DOCUMENTS, 1000): a batch of lines
        could pass that.  So the payload size is the limit: no body of MaxPayloadInMB can
        hold more documents than one per 4 bytes (``"x",``).  The hooks on the DLC run the
        same engine and read the same variable.  The DLC's model server may take as long as
        the call (LONG_CALLS).  A value set with ENV (the model's environment) is kept."""
        payload = config.max_payload_mb * MB
        environment = {"SERVE_MAX_PAYLOAD_BYTES": str(payload),
                       **{k: v for k, v in LONG_CALLS.items() if k not in config.env}}
        if "RERANK_MAX_BODY_DOCUMENTS" not in config.env:
            environment["RERANK_MAX_BODY_DOCUMENTS"] = str(payload // SHORTEST_DOCUMENT_BYTES)
        return environment

    def iam_statements(self, config, partition: str) -> list[dict]:
        bucket, _, prefix = config.transform_input[len("s3://"):].partition("/")
        return [
            {"Sid": "ListTransformInput", "Effect": "Allow", "Action": "s3:ListBucket",
             "Resource": f"arn:{partition}:s3:::{bucket}",
             "Condition": {"StringLike": {"s3:prefix": [f"{prefix}*"]}}},
            # The "/" after the bucket always: "arn:...:::bucket*" would match other buckets.
            {"Sid": "ReadTransformInput", "Effect": "Allow", "Action": "s3:GetObject",
             "Resource": f"arn:{partition}:s3:::{bucket}/{prefix}*"},
            {"Sid": "WriteTransformOutput", "Effect": "Allow", "Action": "s3:PutObject",
             "Resource": _objects(config.transform_output, partition)},
        ]

    def log_group(self, config) -> str:
        return "/aws/sagemaker/TransformJobs"


MODES = {m.name: m for m in (Realtime(), Serverless(), Async(), Component(), Transform())}
ENDPOINT_MODES = tuple(name for name, m in MODES.items() if m.endpoint)


def get(name: str, allowed: tuple[str, ...] = ENDPOINT_MODES, spelled: str = "mode") -> Mode:
    if name not in allowed:
        hint = " (batch inference: `make transform`)" if name in ("batch", "transform") else ""
        raise UserError(f"{spelled} must be one of {', '.join(allowed)}, not {name!r}{hint}")
    return MODES[name]


def _objects(uri: str, partition: str) -> str:
    return f"arn:{partition}:s3:::{uri[len('s3://'):].rstrip('/')}/*"
