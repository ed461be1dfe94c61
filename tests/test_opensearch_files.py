"""``python -m deploy opensearch``: the folder it writes, its IAM documents, its errors."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from deploy.integrations.opensearch import bundle
from deploy.integrations.opensearch.patterns import PATTERNS
from deploy.integrations.opensearch.target import build

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = Path(__file__).parent / "golden" / "opensearch" / "bundle"
ROLE = "arn:aws:iam::123456789012:role/os-sagemaker"
ARGS = ["--endpoint", "My-Reranker", "--region", "us-east-1", "--role-arn", ROLE,
        "--document-field", "passage_text"]


def cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "deploy", "opensearch", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=120,
                          env={**os.environ, **(env or {})})


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("os") / "bundle"
    # Keys in the environment must never reach a file.
    run = cli(*ARGS, "--out", str(out), env={"AWS_ACCESS_KEY_ID": "AKIAENVKEYNEVERWRITE",
                                             "AWS_SECRET_ACCESS_KEY": "envsecretneverwritten"})
    assert run.returncode == 0, run.stderr
    assert "README.md" in run.stdout
    return out


def test_every_file_is_plain_json_numbered_in_order(folder):
    for pattern in PATTERNS.values():
        names = sorted(p.name for p in (folder / pattern.folder).iterdir())
        assert names == ["01-create-connector.json", "02-register-model.json",
                         "03-test-model.json", "04-create-pipeline.json", "05-search.json"]
    for path in folder.rglob("*.json"):
        text = path.read_text(encoding="utf-8")
        json.loads(text)
        assert '"""' not in text


def test_readme_says_what_to_send_where(folder):
    readme = (folder / "README.md").read_text(encoding="utf-8")
    for path in folder.rglob("*.json"):
        assert str(path.relative_to(folder)) in readme
    for needle in ("POST /_plugins/_ml/connectors/_create",
                   "POST /_plugins/_ml/models/_register?deploy=true",
                   "PUT /_search/pipeline/my-reranker-rerank-cohere",
                   "POST /my-index/_search?search_pipeline=my-reranker-rerank-cohere",
                   "JSON object or array", "400", "RERANK_MAX_DOCUMENTS"):
        assert needle in readme


def test_readme_has_the_notes_for_tutorial_users(folder):
    readme = (folder / "README.md").read_text(encoding="utf-8")
    for needle in ("**query first**", "changes every score", "`facts`", "`passage_text`",
                   "joined with no separator", "${parameters.NAME}", "Invalid payload:",
                   "`[1,2]`", "${parameters.body}",
                   "This folder was written for document field(s) `passage_text`"):
        assert needle in readme, needle


def test_the_assumed_document_field_is_printed(tmp_path):
    run = cli("--endpoint", "x", "--region", "us-east-1", "--role-arn", ROLE,
              "--out", str(tmp_path))
    assert run.returncode == 0, run.stderr
    assert "document field: text (assumed" in run.stdout
    assert "document field:" not in cli(*ARGS, "--out", str(tmp_path / "b")).stdout


def test_make_opensearch_refuses_without_document_field(tmp_path):
    stamp = os.environ.get("VENV", ".venv") + "/.installed"
    run = subprocess.run(["make", "--no-print-directory", "-o", stamp, "opensearch",
                          "ENDPOINT=x", "REGION=us-east-1", f"ROLE_ARN={ROLE}",
                          f"OPENSEARCH_ARGS=--out {tmp_path}"], cwd=ROOT,
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 2
    assert run.stderr.startswith("error: set DOCUMENT_FIELD=") and "facts" in run.stderr
    assert not any(tmp_path.iterdir())


def test_no_credentials_in_any_file(folder):
    for path in folder.rglob("*"):
        if path.is_file():
            text = path.read_text(encoding="utf-8")
            assert "AKIAENVKEYNEVERWRITE" not in text and "envsecretneverwritten" not in text
            assert not re.search(r"\b(AKIA|ASIA)[A-Z0-9]{16}\b", text)
    connector = json.loads((folder / "1-cohere/01-create-connector.json").read_text())
    assert connector["credential"] == {"roleArn": ROLE}


def test_self_managed_has_placeholders_only(tmp_path):
    run = cli("--endpoint", "x", "--region", "eu-west-1", "--account", "123456789012",
              "--flavour", "self-managed", "--out", str(tmp_path),
              env={"AWS_ACCESS_KEY_ID": "AKIAENVKEYNEVERWRITE"})
    assert run.returncode == 0, run.stderr
    credential = json.loads((tmp_path / "2-tei-painless/01-create-connector.json").read_text())[
        "credential"]
    assert set(credential) == {"access_key", "secret_key"}
    assert all(v.startswith("<") and v.endswith(">") for v in credential.values())
    assert sorted(p.name for p in (tmp_path / "iam").iterdir()) == ["invoke-endpoint-policy.json"]
    assert "AKIAENVKEYNEVERWRITE" not in "".join(
        p.read_text() for p in tmp_path.rglob("*") if p.is_file())


def test_an_inference_component_is_named_in_every_call(tmp_path):
    """An endpoint of several components refuses a call that names none."""
    run = cli("--endpoint", "search", "--component", "bge-m3", "--region", "us-east-1",
              "--role-arn", ROLE, "--out", str(tmp_path))
    assert run.returncode == 0, run.stderr
    for pattern in ("1-cohere", "2-tei-painless", "3-ml-inference"):
        [connector] = tmp_path.glob(f"{pattern}*/01-create-connector.json")
        body = json.loads(connector.read_text())
        assert body["actions"][0]["headers"] == {
            "content-type": "application/json",
            "X-Amzn-SageMaker-Inference-Component": "bge-m3"}
        assert body["name"].startswith("search-bge-m3 reranker")
    assert "inference component `bge-m3`" in (tmp_path / "README.md").read_text()


def test_the_partition_is_the_regions():
    """A self-managed cluster in China calls the .com.cn runtime, under aws-cn ARNs."""
    from deploy.integrations.opensearch import target

    china = target.build("x", "cn-north-1", account="123456789012", flavour="self-managed")
    assert china.partition == "aws-cn"
    assert ".amazonaws.com.cn/" in china.url
    assert china.endpoint_arn.startswith("arn:aws-cn:sagemaker:cn-north-1:")


def test_iam_allows_invoke_on_exactly_this_endpoint(folder):
    policy = json.loads((folder / "iam/invoke-endpoint-policy.json").read_text())
    [statement] = policy["Statement"]
    assert statement["Effect"] == "Allow"
    assert statement["Action"] == "sagemaker:InvokeEndpoint"
    # SageMaker stores endpoint names lowercase in ARNs.
    assert statement["Resource"] == "arn:aws:sagemaker:us-east-1:123456789012:endpoint/my-reranker"
    trust = json.loads((folder / "iam/trust-policy.json").read_text())
    [statement] = trust["Statement"]
    assert statement["Action"] == "sts:AssumeRole"
    assert set(statement["Principal"]["Service"]) == {"opensearchservice.amazonaws.com",
                                                      "es.amazonaws.com"}
    passrole = json.loads((folder / "iam/pass-role-policy.json").read_text())
    assert passrole["Statement"][0] == {"Sid": "PassRerankerConnectorRole", "Effect": "Allow",
                                        "Action": "iam:PassRole", "Resource": ROLE}


def test_connectors_and_pipelines(folder):
    def load(pattern, name):
        return json.loads((folder / PATTERNS[pattern].folder / name).read_text())

    url = "https://runtime.sagemaker.us-east-1.amazonaws.com/endpoints/My-Reranker/invocations"
    cohere = load("cohere", "01-create-connector.json")["actions"][0]
    assert cohere["url"] == url
    assert cohere["pre_process_function"] == "connector.pre_process.cohere.rerank"
    assert cohere["post_process_function"] == "connector.post_process.cohere.rerank"
    tei = load("tei", "01-create-connector.json")["actions"][0]
    assert "escape(" not in tei["pre_process_function"]
    rerank = load("cohere", "04-create-pipeline.json")["response_processors"][0]["rerank"]
    assert rerank["context"]["document_fields"] == ["passage_text"]
    search = load("cohere", "05-search.json")
    assert search["ext"]["rerank"]["query_context"]["query_text_path"] == \
        "query.multi_match.query"
    assert search["query"]["multi_match"]["query"]
    # Pattern 3: two separate processors, query first, document second.
    first, second = load("ml-inference", "04-create-pipeline.json")["response_processors"]
    assert list(first) == ["ml_inference"] and list(second) == ["rerank"]
    assert first["ml_inference"]["input_map"] == [
        {"text": "$._request.query.multi_match.query", "text_pair": "passage_text"}]
    assert first["ml_inference"]["one_to_one"] is True
    assert second["rerank"]["by_field"]["target_field"] == \
        list(first["ml_inference"]["output_map"][0])[0]
    register = load("ml-inference", "02-register-model.json")
    assert register["function_name"] == "remote" and register["connector_id"].startswith("<")


def test_several_document_fields(tmp_path):
    run = cli(*ARGS, "--document-field", "title", "--out", str(tmp_path))
    assert run.returncode == 0, run.stderr
    pipeline = json.loads((tmp_path / "1-cohere/04-create-pipeline.json").read_text())
    assert pipeline["response_processors"][0]["rerank"]["context"]["document_fields"] == \
        ["passage_text", "title"]


def test_matches_golden_files():
    """Every emitted byte, Painless included; UPDATE_GOLDEN=1 rewrites after a change."""
    target = build("My-Reranker", "us-east-1", role_arn=ROLE, document_fields=["passage_text"])
    files = bundle.files(target)
    if os.environ.get("UPDATE_GOLDEN"):
        for rel, text in files.items():
            (GOLDEN / rel).parent.mkdir(parents=True, exist_ok=True)
            (GOLDEN / rel).write_text(text, encoding="utf-8")
    on_disk = {str(p.relative_to(GOLDEN)) for p in GOLDEN.rglob("*") if p.is_file()}
    assert on_disk == set(files)
    for rel, text in files.items():
        assert (GOLDEN / rel).read_text(encoding="utf-8") == text, rel


@pytest.mark.parametrize("args,message", [
    (["--endpoint", "bad_name!", "--region", "us-east-1", "--role-arn", ROLE], "--endpoint"),
    (["--endpoint", "x", "--region", "mars-1", "--role-arn", ROLE], "--region"),
    (["--endpoint", "x", "--region", "us-east-1"], "--role-arn is required"),
    (["--endpoint", "x", "--region", "us-east-1", "--role-arn", "arn:aws:iam::1:user/u"],
     "not an IAM role ARN"),
    (["--endpoint", "x", "--region", "us-east-1", "--flavour", "self-managed"], "--account"),
    (["--endpoint", "x", "--region", "us-gov-west-1", "--role-arn", ROLE], "partition aws"),
    (["--endpoint", "x", "--region", "us-east-1", "--role-arn", ROLE, "--document-field",
      "a b"], "--document-field"),
    ([*ARGS, "--apply"], "OPENSEARCH_URL"),
    ([*ARGS, "--instruction", "use ${parameters.region}"], "'${'"),
    ([*ARGS, "--instruction", "  "], "--instruction is empty"),
    ([*ARGS, "--instruction", "x" * 2001], "at most 2000"),
])
def test_bad_input_is_one_line_and_exit_2(tmp_path, args, message):
    run = cli(*args, "--out", str(tmp_path), env={"OPENSEARCH_URL": ""})
    assert run.returncode == 2
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0]


def test_package_layout_and_make_target():
    assert not (ROOT / "deploy" / "opensearch.py").exists()
    run = subprocess.run(["make", "-n", "opensearch", "ENDPOINT=e", "REGION=us-east-1",
                          f"ROLE_ARN={ROLE}"], cwd=ROOT, capture_output=True, text=True,
                         timeout=60)
    assert run.returncode == 0, run.stderr
    assert ("-m deploy opensearch --endpoint 'e' --region 'us-east-1' --role-arn"
            in " ".join(run.stdout.split()))


def test_make_passes_an_instruction_as_typed(tmp_path):
    """Quotes, a shell's $ and backquotes, and make's own $(...) all arrive as typed."""
    instruction = """it's "legal" text; $HOME $(shell id) `date` \\ {query}"""
    run = subprocess.run(
        ["make", "-s", "-o", ".venv/.installed", "opensearch", "ENDPOINT=e", "REGION=us-east-1",
         f"ROLE_ARN={ROLE}", "DOCUMENT_FIELD=text", f"INSTRUCTION={instruction}",
         f"OPENSEARCH_ARGS=--out {tmp_path}"],
        cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    body = json.loads((tmp_path / "1-cohere" / "01-create-connector.json").read_text())
    request_body = json.loads(body["actions"][0]["request_body"].replace(
        "${parameters.documents}", "[]").replace("${parameters.top_n}", "1"))
    assert request_body["instruction"] == instruction
