"""``transform`` (Batch Transform) against moto in server mode, with the real boto3 clients.

Same moto server and fixtures as tests/test_deploy_moto.py.  What moto 5.2.5 cannot do,
and so is not tested against a server here:
- a transform job runs nothing: CreateTransformJob records the request and the job is
  Completed at once, writing no output.  The tests check the request SageMaker would run,
  the model behind it, and how the report counts result files (written here where the job
  would write them, at the key SageMaker's documented naming gives).
- jobs never fail or stop, and CreateTransformJob accepts any request, so a failed job
  is checked with ``judge_job`` on DescribeTransformJob shapes.
So one test replays the job moto recorded against our local server, as SageMaker would
run it (tests/batch_transform.py's split rules), and puts the results where the job
would; the 10,000-line jsonlines test is tests/test_jsonlines.py.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest

import batch_transform
import test_deploy_moto as moto_tests
from bench.local_server import start_server
from deploy.errors import UserError
from deploy.package import archive
from deploy.sagemaker import images, transform
from deploy.sagemaker.modes import MB
from test_deploy_moto import BUCKET, REGION, ROLE, cli, one_error_line

# The same moto server (module-scoped), reset per test, and the same packaged archive.
moto_url = moto_tests.moto_url
aws = moto_tests.aws
archive_path = moto_tests.archive_path

ROOT = Path(__file__).resolve().parent.parent

LINES = [{"query": "what is a panda?", "documents": ["a bear", "a car"]},
         {"query": "capital of France", "texts": ["Paris", "Berlin"]}]


def transform_args(archive_path, *extra):
    return ["transform", "--archive", archive_path, "--bucket", BUCKET, "--role", ROLE,
            "--endpoint", "rr", "--transform-input", f"s3://{BUCKET}/in/",
            "--transform-output", f"s3://{BUCKET}/out/", *extra]


@pytest.fixture()
def inputs(aws):
    body = "".join(json.dumps(line) + "\n" for line in LINES)
    for key in ("in/part-0.jsonl", "in/sub/part-1.jsonl"):
        aws("s3").put_object(Bucket=BUCKET, Key=key, Body=body.encode())
    return aws


def test_transform_creates_the_model_then_reuses_it(inputs, archive_path, capsys):
    code, out, err = cli(capsys, *transform_args(archive_path, "--instance-count", "2"))
    assert code == 0, err
    sm = inputs("sagemaker")
    [job] = sm.list_transform_jobs()["TransformJobSummaries"]
    described = sm.describe_transform_job(TransformJobName=job["TransformJobName"])
    assert described["BatchStrategy"] == "MultiRecord" and described["MaxPayloadInMB"] == 6
    source = described["TransformInput"]
    assert source["ContentType"] == "application/jsonlines" and source["SplitType"] == "Line"
    assert source["DataSource"]["S3DataSource"] == {"S3DataType": "S3Prefix",
                                                    "S3Uri": f"s3://{BUCKET}/in/"}
    assert described["TransformOutput"] == {"S3OutputPath": f"s3://{BUCKET}/out/",
                                            "Accept": "application/jsonlines",
                                            "AssembleWith": "Line"}
    assert described["TransformResources"] == {"InstanceType": "ml.m5.xlarge",
                                               "InstanceCount": 2}
    # A mini-batch's lines together may pass RERANK_MAX_DOCUMENTS: the payload is the limit;
    # and a call may run an hour, on the DLC's model server too (stated in seconds).
    assert described["Environment"] == {"SERVE_MAX_PAYLOAD_BYTES": str(6 * MB),
                                        "RERANK_MAX_BODY_DOCUMENTS": str(6 * MB // 4),
                                        "SAGEMAKER_MODEL_SERVER_TIMEOUT_SECONDS": "3600"}
    assert described["ModelClientConfig"] == {"InvocationsTimeoutInSeconds": 3600}
    [model] = sm.list_models()["Models"]
    assert described["ModelName"] == model["ModelName"] and "-batch-" in model["ModelName"]
    container = sm.describe_model(ModelName=model["ModelName"])["PrimaryContainer"]
    assert container["Image"] == images.dlc_image(REGION, "ml.m5.xlarge",
                                                  transformers_version="4.51.3")
    assert container["Environment"]["SAGEMAKER_PROGRAM"] == "inference.py"
    assert f"created model {model['ModelName']}" in out
    assert f"output  s3://{BUCKET}/out/ (0 of 2 .out files" in out
    assert "input   s3://models/in/ (2 files" in out
    assert sm.list_endpoints()["Endpoints"] == []  # a transform makes no endpoint

    code, out, err = cli(capsys, *transform_args(archive_path))
    assert code == 0, err
    assert f"reusing model {model['ModelName']}" in out
    assert len(sm.list_models()["Models"]) == 1
    assert len(sm.list_transform_jobs()["TransformJobSummaries"]) == 2
    code, out, _ = cli(capsys, "delete", "--endpoint", "rr")  # takes the batch model too
    assert code == 0 and f"deleted       model {model['ModelName']}" in out
    assert sm.list_models()["Models"] == []


def test_a_body_document_limit_set_with_env_is_kept(inputs, archive_path, capsys):
    code, _, err = cli(capsys, *transform_args(archive_path, "--env",
                                               "RERANK_MAX_BODY_DOCUMENTS=5000"))
    assert code == 0, err
    sm = inputs("sagemaker")
    [job] = sm.list_transform_jobs()["TransformJobSummaries"]
    described = sm.describe_transform_job(TransformJobName=job["TransformJobName"])
    assert "RERANK_MAX_BODY_DOCUMENTS" not in described["Environment"]
    [model] = sm.list_models()["Models"]
    container = sm.describe_model(ModelName=model["ModelName"])["PrimaryContainer"]
    assert container["Environment"]["RERANK_MAX_BODY_DOCUMENTS"] == "5000"


def test_report_counts_result_files_where_sagemaker_writes_them(inputs, archive_path,
                                                                 capsys):
    # Where the job would put them: <output>/<path below the input's folder>.out.
    for key in ("out/part-0.jsonl.out", "out/sub/part-1.jsonl.out"):
        inputs("s3").put_object(Bucket=BUCKET, Key=key, Body=b'{"results": []}\n')
    code, out, err = cli(capsys, *transform_args(archive_path))
    assert code == 0, err
    assert f"output  s3://{BUCKET}/out/ (2 of 2 .out files" in out and "note:" not in out


def test_make_transform_passes_its_variables(inputs, archive_path):
    """`make transform INPUT=... OUTPUT=... SPLIT=... MAX_PAYLOAD_MB=...` reaches the job."""
    def make(*variables):
        # -o: never rebuild .venv from here, whatever changed in requirements.txt.
        return subprocess.run(["make", "-s", "-C", str(ROOT), "-o", ".venv/.installed",
                               "transform", *variables], capture_output=True, text=True,
                              timeout=300)

    done = make(f"ARCHIVE={archive_path}", f"BUCKET={BUCKET}", f"ROLE={ROLE}", "ENDPOINT=mk",
                f"INPUT=s3://{BUCKET}/in/", f"OUTPUT=s3://{BUCKET}/out/", "SPLIT=None",
                "MAX_PAYLOAD_MB=3", "INSTANCE_TYPE=ml.c5.xlarge", "INSTANCE_COUNT=3")
    assert done.returncode == 0, done.stderr
    sm = inputs("sagemaker")
    [job] = sm.list_transform_jobs()["TransformJobSummaries"]
    described = sm.describe_transform_job(TransformJobName=job["TransformJobName"])
    assert job["TransformJobName"].startswith("mk-")
    assert (described["TransformInput"]["SplitType"], described["MaxPayloadInMB"],
            described["BatchStrategy"]) == ("None", 3, "SingleRecord")  # each file whole
    assert described["TransformResources"] == {"InstanceType": "ml.c5.xlarge",
                                               "InstanceCount": 3}
    refused = make(f"INPUT=s3://{BUCKET}/in/")
    assert refused.returncode != 0 and "set INPUT=s3://bucket/in/ and OUTPUT=" in refused.stderr


@pytest.mark.slow
def test_the_job_runs_on_our_server_as_sagemaker_would_run_it(inputs, archive_path, capsys,
                                                              tmp_path):
    """moto stands in for the control plane, our server for the container: the request
    ``transform`` made is replayed against the server from the archive, under the job's
    environment, through Batch Transform's split rules (tests/batch_transform.py); the
    results go where SageMaker writes them, and the report finds them."""
    code, _, err = cli(capsys, *transform_args(archive_path, "--max-payload-mb", "1"))
    assert code == 0, err
    sm, s3 = inputs("sagemaker"), inputs("s3")
    [summary] = sm.list_transform_jobs()["TransformJobSummaries"]
    job = sm.describe_transform_job(TransformJobName=summary["TransformJobName"])
    source, output = job["TransformInput"], job["TransformOutput"]
    assert source["SplitType"] == "Line"
    headers = {"Content-Type": source["ContentType"], "Accept": output["Accept"]}
    model_dir = tmp_path / "model"
    archive.safe_extract(archive_path, model_dir)
    config = SimpleNamespace(transform_input=f"s3://{BUCKET}/in/",
                             transform_output=output["S3OutputPath"])
    inputs_listed = transform.list_inputs(s3, config.transform_input)
    with start_server(model_dir, env={"RERANK_WARMUP": "0", **job["Environment"]}) as url, \
            httpx.Client(base_url=url, timeout=300) as http:
        def invoke(payload: bytes) -> bytes:
            response = http.post("/invocations", content=payload, headers=headers)
            assert response.status_code == 200, response.text[:300]
            return response.content

        for key in inputs_listed:
            local = tmp_path / key.replace("/", "_")
            local.write_bytes(s3.get_object(Bucket=BUCKET, Key=key)["Body"].read())
            result = batch_transform.transform(local, invoke, strategy=job["BatchStrategy"],
                                               max_payload_mb=job["MaxPayloadInMB"])
            answers = [json.loads(line) for line in result.decode().split("\n")[:-1]]
            assert len(answers) == len(LINES)
            assert sorted(r["index"] for r in answers[0]["results"]) == [0, 1]  # Cohere
            assert sorted(r["index"] for r in answers[1]) == [0, 1]             # TEI
            s3.put_object(Bucket=BUCKET, Key=transform.output_key(config, key), Body=result)
    assert set(transform.written(s3, config, inputs_listed)) == {
        "out/part-0.jsonl.out", "out/sub/part-1.jsonl.out"}


def test_output_keys_follow_sagemakers_naming():
    def key(source, output, input_key):
        config = SimpleNamespace(transform_input=source, transform_output=output)
        return transform.output_key(config, input_key)

    assert key("s3://b/in/", "s3://b/out/", "in/a.jsonl") == "out/a.jsonl.out"
    assert key("s3://b/in/a.jsonl", "s3://b/out", "in/a.jsonl") == "out/a.jsonl.out"
    assert key("s3://b/in/", "s3://b/out/", "in/x/a.jsonl") == "out/x/a.jsonl.out"
    # AWS's example: input prefix without a folder keeps the whole key.
    assert key("s3://b/input-name-prefix", "s3://b/output-name-prefix",
               "input-name-prefix/dataset01/data.csv") == \
        "output-name-prefix/input-name-prefix/dataset01/data.csv.out"


@pytest.mark.parametrize("extra,words", [
    (["--transform-input", "in/"], "--transform-input must be an s3:// URI"),
    (["--transform-output", "s3://"], "--transform-output must be an s3:// URI"),
    (["--transform-output", f"s3://{BUCKET}/in"], "must not be --transform-input"),
    (["--transform-input", f"s3://{BUCKET}", "--transform-output", f"s3://{BUCKET}/out/"],
     "or inside it"),
    (["--split-type", "RecordIO"], "--split-type must be one of"),
    (["--max-payload-mb", "0"], "--max-payload-mb must be 1..100"),
    (["--max-payload-mb", "101"], "--max-payload-mb must be 1..100"),
    (["--max-payload-mb", "20"], "needs our own image"),
    (["--instance-type", "m5.xlarge"], "not a SageMaker instance type"),
    (["--instance-count", "0"], "--instance-count must be at least 1"),
    (["--max-payload-mb", "many"], "invalid int value"),
    (["--transform-input", f"s3://{BUCKET}/nothing-here/"], "no objects under --transform-input"),
    (["--transform-input", "s3://no-such-bucket/in/"], "cannot list --transform-input"),
    (["--transform-output", "s3://no-such-bucket/out/"], "--transform-output bucket no-such"),
    (["--env", "RERANK_MAX_LENGTH=abc"], "RERANK_MAX_LENGTH"),
    (["--env", "SERVE_MAX_PAYLOAD_BYTES=10"], "SERVE_MAX_PAYLOAD_BYTES must be at least"),
    (["--transform-input", f"s3://{BUCKET}/in/part", "--transform-output",
      f"s3://{BUCKET}/in/"], "would land under --transform-input"),
    (["--endpoint", "bad_name!"], "not valid"),
])
def test_bad_input_is_one_line_and_creates_nothing(inputs, archive_path, capsys, extra,
                                                   words):
    try:
        code, _, err = cli(capsys, *transform_args(archive_path), *extra)
    except SystemExit as exc:  # argparse refuses a non-integer itself, also with exit 2
        code, err = exc.code, capsys.readouterr().err
        assert code == 2 and words in err
    else:
        assert code == 2 and words in one_error_line(err)
    sm = inputs("sagemaker")
    assert sm.list_models()["Models"] == []
    assert sm.list_transform_jobs()["TransformJobSummaries"] == []


def test_role_is_required_and_the_policy_covers_input_and_output(inputs, archive_path,
                                                                  capsys):
    code, _, err = cli(capsys, "transform", "--archive", archive_path,
                       "--transform-input", f"s3://{BUCKET}/in/",
                       "--transform-output", f"s3://{BUCKET}/out/")
    assert code == 2 and "set --role" in one_error_line(err)
    code, out, _ = cli(capsys, *transform_args(archive_path, "--print-role-policy"))
    assert code == 0
    statements = {s["Sid"]: s for s in json.loads(out)["Statement"]}
    assert statements["ReadTransformInput"]["Resource"] == f"arn:aws:s3:::{BUCKET}/in/*"
    assert statements["WriteTransformOutput"]["Resource"] == f"arn:aws:s3:::{BUCKET}/out/*"
    assert statements["ListTransformInput"]["Condition"] == {
        "StringLike": {"s3:prefix": ["in/*"]}}
    assert "TransformJobs" in json.dumps(statements["TransformJobLogs"])
    assert all("*" not in str(s["Action"]) for s in statements.values())
    assert inputs("sagemaker").list_models()["Models"] == []


def test_an_input_at_a_buckets_root_grants_that_bucket_alone(aws, archive_path, capsys):
    """"arn:aws:s3:::bucket*" would also grant bucket-prod-secrets/..."""
    args = transform_args(archive_path, "--print-role-policy")
    args[args.index("--transform-input") + 1] = f"s3://{BUCKET}"
    args[args.index("--transform-output") + 1] = "s3://elsewhere/out/"
    code, out, _ = cli(capsys, *args)
    assert code == 0
    statements = {s["Sid"]: s for s in json.loads(out)["Statement"]}
    assert statements["ReadTransformInput"]["Resource"] == f"arn:aws:s3:::{BUCKET}/*"


def test_deploy_refuses_the_transform_mode(inputs, archive_path, capsys):
    code, _, err = cli(capsys, "deploy", "--archive", archive_path, "--bucket", BUCKET,
                       "--role", ROLE, "--mode", "transform")
    assert code == 2 and "`make transform`" in one_error_line(err)


def test_judge_job_reads_describe_transform_job():
    def described(status, reason=None):
        out = {"TransformJobName": "rr-job", "TransformJobStatus": status}
        return {**out, "FailureReason": reason} if reason else out

    assert transform.judge_job(described("InProgress")) is False
    assert transform.judge_job(described("Stopping")) is False
    assert transform.judge_job(described("Completed")) is True
    with pytest.raises(UserError, match="is Failed: ClientError: 400 Bad Request"):
        transform.judge_job(described("Failed", "ClientError: 400 Bad Request"))
    with pytest.raises(UserError, match="is Stopped: no reason given"):
        transform.judge_job(described("Stopped"))
