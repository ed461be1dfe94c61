"""``delete``: autoscaling, the endpoint, every endpoint config and model made for it.

Batch Transform models made for it go too; ``--purge`` also deletes the model archives in
S3, except those another live endpoint or any model left still uses.  What is already gone
is reported as such, so it can be re-run.  With ``--component`` it deletes one inference component
(deploy.sagemaker.components.delete) and the endpoint only when no other component is left;
an endpoint that still hosts components is never deleted without naming them.

Names are cut to 40 characters (names.base), so another endpoint's configs and models can
be named like this one's: the ``reranker-endpoint`` tag and what the endpoints reference
decide (resources.endpoint_resources); what is named alike but kept is listed as ``kept``.
"""

from __future__ import annotations

from botocore.exceptions import BotoCoreError, ClientError

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
        models = components.models_of(sm, config.endpoint, config.component)[0]
        data = _data_of(sm, models)
        results = components.delete(aws, config.endpoint, config.component,
                                    timeout=config.wait_timeout, poll=config.poll_seconds)
        mine = f"component {config.component} on endpoint {config.endpoint}"
    else:
        current = resources.describe(sm, config.endpoint)
        if current and components.hosts_components(sm, current):
            components.refuse_if_hosting(sm, config.endpoint)
        configs, models, kept = resources.endpoint_resources(
            sm, config.endpoint, current, names.ours(config.endpoint),
            names.batch_models(config.endpoint))
        data = _data_of(sm, models)
        results = _delete_endpoint(aws, sm, config.endpoint, configs, models)
        results += sorted(kept.items())
        mine = f"endpoint {config.endpoint}"
    _report(results)  # before the purge: what is deleted is said even if the purge fails
    if args.purge:
        purged = _purge_unshared(aws, sm, data, mine)
        _report(purged)
        results += purged
    failed = [w for w, o in results if o.startswith("failed")]
    if failed:
        raise UserError(f"could not delete {', '.join(failed)}")
    return 0


def _report(results: list[tuple[str, str]]) -> None:
    for what, outcome in results:
        print(f"{outcome:<13} {what}", flush=True)


def _purge_unshared(aws, sm, data: set, mine: str) -> list[tuple[str, str]]:
    """Purge each archive or prefix in ``data`` that nothing but ``mine`` serves: archives
    are named by model and sha256 alone, so endpoints deployed from one archive share it,
    and SageMaker reads it again whenever it starts an instance."""
    uris = sorted(u for u in data if u and u.startswith("s3://"))
    if not uris:
        return []
    try:
        users = _users(sm, set(uris), mine)
    except (BotoCoreError, ClientError, UserError) as exc:
        # Not knowing is not "unused": keep them, and fail so that nobody thinks them gone.
        why = exc if isinstance(exc, UserError) else f"{error_code(exc)}: {error_message(exc)}"
        return [(uri, f"failed (kept: could not check which models use it: {why})")
                for uri in uris]
    return [(uri, f"kept ({users[uri]} still uses it)" if uri in users
             else _purged(aws.client("s3"), uri)) for uri in uris]


def _purged(s3, uri: str) -> str:
    """``_purge``, any failure of S3 or of the connection one "failed (...)" outcome."""
    try:
        return _purge(s3, uri)
    except (BotoCoreError, UserError) as exc:
        return f"failed ({exc})"


def _users(sm, uris: set[str], mine: str) -> dict[str, str]:
    """{uri: who else uses it}, from every live endpoint (DescribeEndpoint, its configs,
    their models, or the inference components it hosts), then every model still in the
    account (one an endpoint's rollback config, a batch transform or a later deploy would
    start from); stops once every uri has one."""
    users: dict[str, str] = {}
    data: dict[str, set[str]] = {}  # model -> its data: endpoints often share models' data
    for who, model in _serving(sm):
        if who == mine:
            continue
        if model not in data:
            data[model] = resources.model_data_uris(resources.model_of(sm, model))
        for uri in uris - users.keys():
            if any(_overlap(uri, other) for other in data[model]):
                users[uri] = who
        if users.keys() == uris:
            break
    return users


def _serving(sm):
    """(who, model) for every live endpoint's models or components, endpoint by endpoint,
    then for every model left (this endpoint's own are deleted by now)."""
    for page in sm.get_paginator("list_endpoints").paginate():
        for item in page.get("Endpoints", []):
            yield from _served_by(sm, item["EndpointName"])
    for page in sm.get_paginator("list_models").paginate():
        for item in page.get("Models", []):
            yield f"model {item['ModelName']}", item["ModelName"]


def _served_by(sm, endpoint: str):
    description = resources.describe(sm, endpoint)
    variants = [v for config in resources.served_configs(description)
                for v in resources.variants_of(sm, config)]
    models = sorted({v["ModelName"] for v in variants if v.get("ModelName")})
    yield from ((f"endpoint {endpoint}", model) for model in models)
    if variants and not models:  # an endpoint for components: its variants name no model
        for item in components.components_on(sm, endpoint):
            name = item["InferenceComponentName"]
            spec = (components.describe_component(sm, name) or {}).get("Specification") or {}
            if spec.get("ModelName"):
                yield f"component {name} on endpoint {endpoint}", spec["ModelName"]


def _overlap(uri: str, other: str) -> bool:
    """The same object, or one inside the other's prefix (a prefix's purge takes all)."""
    return (uri == other or (uri.endswith("/") and other.startswith(uri))
            or (other.endswith("/") and uri.startswith(other)))


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
    results = [("autoscaling", _scaling_removed(aws, endpoint)),
               ("rollback alarms", guardrails.remove_alarms(aws, endpoint)),
               (f"endpoint {endpoint}",
                resources.delete(sm.delete_endpoint, EndpointName=endpoint))]
    results += [(f"endpoint config {name}",
                 resources.delete(sm.delete_endpoint_config, EndpointConfigName=name))
                for name in sorted(configs)]
    return results + [(f"model {name}", resources.delete(sm.delete_model, ModelName=name))
                      for name in sorted(models)]


def _scaling_removed(aws, endpoint: str) -> str:
    """An identity without autoscaling rights still deletes the endpoint, and is told."""
    try:
        return "deleted" if autoscaling.remove(aws, endpoint) else "none"
    except autoscaling.Unreadable as exc:
        return f"not checked ({exc})"


def _data_of(sm, models) -> set:
    return {uri for m in models for uri in resources.model_data_uris(resources.model_of(sm, m))}
