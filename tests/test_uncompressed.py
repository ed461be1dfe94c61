"""UNCOMPRESSED=1: the archive's files under an S3 prefix, deployed as SageMaker's
uncompressed model data (ModelDataSource), against moto's server with the real boto3
clients: the layout SageMaker copies to /opt/ml/model, resuming, the model, the role
policy, status, purge, the template, and the refusals."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

import test_deploy_moto as moto_tests
from deploy.package import archive
from deploy.sagemaker import resources
from test_cloudformation import lint, template_args
from test_deploy_moto import BUCKET, ROLE, cli, deploy_args, one_error_line

moto_url = moto_tests.moto_url
aws = moto_tests.aws
archive_path = moto_tests.archive_path

pytestmark = pytest.mark.slow  # packages a model, runs moto's server


def upload(capsys, archive_path, *extra) -> tuple[int, str, str]:
    return cli(capsys, "upload", "--archive", archive_path, "--bucket", BUCKET,
               "--uncompressed", "1", *extra)


def objects(s3, prefix: str) -> dict[str, bytes]:
    listed = s3.list_objects_v2(Bucket=BUCKET, Prefix=prefix).get("Contents", [])
    return {o["Key"][len(prefix):]: s3.get_object(Bucket=BUCKET, Key=o["Key"])["Body"].read()
            for o in listed}


def as_sagemaker_copies(s3, uri: str, dest: Path) -> Path:
    """/opt/ml/model as SageMaker fills it from an S3Prefix: each key minus the prefix is a
    path, its parts folders and a file."""
    prefix = uri[len(f"s3://{BUCKET}/"):]
    for name, body in objects(s3, prefix).items():
        (dest / name).parent.mkdir(parents=True, exist_ok=True)
        (dest / name).write_bytes(body)
    return dest


def tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_the_prefix_holds_what_the_archive_holds(aws, archive_path, bert_dir, capsys,
                                                  tmp_path):
    code, out, err = upload(capsys, archive_path)
    assert code == 0, err
    uri = out.strip().splitlines()[-1]
    digest = hashlib.sha256(archive_path.read_bytes()).hexdigest()
    folder = f"rerankers/{bert_dir.name}/{digest[:16]}"
    assert uri == f"s3://{BUCKET}/{folder}/files/"
    s3 = aws("s3")
    copied = as_sagemaker_copies(s3, uri, tmp_path / "opt-ml-model")
    archive.safe_extract(archive_path, tmp_path / "extracted")
    assert tree(copied) == tree(tmp_path / "extracted")
    assert "code/inference.py" in tree(copied) and "reranker.json" in tree(copied)
    # The list of files sits beside the prefix, not in it, and carries the archive's hash.
    listing = s3.get_object(Bucket=BUCKET, Key=f"{folder}/files.json")
    assert listing["Metadata"]["sha256"] == digest
    files = json.loads(listing["Body"].read())["files"]
    assert files == {name: len(body) for name, body in tree(copied).items()}

    code, out, _ = upload(capsys, archive_path)
    assert code == 0 and "already uploaded (same sha256)" in out


def test_an_interrupted_upload_resumes(aws, archive_path, bert_dir, capsys):
    code, out, _ = upload(capsys, archive_path)
    uri = out.strip().splitlines()[-1]
    prefix = uri[len(f"s3://{BUCKET}/"):]
    s3 = aws("s3")
    before = objects(s3, prefix)
    # As if the run had stopped early: no list yet, one file missing, one cut short.
    s3.delete_object(Bucket=BUCKET, Key=prefix[:-len("files/")] + "files.json")
    s3.delete_object(Bucket=BUCKET, Key=prefix + "config.json")
    s3.put_object(Bucket=BUCKET, Key=prefix + "reranker.json", Body=b"{",
                  Metadata={"archive-sha256": "0" * 64})
    code, out, err = upload(capsys, archive_path)
    assert code == 0, err
    assert f"uploaded 2 files, {len(before['config.json']) + len(before['reranker.json'])}" \
           f" bytes, {len(before) - 2} already there" in out
    assert objects(s3, prefix) == before


def test_objects_that_are_not_in_the_archive_are_refused(aws, archive_path, capsys):
    code, out, _ = upload(capsys, archive_path)
    uri = out.strip().splitlines()[-1]
    prefix = uri[len(f"s3://{BUCKET}/"):]
    s3 = aws("s3")
    s3.delete_object(Bucket=BUCKET, Key=prefix[:-len("files/")] + "files.json")
    s3.put_object(Bucket=BUCKET, Key=prefix + "stray.bin", Body=b"x")
    code, _, err = upload(capsys, archive_path)
    assert code == 2 and "also holds 1 objects that are not in the archive" in (
        one_error_line(err))
    assert "files.json" not in str(s3.list_objects_v2(Bucket=BUCKET, Prefix="rerankers/"))


def test_deploy_runs_the_model_from_the_prefix_and_purge_removes_it(aws, archive_path,
                                                                    capsys):
    code, _, err = cli(capsys, *deploy_args(archive_path, "--uncompressed", "1"))
    assert code == 0, err
    sm = aws("sagemaker")
    model = sm.list_models()["Models"][0]["ModelName"]
    container = sm.describe_model(ModelName=model)["PrimaryContainer"]
    source = container["ModelDataSource"]["S3DataSource"]
    assert "ModelDataUrl" not in container
    assert source["S3DataType"] == "S3Prefix" and source["CompressionType"] == "None"
    assert source["S3Uri"].startswith(f"s3://{BUCKET}/rerankers/")
    assert source["S3Uri"].endswith("/files/")
    _, printed, _ = cli(capsys, "status", "--endpoint", "rr")
    assert source["S3Uri"] in printed
    assert "model id     " in printed and "max_length   " in printed  # reranker.json beside

    code, printed, err = cli(capsys, "delete", "--endpoint", "rr", "--purge")
    assert code == 0, err
    assert f"deleted       {source['S3Uri']}" in printed
    assert aws("s3").list_objects_v2(Bucket=BUCKET).get("KeyCount") == 0


def test_a_model_data_prefix_is_deployed_as_is_and_kept_by_purge(aws, archive_path, capsys):
    s3 = aws("s3")
    s3.put_object(Bucket=BUCKET, Key="mine/model/config.json", Body=b"{}")
    uri = f"s3://{BUCKET}/mine/model/"
    code, _, err = cli(capsys, *deploy_args(archive_path, "--model-data", uri))
    assert code == 0, err
    sm = aws("sagemaker")
    model = sm.list_models()["Models"][0]["ModelName"]
    container = sm.describe_model(ModelName=model)["PrimaryContainer"]
    assert container["ModelDataSource"]["S3DataSource"]["S3Uri"] == uri
    code, printed, err = cli(capsys, "delete", "--endpoint", "rr", "--purge")
    assert code == 0, err
    assert "kept (a prefix this tool did not upload)" in printed
    assert objects(s3, "mine/")  # still there


def test_a_component_model_takes_the_prefix_too(aws):
    from test_components import IMAGE, component_config

    uri = f"s3://{BUCKET}/rerankers/m/0123456789abcdef/files/"
    sm = aws("sagemaker")
    resources.create_model(sm, component_config(), "minilm-en-1", IMAGE, uri, True,
                           "us-east-1", metrics=True)
    container = sm.describe_model(ModelName="minilm-en-1")["PrimaryContainer"]
    assert container["ModelDataSource"] == {"S3DataSource": {
        "S3Uri": uri, "S3DataType": "S3Prefix", "CompressionType": "None"}}


def test_the_role_may_list_and_read_the_prefix_only(aws, capsys):
    code, printed, err = cli(capsys, "deploy", "--print-role-policy", "--role", ROLE,
                             "--bucket", BUCKET, "--uncompressed", "1")
    assert code == 0, err
    statements = {s["Sid"]: s for s in json.loads(printed)["Statement"]}
    assert statements["ReadModelArchives"]["Resource"] == f"arn:aws:s3:::{BUCKET}/rerankers/*"
    assert statements["ListModelFiles"] == {
        "Sid": "ListModelFiles", "Effect": "Allow", "Action": "s3:ListBucket",
        "Resource": f"arn:aws:s3:::{BUCKET}",
        "Condition": {"StringLike": {"s3:prefix": "rerankers/*"}}}
    # MODEL_DATA elsewhere: the role reads that and nothing under PREFIX.
    code, printed, err = cli(capsys, "deploy", "--print-role-policy", "--role", ROLE,
                             "--model-data", "s3://other/team/model.tar.gz")
    assert code == 0, err
    statements = {s["Sid"]: s for s in json.loads(printed)["Statement"]}
    assert statements["ReadModelArchives"]["Resource"] == "arn:aws:s3:::other/team/model.tar.gz"
    assert "ListModelFiles" not in statements


def test_the_template_names_the_prefix(aws, archive_path, capsys, tmp_path):
    out = tmp_path / "t.json"
    code, _, err = cli(capsys, *template_args(archive_path, out, "--uncompressed", "1"))
    assert code == 0, err
    assert lint(out) == []
    container = json.loads(out.read_text())["Resources"]["Model"]["Properties"][
        "PrimaryContainer"]
    assert container["ModelDataSource"]["S3DataSource"]["S3Uri"].endswith("/files/")
    assert "ModelDataUrl" not in container


@pytest.mark.parametrize("extra, message", [
    (["--uncompressed", "1", "--mode", "serverless"], "not for serverless endpoints"),
    (["--model-data", f"s3://{BUCKET}/m/", "--mode", "serverless"],
     "not for serverless endpoints"),
    (["--uncompressed", "1", "--model-data", f"s3://{BUCKET}/m.tar.gz"],
     "names one object"),
])
def test_refusals_before_any_call(aws, archive_path, capsys, extra, message):
    code, _, err = cli(capsys, *deploy_args(archive_path, *extra))
    assert code == 2 and message in one_error_line(err)
    assert aws("sagemaker").list_models()["Models"] == []
    assert aws("s3").list_objects_v2(Bucket=BUCKET).get("KeyCount") == 0


def test_batch_transform_refuses_uncompressed_data(aws, archive_path, capsys):
    code, _, err = cli(capsys, "transform", "--archive", archive_path, "--bucket", BUCKET,
                       "--role", ROLE, "--endpoint", "rr", "--model-data", f"s3://{BUCKET}/m/",
                       "--transform-input", f"s3://{BUCKET}/in/",
                       "--transform-output", f"s3://{BUCKET}/out/")
    assert code == 2 and "not for batch transform" in one_error_line(err)


def test_archive_entries_sagemaker_cannot_write_are_refused(aws, tmp_path, capsys):
    import io
    import tarfile

    path = tmp_path / "odd.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        for name, kind in (("reranker.json", tarfile.REGTYPE),
                           ("code/inference.py", tarfile.REGTYPE), ("link", tarfile.SYMTYPE)):
            info = tarfile.TarInfo(name)
            info.type = kind
            body = b'{"model_id": "org/odd"}' if kind == tarfile.REGTYPE else b""
            info.size = len(body)
            info.linkname = "reranker.json" if kind == tarfile.SYMTYPE else ""
            tar.addfile(info, io.BytesIO(body))
    code, _, err = upload(capsys, path)
    assert code == 2 and "'link' is a link or a device" in one_error_line(err)


def test_model_data_fields():
    assert resources.model_data_fields("s3://b/k/model.tar.gz") == {
        "ModelDataUrl": "s3://b/k/model.tar.gz"}
    fields = resources.model_data_fields("s3://b/k/files/")
    assert resources.model_data_of(fields) == "s3://b/k/files/"
    assert resources.model_data_of({"ModelDataUrl": "s3://b/m.tar.gz"}) == "s3://b/m.tar.gz"


def test_large_files_stream_up_in_parts(aws, tmp_path, capsys, monkeypatch):
    from deploy.sagemaker import upload as archive_upload

    monkeypatch.setattr(archive_upload, "MULTIPART_BYTES", 5 * 1024 * 1024)  # S3's smallest
    manifest, blob = tmp_path / "reranker.json", tmp_path / "model.safetensors"
    manifest.write_text('{"model_id": "org/big"}')
    blob.write_bytes(bytes(range(256)) * (12 * 4096))  # 12 MB
    path = tmp_path / "big.tar.gz"
    archive.write(path, {"reranker.json": manifest, "model.safetensors": blob,
                         "code/inference.py": manifest}, level=1)
    code, out, err = upload(capsys, path)
    assert code == 0, err
    prefix = out.strip().splitlines()[-1][len(f"s3://{BUCKET}/"):]
    s3 = aws("s3")
    head = s3.head_object(Bucket=BUCKET, Key=prefix + "model.safetensors")
    assert head["ETag"].strip('"').endswith("-3")  # read once, forward, in 3 parts
    assert objects(s3, prefix) == {"reranker.json": manifest.read_bytes(),
                                   "code/inference.py": manifest.read_bytes(),
                                   "model.safetensors": blob.read_bytes()}
