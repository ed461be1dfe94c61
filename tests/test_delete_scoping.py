"""``delete`` and ``prune`` take only what is theirs, against moto in server mode.

The tool names configs and models after the endpoint cut to 40 characters (names.base), so
two endpoints whose names share those 40 characters share the name prefix: the
``reranker-endpoint`` tag and what the endpoints reference decide whose a resource is.
Archives are named by model and sha256 alone, so endpoints deployed from one archive share
it, and ``--purge`` keeps an archive another endpoint still serves.

moto 5.2.5 has no inference components (and no UpdateEndpoint; see test_deploy_moto.py):
the component model lookup, and purge seeing an archive a component serves, are checked
with a Stubber on a real boto3 client, as in test_components.py.
"""

from __future__ import annotations

from datetime import datetime, timezone

import boto3
import pytest
from botocore.stub import Stubber

import test_deploy_moto as moto_tests
from deploy.sagemaker import components, names, rollout
from test_deploy_moto import BUCKET, ROLE, cli, deploy_args, one_error_line

moto_url = moto_tests.moto_url
aws = moto_tests.aws
archive_path = moto_tests.archive_path

BLUE = "search-reranker-production-eu-west-1-tenant-blue"
GREEN = "search-reranker-production-eu-west-1-tenant-green"


def deploy(capsys, archive_path, endpoint: str, *extra) -> None:
    code, _, err = cli(capsys, *deploy_args(archive_path, *extra), "--endpoint", endpoint)
    assert code == 0, err


def served(sm, endpoint: str) -> tuple[str, str]:
    """(endpoint config, model) the endpoint serves."""
    config = sm.describe_endpoint(EndpointName=endpoint)["EndpointConfigName"]
    (variant,) = sm.describe_endpoint_config(EndpointConfigName=config)["ProductionVariants"]
    return config, variant["ModelName"]


def configs(sm) -> set[str]:
    return {c["EndpointConfigName"] for c in sm.list_endpoint_configs()["EndpointConfigs"]}


def models(sm) -> set[str]:
    return {m["ModelName"] for m in sm.list_models()["Models"]}


def test_the_two_names_share_their_cut():
    assert names.base(BLUE) == names.base(GREEN) and BLUE != GREEN


@pytest.mark.slow  # packages a model, runs moto's server
def test_delete_leaves_a_namesakes_config_and_model(aws, archive_path, capsys):
    deploy(capsys, archive_path, BLUE)
    deploy(capsys, archive_path, GREEN)
    sm = aws("sagemaker")
    green = served(sm, GREEN)
    code, out, err = cli(capsys, "delete", "--endpoint", BLUE)
    assert code == 0, err
    assert configs(sm) == {green[0]} and models(sm) == {green[1]}
    assert [e["EndpointName"] for e in sm.list_endpoints()["Endpoints"]] == [GREEN]
    assert f"kept (tagged for endpoint {GREEN}) endpoint config {green[0]}" in out
    assert f"kept (tagged for endpoint {GREEN}) model {green[1]}" in out
    code, _, err = cli(capsys, "delete", "--endpoint", GREEN)
    assert code == 0, err
    assert configs(sm) == set() and models(sm) == set()


@pytest.mark.slow  # packages a model, runs moto's server
def test_untagged_namesakes_are_kept_while_another_endpoint_shares_the_cut(
        aws, archive_path, capsys):
    """Made before the tool tagged: a name alone cannot say whose, so it stays (and says
    so) while another endpoint has the same cut; what the endpoint serves is its own."""
    deploy(capsys, archive_path, BLUE)
    deploy(capsys, archive_path, GREEN)
    sm = aws("sagemaker")
    blue = served(sm, BLUE)
    old = names.stamped(BLUE, "made by an older version")
    data = sm.describe_model(ModelName=blue[1])["PrimaryContainer"]["ModelDataUrl"]
    sm.create_model(ModelName=old, ExecutionRoleArn=ROLE, PrimaryContainer={
        "Image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/reranker:1",
        "ModelDataUrl": data})
    code, out, err = cli(capsys, "delete", "--endpoint", BLUE)
    assert code == 0, err
    assert blue[0] not in configs(sm) and blue[1] not in models(sm)
    assert old in models(sm) and f"same 40-character name prefix) model {old}" in out
    # With no other endpoint of that cut left, it can only be a leftover of theirs.
    assert cli(capsys, "delete", "--endpoint", GREEN)[0] == 0
    assert models(sm) == set()


@pytest.mark.slow  # packages a model, runs moto's server
def test_prune_after_an_update_leaves_a_namesakes_config_and_model(
        aws, archive_path, capsys):
    deploy(capsys, archive_path, BLUE)
    deploy(capsys, archive_path, GREEN)
    sm = aws("sagemaker")
    blue, green = served(sm, BLUE), served(sm, GREEN)
    # An update makes a new model and config first (moto then fails UpdateEndpoint).
    code, _, err = cli(capsys, *deploy_args(archive_path, "--instance-count", "2"),
                       "--endpoint", BLUE)
    assert code == 2 and "UpdateEndpoint failed" in one_error_line(err)
    (newer,) = configs(sm) - {blue[0], green[0]}
    rollout.prune(sm, BLUE, keep={newer, blue[0]})
    assert configs(sm) == {newer, blue[0], green[0]}
    rollout.prune(sm, BLUE, keep={newer})  # as after a second, successful update
    assert configs(sm) == {newer, green[0]} and models(sm) == {newer, green[1]}


@pytest.mark.slow  # packages a model, runs moto's server
def test_purge_keeps_an_archive_another_endpoint_serves(aws, archive_path, capsys):
    deploy(capsys, archive_path, "rr")
    deploy(capsys, archive_path, "other")
    sm, s3 = aws("sagemaker"), aws("s3")
    archive = sm.describe_model(ModelName=served(sm, "rr")[1])["PrimaryContainer"][
        "ModelDataUrl"]
    key = archive[len(f"s3://{BUCKET}/"):]
    code, out, err = cli(capsys, "delete", "--endpoint", "rr", "--purge")
    assert code == 0, err
    assert f"kept (endpoint other still uses it) {archive}" in out
    assert s3.head_object(Bucket=BUCKET, Key=key)["Metadata"]["sha256"]
    code, out, err = cli(capsys, "delete", "--endpoint", "other", "--purge")
    assert code == 0, err
    assert f"deleted       {archive}" in out
    assert s3.list_objects_v2(Bucket=BUCKET).get("KeyCount", 0) == 0


@pytest.mark.slow  # packages a model, runs moto's server
def test_purge_keeps_an_archive_a_model_left_still_uses(aws, archive_path, capsys):
    """A model no endpoint serves (a rollback config's, a batch transform's) would start
    from the archive again: it counts as a user too."""
    deploy(capsys, archive_path, "rr")
    sm, s3 = aws("sagemaker"), aws("s3")
    model = sm.describe_model(ModelName=served(sm, "rr")[1])
    archive = model["PrimaryContainer"]["ModelDataUrl"]
    sm.create_model(ModelName="kept-for-rollback", PrimaryContainer=model["PrimaryContainer"],
                    ExecutionRoleArn=ROLE)
    code, out, err = cli(capsys, "delete", "--endpoint", "rr", "--purge")
    assert code == 0, err
    assert f"kept (model kept-for-rollback still uses it) {archive}" in out
    assert s3.list_objects_v2(Bucket=BUCKET).get("KeyCount", 0) > 0


@pytest.mark.slow  # packages a model, runs moto's server
def test_purge_deletes_an_archive_no_other_endpoint_serves(
        aws, archive_path, tmp_path, capsys):
    deploy(capsys, archive_path, "rr")
    other = tmp_path / "other.tar.gz"  # another archive, so another key
    other.write_bytes(archive_path.read_bytes() + b"\0" * 1024)
    deploy(capsys, other, "other")
    sm, s3 = aws("sagemaker"), aws("s3")
    data = {e: sm.describe_model(ModelName=served(sm, e)[1])["PrimaryContainer"][
        "ModelDataUrl"] for e in ("rr", "other")}
    assert data["rr"] != data["other"]
    code, out, err = cli(capsys, "delete", "--endpoint", "rr", "--purge")
    assert code == 0, err
    assert f"deleted       {data['rr']}" in out
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET)["Contents"]]
    assert [f"s3://{BUCKET}/{k}" for k in keys] == [data["other"]]


@pytest.mark.slow  # packages a model, runs moto's server
def test_a_failed_guarded_update_names_its_rollback_alarms(aws, archive_path, capsys):
    assert cli(capsys, *deploy_args(archive_path, "--instance-count", "2"))[0] == 0
    code, _, err = cli(capsys, *deploy_args(archive_path, "--instance-count", "2",
                                            "--rollout", "canary", "--bake-seconds", "300",
                                            "--rollback-p99-ms", "250"))
    line = one_error_line(err)
    assert code == 2 and "UpdateEndpoint failed" in line  # moto: no UpdateEndpoint
    assert "created by this run: rollback alarms rr-rollback-errors, rr-rollback-latency" in line
    assert cli(capsys, "delete", "--endpoint", "rr")[0] == 0


def test_batch_models_of_namesakes_differ():
    """Same archive, image and environment: one model per endpoint, even with one cut."""
    spec = ("s3://models/a/model.tar.gz", "image", [])
    assert names.batch_model(BLUE, *spec) != names.batch_model(GREEN, *spec)
    assert names.batch_models(BLUE).match(names.batch_model(BLUE, *spec))
    # An uncut name keeps the name its models always had.
    assert names.batch_model("rr", *spec) == f"rr-batch-{names.digest(*spec)[:12]}"


# --- inference components: a Stubber on a real client (moto has none) ------------------

NOW = datetime(2026, 12, 4, tzinfo=timezone.utc)
ARN = "arn:aws:sagemaker:us-east-1:123456789012:model/x"
LONG = "reranker-multilingual-large-production"  # 38 characters: cut at 37, like the next
ALIKE = "reranker-multilingual-large-productionx"


def component_item(name: str) -> dict:
    return {"InferenceComponentName": name, "InferenceComponentArn": ARN,
            "EndpointName": "search", "EndpointArn": ARN, "VariantName": "AllTraffic",
            "InferenceComponentStatus": "InService", "CreationTime": NOW,
            "LastModifiedTime": NOW}


def models_of_long(models: list[str], alike_runs: str, tags: list[list[dict]]
                   ) -> tuple[set[str], dict[str, str]]:
    """``components.models_of`` for LONG, on a stubbed real client: ``models`` listed,
    ALIKE (same cut) running ``alike_runs``, and each model looked at answering ``tags``."""
    sm = boto3.client("sagemaker", region_name="us-east-1", aws_access_key_id="x",
                      aws_secret_access_key="x")
    cut = components.model_base(LONG)
    with Stubber(sm) as stub:
        stub.add_response("list_models", {"Models": [
            {"ModelName": m, "ModelArn": ARN, "CreationTime": NOW} for m in models]},
            {"NameContains": cut})
        stub.add_response("list_inference_components", {"InferenceComponents": [
            component_item(LONG), component_item(ALIKE)]}, {"NameContains": cut[:-3]})
        described = {**component_item(ALIKE), "Specification": {"ModelName": alike_runs}}
        described.pop("VariantName")
        stub.add_response("describe_inference_component", described,
                          {"InferenceComponentName": ALIKE})
        for answer in tags:
            stub.add_response("list_tags", {"Tags": answer}, {"ResourceArn": ARN})
        found = components.models_of(sm, "search", LONG, running=models[0])
        stub.assert_no_pending_responses()
    return found


def test_component_models_of_a_namesake_component_are_kept():
    assert components.model_base(LONG) == components.model_base(ALIKE)
    cut = components.model_base(LONG)
    mine, theirs, older = (f"{cut}-20261201-12000{i}-abcdef" for i in range(3))
    ours, kept = models_of_long([mine, theirs, older], theirs,
                                [[{"Key": names.TAG, "Value": "search"}]])
    assert ours == {mine}
    assert kept == {f"model {theirs}": f"kept (component {ALIKE} runs it)",
                    f"model {older}": f"kept (component {ALIKE} has the same 37-character"
                                      " name prefix)"}


def test_purge_sees_an_archive_a_component_serves():
    """Another component on a shared endpoint counts as a user of the archive too."""
    from deploy.sagemaker import teardown

    data = "s3://models/rerankers/bge/abc/model.tar.gz"
    sm = boto3.client("sagemaker", region_name="us-east-1", aws_access_key_id="x",
                      aws_secret_access_key="x")
    with Stubber(sm) as stub:
        stub.add_response("list_endpoints", {"Endpoints": [
            {"EndpointName": "search", "EndpointArn": ARN, "CreationTime": NOW,
             "LastModifiedTime": NOW, "EndpointStatus": "InService"}]})
        stub.add_response("describe_endpoint", {
            "EndpointName": "search", "EndpointArn": ARN, "EndpointConfigName": "cfg",
            "EndpointStatus": "InService", "CreationTime": NOW, "LastModifiedTime": NOW})
        stub.add_response("describe_endpoint_config", {
            "EndpointConfigName": "cfg", "EndpointConfigArn": ARN, "CreationTime": NOW,
            "ProductionVariants": [{"VariantName": "AllTraffic",
                                    "InstanceType": "ml.g5.xlarge"}]})
        stub.add_response("list_inference_components", {"InferenceComponents": [
            component_item("bge-m3")]}, {"EndpointNameEquals": "search"})
        described = {**component_item("bge-m3"), "Specification": {"ModelName": "bge-ic-1"}}
        described.pop("VariantName")
        stub.add_response("describe_inference_component", described)
        stub.add_response("describe_model", {
            "ModelName": "bge-ic-1", "ModelArn": ARN, "CreationTime": NOW,
            "PrimaryContainer": {"Image": "i", "ModelDataUrl": data}})
        users = teardown._users(sm, {data}, "component minilm-en on endpoint search")
        stub.assert_no_pending_responses()
    assert users == {data: "component bge-m3 on endpoint search"}


def test_component_tag_tells_namesake_components_models_apart():
    """A model tagged with the component it was made for is pruned with that component,
    whichever components share its name's cut."""
    cut = components.model_base(LONG)
    mine, older, theirs = (f"{cut}-20261201-12000{i}-abcdef" for i in range(3))
    ours, kept = models_of_long([mine, older, theirs], f"{cut}-other", [
        [{"Key": names.TAG, "Value": "search"}, {"Key": names.COMPONENT_TAG, "Value": owner}]
        for owner in (LONG, ALIKE)])
    assert ours == {mine, older}
    assert kept == {f"model {theirs}": f"kept (made for component {ALIKE})"}
