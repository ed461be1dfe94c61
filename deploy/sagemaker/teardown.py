"""``delete``: autoscaling, the endpoint, every endpoint config and model made for it.

Batch Transform models of the same name base go too; ``--purge`` also deletes the model
archives in S3.  What is already gone is reported as such, so it can be re-run.
"""

from __future__ import annotations

from deploy import config as cfg
from deploy.errors import UserError
from deploy.sagemaker import autoscaling, names, resources
from deploy.sagemaker.aws import Aws, translate_errors


@translate_errors
def run_delete(args) -> int:
    config = cfg.load(args)
    aws = Aws(config)
    sm = aws.client("sagemaker")
    configs, models = _ours(sm, config.endpoint)
    data = {resources.model_of(sm, m).get("PrimaryContainer", {}).get("ModelDataUrl")
            for m in models}
    results = [("autoscaling", "deleted" if autoscaling.remove(aws, config.endpoint)
                else "none"),
               (f"endpoint {config.endpoint}",
                resources.delete(sm.delete_endpoint, EndpointName=config.endpoint))]
    results += [(f"endpoint config {name}",
                 resources.delete(sm.delete_endpoint_config, EndpointConfigName=name))
                for name in sorted(configs)]
    results += [(f"model {name}", resources.delete(sm.delete_model, ModelName=name))
                for name in sorted(models)]
    if args.purge:
        for uri in sorted(u for u in data if u and u.startswith("s3://")):
            bucket, _, key = uri[5:].partition("/")
            results.append((uri, resources.delete(aws.client("s3").delete_object,
                                                  Bucket=bucket, Key=key)))
    for what, outcome in results:
        print(f"{outcome:<13} {what}")
    failed = [w for w, o in results if o.startswith("failed")]
    if failed:
        raise UserError(f"could not delete {', '.join(failed)}")
    return 0


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
