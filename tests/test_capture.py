"""Data capture (CAPTURE=s3://..., CAPTURE_PERCENT): the endpoint config, the role policy,
status, the CloudFormation template, and the refusals, against moto's server with the
real boto3 clients."""

from __future__ import annotations

import base64
import json

import pytest

import test_deploy_moto as moto_tests
from test_deploy_moto import BUCKET, ROLE, cli, deploy_args, one_error_line

moto_url = moto_tests.moto_url
aws = moto_tests.aws
archive_path = moto_tests.archive_path

pytestmark = pytest.mark.slow  # packages a model, runs moto's server

CAPTURE = f"s3://{BUCKET}/capture/"
KEY = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"


def test_deploy_captures_a_sample_to_s3(aws, archive_path, capsys):
    code, _, err = cli(capsys, *deploy_args(archive_path, "--capture", CAPTURE,
                                            "--capture-percent", "25", "--kms-key", KEY))
    assert code == 0, err
    sm = aws("sagemaker")
    name = sm.describe_endpoint(EndpointName="rr")["EndpointConfigName"]
    capture = sm.describe_endpoint_config(EndpointConfigName=name)["DataCaptureConfig"]
    assert capture == {
        "EnableCapture": True, "InitialSamplingPercentage": 25,
        "DestinationS3Uri": f"s3://{BUCKET}/capture", "KmsKeyId": KEY,
        "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}],
        "CaptureContentTypeHeader": {"JsonContentTypes": ["application/json"]}}
    _, printed, _ = cli(capsys, "status", "--endpoint", "rr")
    # moto's DescribeEndpoint has no CurrentSamplingPercentage (AWS's has): "?%" here.
    assert f"% of requests to s3://{BUCKET}/capture (Started)" in printed


def test_the_role_may_write_there_and_only_there(aws, capsys):
    code, printed, err = cli(capsys, "deploy", "--print-role-policy", "--role", ROLE,
                             "--bucket", BUCKET, "--capture", CAPTURE)
    assert code == 0, err
    statements = {s["Sid"]: s for s in json.loads(printed)["Statement"]}
    assert statements["WriteDataCapture"] == {
        "Sid": "WriteDataCapture", "Effect": "Allow", "Action": "s3:PutObject",
        "Resource": f"arn:aws:s3:::{BUCKET}/capture/*"}


def test_the_template_captures_too(aws, archive_path, capsys, tmp_path):
    out = tmp_path / "t.json"
    code, _, err = cli(capsys, "cloudformation", *deploy_args(archive_path)[1:],
                       "--capture", CAPTURE, "--out", out)
    assert code == 0, err
    config = json.loads(out.read_text())["Resources"]["EndpointConfig"]["Properties"]
    assert config["DataCaptureConfig"]["InitialSamplingPercentage"] == 10  # the default


@pytest.mark.parametrize("extra, message", [
    (["--capture", "bucket/prefix"], "must be an s3:// prefix"),
    (["--capture", CAPTURE, "--capture-percent", "0"], "must be 1..100"),
    (["--capture", CAPTURE, "--mode", "serverless"], "SageMaker offers none for"),
    (["--capture", CAPTURE, "--mode", "component", "--component", "c"],
     "SageMaker offers none for"),
])
def test_refusals_before_any_call(aws, archive_path, capsys, extra, message):
    code, _, err = cli(capsys, *deploy_args(archive_path, *extra))
    assert code == 2 and message in one_error_line(err)
    assert aws("sagemaker").list_models()["Models"] == []


def capture_record(body, encoding="JSON") -> str:
    data = json.dumps(body)
    if encoding == "BASE64":
        data = base64.b64encode(data.encode()).decode()
    return json.dumps({"captureData": {
        "endpointInput": {"observedContentType": "application/json", "mode": "INPUT",
                          "data": data, "encoding": encoding},
        "endpointOutput": {"observedContentType": "application/json", "mode": "OUTPUT",
                           "data": "{}", "encoding": "JSON"}},
        "eventMetadata": {"eventId": "e", "inferenceTime": "2026-12-06T10:00:00Z"},
        "eventVersion": "0"})


def test_captured_traffic_becomes_an_evaluation_set(aws, bert_dir, capsys, tmp_path):
    s3 = aws("s3")
    key = "capture/rr/AllTraffic/2026/12/06/10/00-00-000-{}.jsonl"
    s3.put_object(Bucket=BUCKET, Key=key.format("a"), Body="\n".join([
        capture_record({"query": "capital of the usa", "documents": ["Washington", "Paris"],
                        "top_n": 1}),
        capture_record({"query": "panda", "texts": ["a bear", "a restaurant"]}, "BASE64"),
        "not a capture record"]))
    s3.put_object(Bucket=BUCKET, Key=key.format("b"), Body=capture_record(
        {"text_pairs": [["capital of the usa", "Washington"], ["capital of the usa", "Rome"]]}))
    s3.put_object(Bucket=BUCKET, Key="capture/other-endpoint/x.jsonl",
                  Body=capture_record({"query": "elsewhere", "documents": ["x"]}))
    out = tmp_path / "judgments"
    code, printed, err = cli(capsys, "capture-export", "--endpoint", "rr", "--capture",
                             CAPTURE, "--out", out)
    assert code == 0, err
    assert "2 queries, 5 documents from 3 requests (1 records skipped)" in printed
    queries = [json.loads(line) for line in (out / "queries.jsonl").read_text().splitlines()]
    texts = {q["_id"]: q["text"] for q in queries}
    assert sorted(texts.values()) == ["capital of the usa", "panda"]
    corpus = {d["_id"]: d["text"] for d in map(json.loads,
                                                (out / "corpus.jsonl").read_text().splitlines())}
    run = {}
    for line in (out / "captured.trec").read_text().splitlines():
        qid, _, doc, rank, _, _ = line.split()
        run.setdefault(texts[qid], []).append(corpus[doc])
    # One query's candidates across its requests, in the order they were sent (newest file
    # first), each document once.
    assert run == {"capital of the usa": ["Washington", "Rome", "Paris"],
                   "panda": ["a bear", "a restaurant"]}

    # Judged (one row left empty), the folder is what evaluate reads.
    rows = (out / "to_judge.tsv").read_text().splitlines()
    judged = [rows[0]] + [r.replace("\t\t", "\t1\t" if "Washington" in r or "bear" in r
                                    else "\t0\t", 1) for r in rows[1:-1]] + [rows[-1]]
    (out / "qrels").mkdir()
    (out / "qrels" / "test.tsv").write_text("\n".join(judged) + "\n")
    report = tmp_path / "m.json"
    code, _, err = cli(capsys, "evaluate", "--model", bert_dir, "--data", out,
                       "--run", out / "captured.trec", "--json", report)
    assert code == 0, err
    assert json.loads(report.read_text())["queries"] == 2


def test_capture_export_says_what_is_missing(aws, capsys, tmp_path):
    code, _, err = cli(capsys, "capture-export", "--endpoint", "rr", "--out", tmp_path)
    assert code == 2 and "CAPTURE" in one_error_line(err).upper()
    code, _, err = cli(capsys, "capture-export", "--endpoint", "rr", "--capture", CAPTURE,
                       "--out", tmp_path)
    assert code == 2 and "no rerank request found" in one_error_line(err)


def test_ids_stay_those_judged_when_more_traffic_is_exported():
    """A later export into the same folder (the user's qrels/test.tsv beside it) must give
    each query and document the id it had: ids are content hashes, not arrival numbers."""
    from deploy.evaluation.captured import _collect

    def body(query, docs):
        return json.dumps({"query": query, "documents": docs}).encode()

    first, _, _ = _collect([body("panda", ["a bear"]), body("car", ["a wheel"])])
    later, _, _ = _collect([body("new query", ["x"]), body("panda", ["a bear"]),
                            body("car", ["a wheel"])])
    assert {t: q for q, t in first.items()} == {
        t: q for q, t in later.items() if t in ("panda", "car")}
