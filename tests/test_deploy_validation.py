"""Bad input to the deploy command line is one line and exit code 2, found before any upload
or create call; against moto in server mode with the real boto3 clients
(test_deploy_moto's fixtures), and against real sockets for the network failures."""

from __future__ import annotations

import gzip
import json
import socket
import threading
import time
from pathlib import Path

import pytest
from botocore.exceptions import ConnectionClosedError, ReadTimeoutError

import test_deploy_moto as moto_tests
from deploy.sagemaker import aws as aws_module
from test_deploy_moto import BUCKET, ROLE, cli, deploy_args, one_error_line

moto_url = moto_tests.moto_url
aws = moto_tests.aws
archive_path = moto_tests.archive_path


def nothing_made(aws) -> None:
    """No model, endpoint config or endpoint, and nothing uploaded."""
    sm = aws("sagemaker")
    assert sm.list_models()["Models"] == []
    assert sm.list_endpoint_configs()["EndpointConfigs"] == []
    assert sm.list_endpoints()["Endpoints"] == []
    assert aws("s3").list_objects_v2(Bucket=BUCKET).get("KeyCount", 0) == 0


class Listener:
    """A TCP listener on 127.0.0.1 that accepts, reads the request, and then either closes
    the connection at once or never answers; counts the connections."""

    def __init__(self, answer_never: bool):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.answer_never, self.connections, self.held = answer_never, 0, []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            try:
                conn.recv(65536)
            except OSError:
                pass
            if self.answer_never:
                self.held.append(conn)
            else:
                conn.close()

    def close(self) -> None:
        for conn in self.held:
            conn.close()
        self.sock.close()


@pytest.fixture()
def closing():
    listener = Listener(answer_never=False)
    yield listener
    listener.close()


@pytest.fixture()
def silent():
    listener = Listener(answer_never=True)
    yield listener
    listener.close()


# ---------------------------------------------------------------- A: network failures

def test_error_code_and_message_of_botocore_http_client_errors():
    closed = ConnectionClosedError(endpoint_url="http://127.0.0.1:1/")
    assert closed.response is None  # what made error_code fail with AttributeError
    assert aws_module.error_code(closed) == "ConnectionClosedError"
    assert "Connection was closed" in aws_module.error_message(closed)
    late = ReadTimeoutError(endpoint_url="http://127.0.0.1:1/")
    assert aws_module.error_code(late) == "ReadTimeoutError"
    assert aws_module.is_missing(late) is False


def test_status_against_a_listener_that_closes_is_one_line(aws, closing, capsys, monkeypatch):
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    code, _, err = cli(capsys, "status", "--endpoint", "rr", "--endpoint-url", closing.url)
    assert code == 2
    assert one_error_line(err).startswith("error: ConnectionClosedError: Connection was closed")


def test_a_silent_endpoint_is_tried_once_within_the_read_timeout(silent):
    from deploy.client import RerankClient

    client = RerankClient("rr", region="us-east-1", endpoint_url=silent.url, timeout=1.0)
    began = time.monotonic()
    with pytest.raises(ReadTimeoutError):
        client.rerank("q", ["a", "b"])
    assert time.monotonic() - began < 5
    assert silent.connections == 1  # botocore's retries used to send it three times


def test_invoke_against_a_silent_endpoint_is_one_line(silent, capsys, monkeypatch):
    from deploy.client import rerank_client

    # The CLI's client with a shorter read timeout; everything else as it ships.
    real = rerank_client.RerankClient.__init__
    monkeypatch.setattr(rerank_client.RerankClient, "__init__",
                        lambda self, *a, **k: real(self, *a, **{**k, "timeout": 1.0}))
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    code, _, err = cli(capsys, "invoke", "--endpoint", "rr", "--region", "us-east-1",
                       "--endpoint-url", silent.url, "-q", "q", "-d", "a", "b")
    assert code == 2 and "ReadTimeoutError" in one_error_line(err)
    assert silent.connections == 1


# ---------------------------------------------------------------- B: endpoint URLs

@pytest.mark.parametrize("argv", [
    ["upload", "--endpoint-url", "notaurl"],
    ["upload", "--s3-endpoint-url", "notaurl"],
    ["deploy", "--role", ROLE, "--endpoint-url", "notaurl"],
    ["deploy", "--role", ROLE, "--s3-endpoint-url", "ftp://host"],
    ["status", "--endpoint", "rr", "--endpoint-url", "notaurl"],
    ["status", "--endpoint", "rr", "--endpoint-url", "http://127.0.0.1:99999"],
    ["ecr-login", "123456789012.dkr.ecr.us-east-1.amazonaws.com/r", "--endpoint-url", "nope"],
    ["invoke", "-q", "q", "-d", "a", "--endpoint-url", "notaurl"],
])
def test_a_bad_endpoint_url_is_one_line(aws, archive_path, capsys, argv):
    code, _, err = cli(capsys, *argv, *(["--archive", archive_path]
                                        if argv[0] in ("upload", "deploy") else []))
    assert code == 2 and "is not an endpoint URL" in one_error_line(err)
    nothing_made(aws)


# ---------------------------------------------------------------- C: output paths

def test_package_output_that_cannot_be_a_file(bert_dir, tmp_path, capsys):
    folder = tmp_path / "out"
    folder.mkdir()
    code, _, err = cli(capsys, "package", bert_dir, "-o", folder)
    assert code == 2 and "is a folder" in one_error_line(err)
    blocker = tmp_path / "file"
    blocker.write_text("x")
    code, _, err = cli(capsys, "package", bert_dir, "-o", blocker / "model.tar.gz")
    assert code == 2 and "is a file, not a folder" in one_error_line(err)
    code, _, err = cli(capsys, "package", bert_dir, "-o", "/proc/x.tar.gz")
    assert code == 2 and "cannot write in /proc" in one_error_line(err)
    assert list(folder.iterdir()) == []


def test_cloudformation_out_is_checked_before_the_upload(aws, archive_path, tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    code, _, err = cli(capsys, "cloudformation", "--archive", archive_path, "--bucket", BUCKET,
                       "--role", ROLE, "--out", tmp_path / "empty")
    assert code == 2 and "--out" in one_error_line(err) and "is a folder" in err
    nothing_made(aws)


def test_capture_export_out_must_be_a_folder(aws, tmp_path, capsys):
    (tmp_path / "notadir.txt").write_text("x")
    code, _, err = cli(capsys, "capture-export", "--capture", "s3://models/capture/",
                       "--out", tmp_path / "notadir.txt")
    assert code == 2 and "is a file: name a folder" in one_error_line(err)


@pytest.mark.parametrize("args,needle", [
    (["--json", "{empty}"], "--json"),
    (["--save-runs", "{file}"], "--save-runs"),
    (["--chart", "{file}/c.png"], "--chart"),
    (["--chart", "{tmp}/c.xyz"], "matplotlib writes no .xyz"),
])
def test_evaluate_outputs_are_checked_before_any_request(closing, tmp_path, capsys, args,
                                                         needle):
    (tmp_path / "empty").mkdir()
    (tmp_path / "file").write_text("x")
    args = [a.format(empty=tmp_path / "empty", file=tmp_path / "file", tmp=tmp_path)
            for a in args]
    code, _, err = cli(capsys, "evaluate", "--endpoint-url", closing.url, "--data",
                       tmp_path / "no-data", *args)
    assert code == 2 and needle in one_error_line(err)
    assert closing.connections == 0


@pytest.mark.parametrize("args", [["--json", "{empty}"], ["--chart", "{file}/c.png"]])
def test_loadtest_outputs_are_checked_before_any_request(closing, tmp_path, capsys, args):
    (tmp_path / "empty").mkdir()
    (tmp_path / "file").write_text("x")
    args = [a.format(empty=tmp_path / "empty", file=tmp_path / "file") for a in args]
    code, _, err = cli(capsys, "loadtest", "--endpoint-url", closing.url, "--requests", "1",
                       "--concurrency", "1", *args)
    assert code == 2 and args[0] in one_error_line(err)
    assert closing.connections == 0


# ---------------------------------------------------------------- D: unreadable input

def test_documents_file_that_is_not_utf8(tmp_path, capsys):
    path = tmp_path / "docs.txt"
    path.write_bytes(b"caf\xe9\n\xff\xfe\n")
    code, _, err = cli(capsys, "invoke", "-q", "q", "--documents-file", path,
                       "--endpoint-url", "http://127.0.0.1:9")
    assert code == 2 and "is not UTF-8 text" in one_error_line(err) and str(path) in err


@pytest.mark.parametrize("content,needle", [
    (b"deploy = 3\n", "deploy must be a table"),
    (b'container = "x"\n', "container must be a table"),
    (b'[deploy]\nendpoint = "caf\xe9"\n', "not UTF-8"),
    (b"[deploy]\nendpoint = [1, 2]\n", "endpoint must be a single str"),
])
def test_reranker_toml_that_does_not_read(aws, tmp_path, capsys, content, needle):
    (tmp_path / "reranker.toml").write_bytes(content)
    code, _, err = cli(capsys, "status", "--endpoint", "rr")
    line = one_error_line(err)
    assert code == 2 and needle in line and "reranker.toml" in line


# ---------------------------------------------------------------- E, F: values and numbers

@pytest.mark.parametrize("extra,needle", [
    (["--poll-seconds", "-1"], "--poll-seconds must be 0 seconds or more"),
    (["--poll-seconds", "nan"], "--poll-seconds must be a number"),
    (["--mode", "async", "--async-output", "s3://"], "names no bucket"),
    (["--mode", "async", "--async-output", "s3://bad bucket/x"], "not an S3 bucket name"),
    (["--mode", "async", "--async-output", "s3://models/out/",
      "--sns-success", "not-an-arn"], "must be an SNS topic ARN"),
    (["--mode", "async", "--async-output", "s3://models/out/",
      "--async-failure", "gs://x"], "--async-failure must be an s3:// URI"),
    (["--model-data", "s3://"], "names no bucket"),
    (["--model-data", "s3://models/"], "names no key"),
    (["--model-data", "s3://bad bucket/x y.tar.gz"], "not an S3 bucket name"),
    (["--model-data", "s3://models/x y.tar.gz"], "holds ' '"),
    (["--image", "notanimage"], "is not an ECR image URI"),
    (["--mode", "async", "--async-output", "s3://models/out/", "--max-capacity", "2",
      "--min-capacity", "-1"], "--min-capacity must be 0 or more"),
    (["--max-capacity", "2", "--scale-in-cooldown", "-5"], "--scale-in-cooldown must be 0"),
    (["--mode", "async", "--async-output", "s3://models/out/",
      "--async-max-invocations", "-3"], "--async-max-invocations must be 1..1000"),
    (["--region", "*"], "is not an AWS region"),
])
def test_values_are_refused_before_any_upload(aws, archive_path, capsys, extra, needle):
    code, _, err = cli(capsys, *deploy_args(archive_path, *extra))
    assert code == 2 and needle in one_error_line(err)
    nothing_made(aws)


def test_deploy_env_poll_seconds_is_checked_up_front(aws, archive_path, capsys, monkeypatch):
    monkeypatch.setenv("DEPLOY_POLL_SECONDS", "-1")
    code, _, err = cli(capsys, *deploy_args(archive_path))
    assert code == 2 and "--poll-seconds must be 0 seconds or more" in one_error_line(err)
    nothing_made(aws)


def test_model_data_that_is_not_in_s3(aws, archive_path, capsys):
    code, _, err = cli(capsys, *deploy_args(archive_path, "--model-data",
                                            "s3://models/nothing-here.tar.gz"))
    line = one_error_line(err)
    assert code == 2 and "s3://models/nothing-here.tar.gz does not exist" in line
    code, _, err = cli(capsys, *deploy_args(archive_path, "--model-data",
                                            "s3://models/no-files/"))
    assert code == 2 and "no object is under the prefix" in one_error_line(err)
    nothing_made(aws)


# ---------------------------------------------------------------- G: the role policy

@pytest.mark.parametrize("extra,needle", [
    (["--mode", "async", "--async-output", "s3://*"], "not an S3 bucket name"),
    (["--mode", "async", "--async-output", "s3://models/*"], "holds '*'"),
    (["--bucket", "*"], "not an S3 bucket name"),
    (["--prefix", "models/*"], "holds '*'"),
    (["--prefix", "a?b"], "holds '?'"),
    (["--prefix", "${aws:username}"], "holds '$'"),
    (["--prefix", "/abs"], "must not start with /"),
    (["--model-data", "s3://*/"], "not an S3 bucket name"),
    (["--mode", "async", "--async-output", "s3://models/out/", "--sns-success", 'x"y'],
     "must be an SNS topic ARN"),
    (["--mode", "async", "--async-output", "s3://models/out/",
      "--sns-error", "arn:aws:sns:us-east-1:123456789012:*"], "must be an SNS topic ARN"),
    (["--capture", "s3://models/cap*/"], "holds '*'"),
    (["--rollout", "canary", "--instance-count", "2", "--rollback-alarms", "team-*"],
     "not a CloudWatch alarm name"),
    (["--image", "123456789012.dkr.ecr.us-east-1.amazonaws.com/*"], "not an ECR image URI"),
])
def test_role_policy_takes_no_wildcard(aws, capsys, extra, needle):
    code, out, err = cli(capsys, "deploy", "--print-role-policy", "--role", ROLE, "--bucket",
                         BUCKET, "--endpoint", "rr", *extra)
    assert code == 2 and needle in one_error_line(err) and out == ""


def test_transform_policy_takes_no_wildcard(aws, capsys):
    code, _, err = cli(capsys, "transform", "--print-role-policy", "--role", ROLE,
                       "--bucket", BUCKET, "--transform-input", "s3://*/in/",
                       "--transform-output", "s3://models/out/")
    assert code == 2 and "not an S3 bucket name" in one_error_line(err)


# ---------------------------------------------------------------- H: the archive

def truncated(archive_path: Path, tmp_path: Path) -> Path:
    path = tmp_path / "trunc.tar.gz"
    data = archive_path.read_bytes()
    path.write_bytes(data[:len(data) * 2 // 3])
    return path


def test_upload_refuses_a_truncated_archive(aws, archive_path, tmp_path, capsys):
    code, _, err = cli(capsys, "upload", "--archive", truncated(archive_path, tmp_path),
                       "--bucket", BUCKET)
    assert code == 2 and "not a complete, readable .tar.gz" in one_error_line(err)
    nothing_made(aws)


def test_deploy_refuses_a_truncated_archive_before_uploading(aws, archive_path, tmp_path,
                                                             capsys):
    code, _, err = cli(capsys, *deploy_args(truncated(archive_path, tmp_path)))
    assert code == 2 and "not a complete, readable .tar.gz" in one_error_line(err)
    nothing_made(aws)


def test_upload_refuses_an_archive_package_did_not_write(aws, tmp_path, capsys):
    from deploy.package import archive

    manifest = tmp_path / "reranker.json"
    manifest.write_text('{"model_id": "x"}')
    path = tmp_path / "other.tar.gz"
    archive.write(path, {"reranker.json": manifest})
    code, _, err = cli(capsys, "upload", "--archive", path, "--bucket", BUCKET)
    assert code == 2 and "has no code/inference.py" in one_error_line(err)
    corrupt = tmp_path / "crc.tar.gz"
    data = gzip.compress(b"\0" * 2048)
    corrupt.write_bytes(data[:-8] + b"\1\2\3\4" + data[-4:])  # a wrong CRC
    code, _, err = cli(capsys, "upload", "--archive", corrupt, "--bucket", BUCKET)
    assert code == 2 and "not a complete, readable .tar.gz" in one_error_line(err)
    nothing_made(aws)


# ---------------------------------------------------------------- I, J: the parser, hints

def test_no_prefix_abbreviation(capsys):
    with pytest.raises(SystemExit) as exit_:
        cli(capsys, "transform", "--transform-input", "s3://models/in/", "--transform-output",
            "s3://models/out/", "--mode", "serverless")
    assert exit_.value.code == 2
    assert "unrecognized arguments: --mode serverless" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli(capsys, "invoke", "-q", "q", "--documents-f", "x")
    with pytest.raises(SystemExit):
        cli(capsys, "--make", "status")


def test_cloudformation_without_role_names_a_command_that_exists(aws, archive_path, capsys):
    code, _, err = cli(capsys, "cloudformation", "--archive", archive_path, "--bucket", BUCKET)
    line = one_error_line(err)
    assert code == 2 and "python -m deploy deploy --print-role-policy" in line
    assert "cloudformation --print-role-policy" not in line


# ---------------------------------------------------------------- K: the chart's name

def test_evaluate_chart_without_suffix_prints_the_file_it_wrote(bert_dir, tmp_path, capsys):
    data = tmp_path / "data"
    (data / "qrels").mkdir(parents=True)
    docs = {"d1": "Paris is the capital of France.", "d2": "Pandas eat bamboo."}
    (data / "corpus.jsonl").write_text("".join(json.dumps({"_id": k, "text": v}) + "\n"
                                               for k, v in docs.items()))
    (data / "queries.jsonl").write_text(json.dumps({"_id": "q", "text": "capital of France"})
                                        + "\n")
    (data / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq\td1\t1\n")
    code, out, err = cli(capsys, "evaluate", "--model", bert_dir, "--data", data,
                         "--chart", tmp_path / "charts" / "foo")
    assert code == 0, err
    assert f"chart: {tmp_path / 'charts' / 'foo.png'}" in out
    assert (tmp_path / "charts" / "foo.png").read_bytes().startswith(b"\x89PNG")


# ---------------------------------------------------------------- L: only the settings used

@pytest.mark.parametrize("variable,value", [
    ("DEPLOY_MODE", "async"), ("DEPLOY_INSTANCE_TYPE", "bogus"), ("DEPLOY_TAGS", "bad"),
    ("DEPLOY_POLL_SECONDS", "abc"), ("DEPLOY_ASYNC_OUTPUT", "s3://*"),
])
def test_commands_ignore_settings_they_do_not_take(aws, capsys, monkeypatch, variable,
                                                   value):
    monkeypatch.setenv(variable, value)
    code, _, err = cli(capsys, "status", "--endpoint", "never-made")
    assert code == 2 and "endpoint never-made does not exist" in one_error_line(err)
    _, _, err = cli(capsys, "invoke", "--endpoint", "never-made", "-q", "q", "-d", "a")
    assert variable not in err and "async" not in err and "tags" not in err.lower()
    code, _, err = cli(capsys, "delete", "--endpoint", "never-made")
    assert "async" not in err and "instance" not in err and "tags" not in err.lower()


def test_toml_settings_of_other_commands_are_left_alone(aws, capsys, tmp_path):
    (tmp_path / "reranker.toml").write_text('[deploy]\nmode = "async"\ninstance_type = "x"\n'
                                            'tags = "bad"\n')
    code, _, err = cli(capsys, "status", "--endpoint", "never-made")
    assert code == 2 and "does not exist" in one_error_line(err)
    (tmp_path / "reranker.toml").write_text('[deploy]\nno_such_setting = 1\n')
    code, _, err = cli(capsys, "status", "--endpoint", "never-made")
    assert code == 2 and "unknown setting 'no_such_setting'" in one_error_line(err)


# ---------------------------------------------------------------- M: settings a mode ignores

@pytest.mark.parametrize("extra,needle", [
    (["--component", "x"], "--component does not apply to realtime endpoints"),
    (["--max-copies", "3"], "--max-copies does not apply to realtime"),
    (["--cpu-cores", "2"], "--cpu-cores does not apply to realtime"),
    (["--mode", "component", "--component", "x", "--max-capacity", "3"],
     "--max-capacity does not apply to inference components"),
    (["--mode", "serverless", "--instance-count", "3"],
     "--instance-count does not apply to serverless"),
    (["--async-output", "s3://models/out/"], "--async-output does not apply to realtime"),
    (["--sns-error", "arn:aws:sns:us-east-1:123456789012:e"],
     "--sns-error does not apply to realtime"),
    (["--mode", "async", "--async-output", "s3://models/out/", "--memory-mb", "2048"],
     "--memory-mb does not apply to async"),
    (["--tags", "a=b,a=c"], "the key 'a' is given twice"),
])
def test_settings_the_mode_would_ignore_are_refused(aws, archive_path, capsys, extra, needle):
    code, _, err = cli(capsys, *deploy_args(archive_path, *extra))
    assert code == 2 and needle in one_error_line(err)
    nothing_made(aws)


def test_other_modes_settings_in_the_toml_file_do_not_trip(aws, tmp_path, capsys,
                                                           monkeypatch):
    (tmp_path / "reranker.toml").write_text(
        '[deploy]\nmax_copies = 3\ncpu_cores = 2\nmemory_mb = 2048\n'
        'async_output = "s3://models/out/"\n')
    code, out, err = cli(capsys, "deploy", "--print-role-policy", "--role", ROLE, "--bucket",
                         BUCKET)
    assert code == 0, err
    assert json.loads(out)["Statement"]
    monkeypatch.setenv("MAX_COPIES", "3")  # a make variable, read under --make-variables
    code, _, err = cli(capsys, "--make-variables", "deploy", "--print-role-policy", "--role",
                       ROLE, "--bucket", BUCKET)
    assert code == 2 and "MAX_COPIES does not apply to realtime" in one_error_line(err)


# --- names from every partition -----------------------------------------------------------

DIGEST = "sha256:" + "a" * 64


@pytest.mark.parametrize("value", [
    "arn:aws:sns:us-east-1:123456789012:alerts.fifo",
    "arn:aws-cn:sns:cn-north-1:123456789012:alerts",
    "arn:aws-iso-b:sns:us-isob-east-1:123456789012:alerts",
    "arn:aws-eusc:sns:eusc-de-east-1:123456789012:alerts",
])
def test_sns_topics_of_every_partition_are_taken(value):
    from deploy.sagemaker import locations

    assert locations.sns_topic(value, "ALARM_TOPIC") == value


@pytest.mark.parametrize("value", [
    "123456789012.dkr.ecr.us-east-1.amazonaws.com/reranker:1",
    "123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn/reranker:1",
    "123456789012.dkr.ecr.us-iso-east-1.c2s.ic.gov/reranker:1",
    "123456789012.dkr.ecr.us-isob-east-1.sc2s.sgov.gov/reranker:1",
    "123456789012.dkr.ecr.eusc-de-east-1.amazonaws.eu/reranker@" + DIGEST,
    "123456789012.dkr.ecr.us-east-1.amazonaws.com/team/reranker:1@" + DIGEST,
])
def test_ecr_images_of_every_partition_are_taken(value):
    from deploy.sagemaker import locations

    assert locations.image(value, "IMAGE_URI") == value


@pytest.mark.parametrize("value", [
    "123456789012.dkr.ecr.us-east-1.example.com/reranker:1",
    "docker.io/library/reranker:1",
    "123456789012.dkr.ecr.us-east-1.amazonaws.com/reranker:*",
])
def test_images_outside_ecr_are_refused(value):
    from deploy.errors import UserError
    from deploy.sagemaker import locations

    with pytest.raises(UserError, match="not an ECR image URI"):
        locations.image(value, "IMAGE_URI")


def test_a_bucket_alias_is_refused_with_the_reason():
    from deploy.errors import UserError
    from deploy.sagemaker import locations

    with pytest.raises(UserError, match="access point or other bucket alias"):
        locations.bucket("my-point-abcdefgh1234567890-s3alias", "BUCKET")


@pytest.mark.parametrize("region,partition", [
    ("us-east-1", "aws"), ("cn-north-1", "aws-cn"), ("us-gov-west-1", "aws-us-gov"),
    ("us-iso-east-1", "aws-iso"), ("us-isob-east-1", "aws-iso-b"),
    ("eu-isoe-west-1", "aws-iso-e"), ("us-isof-south-1", "aws-iso-f"),
    ("eusc-de-east-1", "aws-eusc"),
])
def test_policies_name_the_regions_partition(region, partition):
    from deploy.sagemaker.iam import partition_of

    assert partition_of(region) == partition
