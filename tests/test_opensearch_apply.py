"""``--apply`` against a loopback HTTP server.

THE SERVER BELOW IS NOT OPENSEARCH.  It is a small http.server on 127.0.0.1 that records
every request and answers the few ml-commons REST calls ``--apply`` makes the way the
ml-commons API documents them (connector and model search/create/register/deploy, search
pipelines).  It checks our requests (paths, bodies, auth headers, idempotency, printed ids
and error lines), not OpenSearch's behaviour.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import pytest

ROOT = Path(__file__).resolve().parent.parent
ROLE = "arn:aws:iam::123456789012:role/os-sagemaker"
AWS_ENV = {"AWS_ACCESS_KEY_ID": "AKIAIOSFODNN7EXAMPLE",
           "AWS_SECRET_ACCESS_KEY": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
           "AWS_CONFIG_FILE": "/nonexistent",
           "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent", "AWS_EC2_METADATA_DISABLED": "true"}


class FakeMlCommons:
    """State and answers of the imitation; ``fail`` maps (method, path) to (status, body)."""

    def __init__(self):
        self.requests: list[dict] = []
        self.connectors: dict[str, dict] = {}
        self.models: dict[str, dict] = {}
        self.pipelines: dict[str, dict] = {}
        self.fail: dict[tuple[str, str], tuple[int, dict]] = {}

    def answer(self, method: str, path: str, query: str, body) -> tuple[int, dict]:
        if (method, path) in self.fail:
            return self.fail[(method, path)]
        if path.endswith("/_search") and path.startswith("/_plugins/_ml/"):
            store = self.connectors if "/connectors/" in path else self.models
            if not store:  # a fresh cluster: the system index does not exist yet
                return 404, {"error": {"type": "index_not_found_exception",
                                       "reason": "no such index [.plugins-ml-model]"}}
            name = body["query"]["term"]["name.keyword"]
            # SearchConnectorTransportAction excludes the credential from every hit.
            hits = [{"_id": k, "_source": {f: x for f, x in v.items() if f != "credential"}}
                    for k, v in store.items() if v["name"] == name]
            return 200, {"hits": {"total": {"value": len(hits)}, "hits": hits}}
        if (method, path) == ("POST", "/_plugins/_ml/connectors/_create"):
            assert {"name", "protocol", "credential", "actions", "parameters"} <= set(body)
            connector_id = f"conn-{len(self.connectors) + 1}"
            self.connectors[connector_id] = _stored(body)
            return 200, {"connector_id": connector_id}
        match = re.fullmatch(r"/_plugins/_ml/connectors/([^/]+)", path)
        if match and method == "PUT" and match.group(1) in self.connectors:
            users = [k for k, m in self.models.items() if m["connector_id"] == match.group(1)
                     and m["model_state"] == "DEPLOYED"]
            if users:  # UpdateConnectorTransportAction.updateUndeployedConnector
                return 400, {"error": {"reason": f"{len(users)} models are still using this"
                                                 " connector, please undeploy the models first"},
                             "status": 400}
            self.connectors[match.group(1)].update(_stored(body))  # fields are never dropped
            return 200, {"_id": match.group(1), "result": "updated"}
        if (method, path) == ("POST", "/_plugins/_ml/models/_register"):
            if body.get("connector_id") not in self.connectors:
                return 400, {"error": {"reason": "Failed to find connector"}, "status": 400}
            model_id = f"model-{len(self.models) + 1}"
            state = "DEPLOYED" if query == "deploy=true" else "REGISTERED"
            self.models[model_id] = {**body, "model_state": state}
            return 200, {"task_id": f"task-{model_id}", "status": "CREATED",
                         "model_id": model_id}
        match = re.fullmatch(r"/_plugins/_ml/models/([^/]+)(/_deploy|/_undeploy)?", path)
        if match and match.group(1) in self.models:
            model = self.models[match.group(1)]
            if match.group(2) == "/_deploy":
                model["model_state"] = "DEPLOYED"
                return 200, {"task_id": "task-deploy", "status": "CREATED"}
            if match.group(2) == "/_undeploy":
                model["model_state"] = "UNDEPLOYED"
                return 200, {"node-1": {"stats": {match.group(1): "UNDEPLOYED"}}}
            return 200, {"name": model["name"], "model_state": model["model_state"]}
        match = re.fullmatch(r"/_search/pipeline/([^/]+)", path)
        if match and method == "PUT":
            self.pipelines[match.group(1)] = body
            return 200, {"acknowledged": True}
        return 404, {"error": {"reason": f"no handler for {method} {path}"}}


def _stored(body: dict) -> dict:
    """A connector as ml-commons keeps it: the action type as its enum's name."""
    actions = [{**a, "action_type": a["action_type"].upper()} for a in body.get("actions", [])]
    return {**body, **({"actions": actions} if actions else {})}


@pytest.fixture
def fake():
    state = FakeMlCommons()

    class Handler(BaseHTTPRequestHandler):
        def _serve(self):
            parts = urlsplit(self.path)
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            body = json.loads(raw) if raw else None
            state.requests.append({"method": self.command, "path": parts.path,
                                   "query": parts.query, "body": body,
                                   "auth": self.headers.get("Authorization", "")})
            status, answer = state.answer(self.command, parts.path, parts.query, body)
            data = json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PUT = _serve

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    yield state
    server.shutdown()
    server.server_close()


def apply(fake, tmp_path, *extra, env=None) -> subprocess.CompletedProcess:
    args = ["--endpoint", "My-Reranker", "--region", "us-east-1", "--out", str(tmp_path),
            "--apply", *extra]
    if "--flavour" not in extra and "--role-arn" not in extra:
        args += ["--role-arn", ROLE]
    return subprocess.run([sys.executable, "-m", "deploy", "opensearch", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=120,
                          env={**_clean_environ(), **AWS_ENV, "OPENSEARCH_URL": fake.url,
                               **(env or {})})


def _clean_environ() -> dict:
    drop = ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN", "OPENSEARCH_USER",
            "OPENSEARCH_PASSWORD", "OPENSEARCH_CA_CERTS")
    return {k: v for k, v in os.environ.items() if k not in drop}


def calls(fake) -> list[str]:
    return [f"{r['method']} {r['path']}" for r in fake.requests]


def test_apply_creates_then_reuses(fake, tmp_path):
    first = apply(fake, tmp_path)
    assert first.returncode == 0, first.stderr
    assert calls(fake) == [
        "POST /_plugins/_ml/connectors/_search",
        "POST /_plugins/_ml/connectors/_create",
        "POST /_plugins/_ml/models/_search",
        "POST /_plugins/_ml/models/_register",
        "GET /_plugins/_ml/models/model-1",
        "PUT /_search/pipeline/my-reranker-rerank-cohere",
    ]
    sent = {f"{r['method']} {r['path']}": r for r in fake.requests}
    written = json.loads((tmp_path / "1-cohere/01-create-connector.json").read_text())
    assert sent["POST /_plugins/_ml/connectors/_create"]["body"] == written
    register = sent["POST /_plugins/_ml/models/_register"]
    assert register["query"] == "deploy=true"
    assert register["body"]["connector_id"] == "conn-1"
    pipeline = fake.pipelines["my-reranker-rerank-cohere"]
    assert pipeline["response_processors"][0]["rerank"]["ml_opensearch"] == {
        "model_id": "model-1"}
    # SigV4 for Amazon OpenSearch Service, signed for the es service in the region.
    assert all(r["auth"].startswith("AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/")
               and "/us-east-1/es/aws4_request" in r["auth"] for r in fake.requests)
    assert "connector_id: conn-1 (created)" in first.stdout
    assert "model_id: model-1 (created, DEPLOYED)" in first.stdout
    assert "pipeline: my-reranker-rerank-cohere" in first.stdout

    fake.requests.clear()
    again = apply(fake, tmp_path)
    assert again.returncode == 0, again.stderr
    assert not any(c.endswith(("/_create", "/_register")) for c in calls(fake))
    assert len(fake.connectors) == 1 and len(fake.models) == 1
    assert "connector_id: conn-1 (existing)" in again.stdout
    assert "model_id: model-1 (existing, DEPLOYED)" in again.stdout


def test_an_undeployed_model_is_deployed(fake, tmp_path):
    assert apply(fake, tmp_path, "--pattern", "tei").returncode == 0
    fake.models["model-1"]["model_state"] = "UNDEPLOYED"
    fake.requests.clear()
    run = apply(fake, tmp_path, "--pattern", "tei")
    assert run.returncode == 0, run.stderr
    assert "POST /_plugins/_ml/models/model-1/_deploy" in calls(fake)
    assert "model_id: model-1 (existing, DEPLOYED)" in run.stdout


def test_a_connector_with_old_settings_is_updated_in_place(fake, tmp_path):
    """Say an earlier version wrote another request body, or the endpoint moved region:
    the re-run updates the connector (undeploying its model, as ml-commons requires) and
    deploys the model again; ids stay the same."""
    assert apply(fake, tmp_path).returncode == 0
    wanted = json.loads(json.dumps(fake.connectors["conn-1"]))
    fake.connectors["conn-1"]["actions"][0]["request_body"] = '{"query": "old"}'
    fake.connectors["conn-1"]["parameters"]["region"] = "eu-west-1"
    fake.requests.clear()
    run = apply(fake, tmp_path)
    assert run.returncode == 0, run.stderr
    assert calls(fake) == [
        "POST /_plugins/_ml/connectors/_search",
        "POST /_plugins/_ml/models/_search",
        "POST /_plugins/_ml/models/model-1/_undeploy",
        "PUT /_plugins/_ml/connectors/conn-1",
        "POST /_plugins/_ml/models/_search",
        "GET /_plugins/_ml/models/model-1",
        "POST /_plugins/_ml/models/model-1/_deploy",
        "GET /_plugins/_ml/models/model-1",
        "PUT /_search/pipeline/my-reranker-rerank-cohere",
    ]
    assert fake.connectors["conn-1"] == wanted
    assert "connector_id: conn-1 (updated: parameters, request_body)" in run.stdout
    assert "model_id: model-1 (existing, DEPLOYED)" in run.stdout
    assert len(fake.connectors) == 1 and len(fake.models) == 1


def test_another_role_updates_the_connectors_credential(fake, tmp_path):
    """The cluster never shows a credential; the role named in the description is what
    tells a re-run with another --role-arn that the connector must change."""
    assert apply(fake, tmp_path).returncode == 0
    other = "arn:aws:iam::123456789012:role/os-sagemaker-new"
    run = apply(fake, tmp_path, "--role-arn", other)
    assert run.returncode == 0, run.stderr
    assert "connector_id: conn-1 (updated: description)" in run.stdout
    assert fake.connectors["conn-1"]["credential"] == {"roleArn": other}
    assert fake.connectors["conn-1"]["description"].endswith(f"signs as {other}")


def test_a_refused_update_deploys_the_model_again(fake, tmp_path):
    assert apply(fake, tmp_path).returncode == 0
    fake.connectors["conn-1"]["actions"][0]["url"] = "https://old.example/invocations"
    fake.fail[("PUT", "/_plugins/_ml/connectors/conn-1")] = (
        403, {"error": {"reason": "no permission to update the connector"}, "status": 403})
    run = apply(fake, tmp_path)
    assert run.returncode == 2
    [line] = run.stderr.strip().splitlines()
    assert "updating connector conn-1: OpenSearch answered 403" in line
    assert "model model-1 deployed again as it was" in line
    assert fake.models["model-1"]["model_state"] == "DEPLOYED"


def test_a_self_managed_update_keeps_the_keys_it_has(fake, tmp_path):
    flags = ["--flavour", "self-managed", "--account", "123456789012"]
    env = {"OPENSEARCH_USER": "admin", "OPENSEARCH_PASSWORD": "pw"}
    assert apply(fake, tmp_path, *flags, "--send-aws-credentials", env=env).returncode == 0
    keys = dict(fake.connectors["conn-1"]["credential"])
    fake.connectors["conn-1"]["description"] = "made by hand"
    fake.requests.clear()
    run = apply(fake, tmp_path, *flags, env=env)
    assert run.returncode == 0, run.stderr
    [update] = [r for r in fake.requests if r["method"] == "PUT" and "/connectors/" in r["path"]]
    assert "credential" not in update["body"]
    assert fake.connectors["conn-1"]["credential"] == keys
    assert "(updated: description)" in run.stdout


def test_each_pattern_gets_its_own_connector_and_pipeline(fake, tmp_path):
    for pattern in ("cohere", "tei", "ml-inference"):
        assert apply(fake, tmp_path, "--pattern", pattern).returncode == 0
    assert len(fake.connectors) == 3 and len(fake.models) == 3
    by_field = fake.pipelines["my-reranker-rerank-ml-inference"]["response_processors"]
    assert by_field[0]["ml_inference"]["model_id"] == "model-3"
    tei = fake.connectors["conn-2"]["actions"][0]
    assert tei["request_body"] == "${parameters.body}"


def test_each_instruction_gets_its_own_connector_model_and_pipeline(fake, tmp_path):
    """Found by name, a connector of another instruction must never be reused."""
    from deploy.integrations.opensearch.patterns import PATTERNS, instruction_tag
    from deploy.integrations.opensearch.target import build

    for instruction in ("Judge case law", 'Judge "patents"', "Judge case law"):
        run = apply(fake, tmp_path, "--instruction", instruction)
        assert run.returncode == 0, run.stderr
        tag = instruction_tag(build("My-Reranker", "us-east-1", role_arn=ROLE,
                                    instruction=instruction))
        assert f"pipeline: my-reranker-rerank-cohere-{tag}" in run.stdout
    assert len(fake.connectors) == 2 and len(fake.models) == 2
    assert set(fake.pipelines) == {
        PATTERNS["cohere"].pipeline_name(build("My-Reranker", "us-east-1", role_arn=ROLE,
                                               instruction=i))
        for i in ("Judge case law", 'Judge "patents"')}
    bodies = [json.loads(c["actions"][0]["request_body"].replace(
        "${parameters.documents}", "[]").replace("${parameters.top_n}", "1"))
        for c in fake.connectors.values()]
    assert [b["instruction"] for b in bodies] == ["Judge case law", 'Judge "patents"']


def test_a_refusal_is_one_line_saying_what_was_done(fake, tmp_path):
    fake.fail[("PUT", "/_search/pipeline/my-reranker-rerank-cohere")] = (
        400, {"error": {"root_cause": [{"reason": "x"}], "type": "parse_exception",
                        "reason": "unknown processor\n[rerank]"}, "status": 400})
    run = apply(fake, tmp_path)
    assert run.returncode == 2
    [line] = run.stderr.strip().splitlines()
    assert line.startswith("error: OpenSearch answered 400 to PUT /_search/pipeline/")
    assert "unknown processor [rerank]" in line
    assert "already done: connector conn-1 (created), model model-1 (created)" in line


def test_unreachable_cluster_is_one_line(tmp_path):
    class Closed:
        url = "http://127.0.0.1:9"  # discard port: nothing listens

    run = apply(Closed, tmp_path)
    assert run.returncode == 2
    [line] = run.stderr.strip().splitlines()
    assert "cannot reach OpenSearch" in line and "nothing was created" in line


def test_a_model_an_earlier_run_left_failed_is_deployed_again(fake, tmp_path):
    """Say the first run failed on a cluster setting since fixed: the re-run deploys."""
    assert apply(fake, tmp_path, "--pattern", "tei").returncode == 0
    fake.models["model-1"]["model_state"] = "DEPLOY_FAILED"
    fake.requests.clear()
    run = apply(fake, tmp_path, "--pattern", "tei")
    assert run.returncode == 0, run.stderr
    assert calls(fake).count("POST /_plugins/_ml/models/model-1/_deploy") == 1
    assert "model_id: model-1 (existing, DEPLOYED)" in run.stdout


def test_temporary_keys_are_sent_with_a_note(fake, tmp_path):
    env = {"OPENSEARCH_USER": "admin", "OPENSEARCH_PASSWORD": "pw",
           "AWS_SESSION_TOKEN": "IQoJb3JpZ2luX2VjEXAMPLETOKEN"}
    run = apply(fake, tmp_path, "--flavour", "self-managed", "--account", "123456789012",
                "--send-aws-credentials", env=env)
    assert run.returncode == 0, run.stderr
    assert fake.connectors["conn-1"]["credential"]["session_token"] == env["AWS_SESSION_TOKEN"]
    assert "temporary" in run.stderr and env["AWS_SESSION_TOKEN"] not in run.stderr + run.stdout


def test_self_managed_sends_keys_only_when_asked(fake, tmp_path):
    flags = ["--flavour", "self-managed", "--account", "123456789012"]
    env = {"OPENSEARCH_USER": "admin", "OPENSEARCH_PASSWORD": "pw"}
    refused = apply(fake, tmp_path, *flags, env=env)
    assert refused.returncode == 2 and "--send-aws-credentials" in refused.stderr
    assert not fake.connectors
    run = apply(fake, tmp_path, *flags, "--send-aws-credentials", env=env)
    assert run.returncode == 0, run.stderr
    assert fake.connectors["conn-1"]["credential"] == {
        "access_key": AWS_ENV["AWS_ACCESS_KEY_ID"],
        "secret_key": AWS_ENV["AWS_SECRET_ACCESS_KEY"]}
    assert all(r["auth"] == "Basic YWRtaW46cHc=" for r in fake.requests)  # admin:pw
    everything = run.stdout + run.stderr + "".join(
        p.read_text() for p in tmp_path.rglob("*") if p.is_file())
    assert AWS_ENV["AWS_SECRET_ACCESS_KEY"] not in everything
    assert AWS_ENV["AWS_ACCESS_KEY_ID"] not in everything


def test_keys_never_go_to_a_plain_http_cluster(fake, tmp_path):
    """Loopback HTTP (a tunnel, the test server above) is allowed; a network address is not,
    and the refusal comes before any connection."""
    run = apply(fake, tmp_path, "--flavour", "self-managed", "--account", "123456789012",
                "--send-aws-credentials", env={"OPENSEARCH_URL": "http://192.0.2.10:9200"})
    assert run.returncode == 2
    [line] = run.stderr.strip().splitlines()
    assert "needs an https:// OPENSEARCH_URL" in line
    assert AWS_ENV["AWS_SECRET_ACCESS_KEY"] not in run.stdout + run.stderr
