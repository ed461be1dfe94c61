"""``delete``: autoscaling, the endpoint, every endpoint config and model made for it.

Batch Transform models of the same name base go too; ``--purge`` also deletes the model
archives in S3.  What is already gone is reported as such, so it can be re-run.  With
``--component`` it deletes one inference component (deploy.sagemaker.components.delete)
and the endpoint only when no other component is left; an endpoint that still hosts
components is never deleted without naming them.
"""

from __future__ import annotations

from botocore.exceptions import ClientError

from deploy import config as cfg
from deploy.errors import UserError
from deploy.sagemaker import (
    autoscaling,
    components,
    guardrails,
    names,
    resources,
    upload_files,
)
from deploy.sagemaker.aws import Aws, error_code, error_message, translate_errors


@translate_errors
def run_delete(args) -> int:
    config = cfg.load(args)
    aws = Aws(config)
    sm = aws.client("sagemaker")
    if config.component:
        models = resources.our_names(sm, "list_models", "Models", "ModelName",
                                     components.model_base(config.component))
        data = _data_of(sm, models)
        results = components.delete(aws, config.endpoint, config.component,
                                    timeout=config.wait_timeout, poll=config.poll_seconds)
    else:
        current = resources.describe(sm, config.endpoint)
        if current and components.hosts_components(sm, current):
            components.refuse_if_hosting(sm, config.endpoint)
        configs, models = _ours(sm, config.endpoint)
        data = _data_of(sm, models)
        results = _delete_endpoint(aws, sm, config.endpoint, configs, models)
    if args.purge:
        for uri in sorted(u for u in data if u and u.startswith("s3://")):
            results.append((uri, _purge(aws.client("s3"), uri)))
    for what, outcome in results:
        print(f"{outcome:<13} {what}")
    failed = [w for w, o in results if o.startswith("failed")]
    if failed:
        raise UserError(f"could not delete {', '.join(failed)}")
    return 0


def _purge(s3, uri: str) -> str:
    """Delete a model.tar.gz, or every file of a prefix this tool uploaded (its files.json
    says so) and then its list; a prefix it did not upload is kept."""
    bucket, _, key = uri[len("s3://"):].partition("/")
    if not uri.endswith("/"):
        return resources.delete(s3.delete_object, Bucket=bucket, Key=key)
    listing = upload_files.listing_key(uri)
    if listing is None or resources.described(
            s3.head_object, "HeadObject", uri, Bucket=bucket, Key=listing[1]) is None:
        return "kept (a prefix this tool did not upload)"
    try:
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=key):
            keys = [{"Key": item["Key"]} for item in page.get("Contents", [])]
            if not keys:
                continue
            answer = s3.delete_objects(Bucket=bucket, Delete={"Objects": keys, "Quiet": True})
            if answer.get("Errors"):  # a 200 can still refuse some keys: keep files.json
                first = answer["Errors"][0]
                return (f"failed ({len(answer['Errors'])} files kept, first {first.get('Key')}:"
                        f" {first.get('Code')})")
    except ClientError as exc:
        return f"failed ({error_code(exc)}: {error_message(exc)})"
    return resources.delete(s3.delete_object, Bucket=bucket, Key=listing[1])


def _delete_endpoint(aws, sm, endpoint: str, configs, models) -> list[tuple[str, str]]:
    results = [("autoscaling", "deleted" if autoscaling.remove(aws, endpoint) else "none"),
               ("rollback alarms", guardrails.remove_alarms(aws, endpoint)),
               (f"endpoint {endpoint}",
                resources.delete(sm.delete_endpoint, EndpointName=endpoint))]
    results += [(f"endpoint config {name}",
                 resources.delete(sm.delete_endpoint_config, EndpointConfigName=name))
                for name in sorted(configs)]
    return results + [(f"model {name}", resources.delete(sm.delete_model, ModelName=name))
                      for name in sorted(models)]


def _data_of(sm, models) -> set:
    return {resources.model_data_of(resources.model_of(sm, m).get("PrimaryContainer", {}))
            for m in models}


def _ours(sm, endpoint: str) -> tuple[set[str], set[str]]:
    """The endpoint configs and models this tool made for ``endpoint``."""
    current = resources.describe(sm, endpoint)
    configs = set(resources.our_names(sm, "list_endpoint_configs", "EndpointConfigs",
                                      "EndpointConfigName", endpoint))
    if current:
        configs.add(current["EndpointConfigName"])
    models = set(resources.our_names(sm, "list_models", "Models", "ModelName", endpoint))
    models.update(resources.our_names(sm, "list_models", "Models", "ModelName", endpoint,
                                      names.batch_models(endpoint)))
    for name in configs:
        models.update(v["ModelName"] for v in resources.config_variants(sm, name))
    return configs, models
