"""SERVE_API_KEY: the server off SageMaker answers only requests that carry the key (the real
cohere SDK sends it as its api_key), keeps /ping open, never logs the key, and refuses weak
or doubled settings; ``make deploy`` never puts the key in an endpoint's environment."""

from __future__ import annotations

import os
import subprocess
import sys

import cohere
import httpx
import pytest

from bench.local_server import Server
from deploy.errors import UserError
from deploy.sagemaker import container_env
from example_texts import CAPITAL_DOCS, CAPITAL_QUERY
from serving import config as server_config

KEY = "k3y-for-tests-0123456789abcdef"
BODY = {"query": CAPITAL_QUERY, "documents": CAPITAL_DOCS}


@pytest.fixture(scope="module")
def server(bert_dir, tmp_path_factory):
    key_file = tmp_path_factory.mktemp("secret") / "api-key"
    key_file.write_text(KEY + "\n")  # as a mounted secret often ends
    served = Server(bert_dir, env={"SERVE_API_KEY_FILE": str(key_file)})
    try:
        served.wait_ready(180)
        yield served
    finally:
        served.stop()
        served.log_path.unlink(missing_ok=True)


@pytest.mark.slow  # starts a server
def test_requests_without_the_key_are_401_before_scoring(server):
    for headers in ({}, {"Authorization": f"Bearer {KEY[:-1]}"}, {"Authorization": KEY},
                    {"Authorization": f"Basic {KEY}"}, {"X-Api-Key": KEY}):
        for path in ("/invocations", "/v2/rerank", "/score", "/metrics", "/nowhere"):
            response = httpx.post(server.url + path, json=BODY, headers=headers, timeout=30)
            assert response.status_code == 401, (path, headers, response.text)
            assert response.json()["error"]["field"] == "authorization"
            assert response.headers["www-authenticate"].startswith("Bearer")
            assert response.headers["x-request-id"]
    assert httpx.get(server.url + "/ping", timeout=30).status_code == 200


@pytest.mark.slow  # starts a server
def test_the_key_opens_every_route_and_the_real_sdk_sends_it(server):
    for scheme in ("Bearer", "bearer"):
        response = httpx.post(server.url + "/invocations", json=BODY, timeout=30,
                              headers={"Authorization": f"{scheme} {KEY}"})
        assert response.status_code == 200, response.text
    co = cohere.ClientV2(api_key=KEY, base_url=server.url)
    assert len(co.rerank(model="m", query=CAPITAL_QUERY, documents=CAPITAL_DOCS, top_n=2)
               .results) == 2
    with pytest.raises(cohere.core.ApiError) as refused:
        cohere.ClientV2(api_key="wrong-key-0123456789", base_url=server.url).rerank(
            model="m", query=CAPITAL_QUERY, documents=CAPITAL_DOCS)
    assert refused.value.status_code == 401
    metrics = httpx.get(server.url + "/metrics", headers={"Authorization": f"Bearer {KEY}"},
                        timeout=30)
    assert 'status="401"' in metrics.text  # refusals are counted like other answers


@pytest.mark.slow  # starts a server
def test_the_key_is_never_logged(server):
    httpx.post(server.url + "/invocations", json=BODY, timeout=30,
               headers={"Authorization": f"Bearer {KEY}"})
    log = server.log_path.read_text()
    assert '"api_key": "set"' in log and KEY not in log


@pytest.mark.parametrize("env,needle", [
    ({"SERVE_API_KEY": "short"}, "at least 16 characters"),
    ({"SERVE_API_KEY": "has a space in it, sixteen+"}, "no spaces"),
    ({"SERVE_API_KEY": KEY, "SERVE_API_KEY_FILE": "/etc/hostname"}, "not both"),
    ({"SERVE_API_KEY_FILE": "/nonexistent/key"}, "cannot read /nonexistent/key"),
])
def test_bad_key_settings_exit_2_with_one_line(bert_dir, env, needle):
    command = [sys.executable, "-m", "serving", "--model-dir", str(bert_dir)]
    done = subprocess.run(command, env={**os.environ, **env},
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and needle in done.stderr, done.stderr
    assert KEY not in done.stderr


def test_config_masks_the_key():
    config = server_config.load(server_config.parse_args([]), {"SERVE_API_KEY": KEY})
    assert config.api_key == KEY and KEY not in repr(config)
    assert config.public()["api_key"] == "set"
    assert server_config.load(server_config.parse_args([]), {}).public()["api_key"] is None


@pytest.mark.parametrize("name", ["SERVE_API_KEY", "SERVE_API_KEY_FILE"])
def test_deploy_never_puts_the_key_in_an_endpoint(name):
    with pytest.raises(UserError) as refused:
        container_env.check({name: KEY})
    assert "authenticates callers with IAM" in str(refused.value)
    assert KEY not in str(refused.value)
