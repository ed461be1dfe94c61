"""One env-config parser for the engine (RERANK_*), the server (SERVE_*) and the deploy tool
(DEPLOY_*), and the checks the deploy tool runs on what it sends to an endpoint."""

from __future__ import annotations

import dataclasses

import pytest

from deploy import config as deploy_config
from deploy.errors import UserError
from deploy.sagemaker import container_env
from reranker import envconfig
from reranker.settings import Settings, SettingsError
from serving import config as server_config


@dataclasses.dataclass
class Knobs:
    flag: bool = False
    count: int = 1
    share: float = 0.5
    name: str | None = None


NAMES = envconfig.variables(Knobs, "X_")


def test_one_parser_reads_each_type_and_names_the_variable():
    env = {"X_FLAG": " yes ", "X_COUNT": "7", "X_SHARE": "0.25", "X_NAME": "a b",
           "X_UNRELATED": "1", "OTHER": "2"}
    assert envconfig.read(Knobs, env, NAMES) == {"flag": True, "count": 7, "share": 0.25,
                                                 "name": "a b"}
    assert envconfig.read(Knobs, {"X_COUNT": "  ", "X_FLAG": ""}, NAMES) == {}
    assert envconfig.unknown(env, "X_", NAMES) == ["X_UNRELATED"]
    for env, message in (({"X_FLAG": "maybe"}, "X_FLAG='maybe' is not a valid bool"),
                         ({"X_COUNT": "1.5"}, "X_COUNT='1.5' is not a valid int"),
                         ({"X_SHARE": "half"}, "X_SHARE='half' is not a valid float")):
        with pytest.raises(KeyError, match=message):
            envconfig.read(Knobs, env, NAMES, KeyError)


def test_first_set_variable_of_a_field_wins():
    names = {"count": ("A_COUNT", "B_COUNT")}
    assert envconfig.read(Knobs, {"B_COUNT": "3"}, names) == {"count": 3}
    assert envconfig.read(Knobs, {"A_COUNT": "2", "B_COUNT": "3"}, names) == {"count": 2}
    with pytest.raises(ValueError, match="B_COUNT='x'"):
        envconfig.read(Knobs, {"B_COUNT": "x"}, names)


def test_the_three_layers_report_bad_values_alike():
    with pytest.raises(SettingsError, match="RERANK_MAX_LENGTH='abc' is not a valid int"):
        Settings.from_env({"RERANK_MAX_LENGTH": "abc"})
    with pytest.raises(server_config.ConfigError,
                       match="SERVE_KEEP_ALIVE='abc' is not a valid int"):
        server_config.load(None, {"SERVE_KEEP_ALIVE": "abc"})
    with pytest.raises(UserError, match="DEPLOY_INSTANCE_COUNT='abc' is not a valid int"):
        deploy_config.load(None, {"DEPLOY_INSTANCE_COUNT": "abc"})
    assert Settings.from_env({"RERANK_DTYPE": "BFloat16"}).dtype == "bfloat16"
    # uvicorn's own "trace" is no level of ours: one line at start-up, not a traceback.
    with pytest.raises(server_config.ConfigError, match="SERVE_LOG_LEVEL must be one of"):
        server_config.load(None, {"SERVE_LOG_LEVEL": "trace"})
    assert server_config.load(None, {"SERVE_LOG_LEVEL": "WARNING"}).log_level == "WARNING"
    assert Settings.from_env({"RERANK_ONNX_RUNTIME": "OpenVINO"}).onnx_runtime == "openvino"
    # At start-up, whatever the backend: a typo never waits for the ONNX path to be taken.
    with pytest.raises(SettingsError, match="RERANK_ONNX_RUNTIME must be one of"):
        Settings.from_env({"RERANK_ONNX_RUNTIME": "onnxruntim"})
    assert server_config.load(None, {"SAGEMAKER_BIND_TO_PORT": "9000",
                                     "SERVE_PORT": "1"}).port == 9000


def test_deploy_tool_reads_deploy_prefix_and_refuses_the_old_one(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no reranker.toml
    config = deploy_config.load(None, {"DEPLOY_ENDPOINT": "e1", "DEPLOY_POLL_SECONDS": "0.5",
                                       "RERANK_MAX_LENGTH": "64"})
    assert (config.endpoint, config.poll_seconds, config.env) == ("e1", 0.5, {})
    with pytest.raises(UserError) as refused:
        deploy_config.load(None, {"RERANKER_REGION": "eu-west-1"})
    message = str(refused.value)
    assert "RERANKER_REGION is no longer read" in message and "DEPLOY_REGION" in message
    assert "\n" not in message
    # Names that never configured the deploy tool are none of its business.
    assert deploy_config.load(None, {"RERANKER_HOME": "/x"}).endpoint == "reranker"


@pytest.mark.parametrize("env,words", [
    ({"SERVE_MAX_PAYLOAD_BYTES": "12"}, "SERVE_MAX_PAYLOAD_BYTES must be at least 1024"),
    ({"SERVE_MAX_CONCURRENCY": "many"}, "SERVE_MAX_CONCURRENCY='many' is not a valid int"),
    ({"SERVE_MAX_CONCURENCY": "8"}, "unknown container setting SERVE_MAX_CONCURENCY"),
    ({"RERANK_MAX_LENGHT": "8"}, "unknown container setting RERANK_MAX_LENGHT"),
    ({"RERANK_DTYPE": "float8"}, "RERANK_DTYPE must be one of"),
    ({"RERANK_WARMUP": "sometimes"}, "RERANK_WARMUP='sometimes' is not a valid bool"),
    ({"SERVE_HOST": "127.0.0.1"}, "SERVE_HOST cannot be set for SageMaker"),
    ({"DEPLOY_REGION": "x"}, "not one we pass on"),
    ({"HF_TOKEN": "hf_x"}, "refusing"),
])
def test_everything_sent_to_an_endpoint_is_checked(env, words):
    with pytest.raises(UserError, match=words):
        container_env.check(env)


def test_good_container_settings_pass_as_text():
    checked = container_env.check({"SERVE_MAX_CONCURRENCY": 8, "RERANK_WARMUP": False,
                                   "RERANK_MAX_LENGTH": "256", "OMP_NUM_THREADS": "2"})
    assert checked == {"OMP_NUM_THREADS": "2", "RERANK_MAX_LENGTH": "256",
                       "RERANK_WARMUP": "false", "SERVE_MAX_CONCURRENCY": "8"}


def test_old_prefix_stops_the_cli_with_one_line(monkeypatch, capsys, tmp_path):
    from deploy.__main__ import main

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("RERANKER_ROLE", "arn:aws:iam::123456789012:role/r")
    assert main(["deploy", "--print-trust-policy"]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "set DEPLOY_ROLE" in lines[0]


@pytest.mark.parametrize("value", ["2.9", "inf", "true"])
def test_a_count_in_the_toml_file_is_a_whole_number(tmp_path, monkeypatch, value):
    """TOML hands numbers over typed: 2.9 is refused rather than cut to 2."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "reranker.toml").write_text(f"[deploy]\ninstance_count = {value}\n")
    with pytest.raises(UserError, match="instance_count"):
        deploy_config.load(None, {})
    (tmp_path / "reranker.toml").write_text("[deploy]\ninstance_count = 2.0\n")
    assert deploy_config.load(None, {}).instance_count == 2


def test_a_misspelt_deploy_variable_is_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(UserError, match=r"DEPLOY_INSTANCE_TYP is no deploy setting \(did you"
                                        r" mean DEPLOY_INSTANCE_TYPE\?\)"):
        deploy_config.load(None, {"DEPLOY_INSTANCE_TYP": "ml.c7i.xlarge"})
    # The settings file's variable and make's command variable are no settings, and no typo;
    # another tool's DEPLOY_* (a CI system's) is close to no setting and left alone.
    (tmp_path / "my.toml").write_text("[deploy]\nendpoint = 'from-file'\n")
    config = deploy_config.load(None, {"DEPLOY_CONFIG": str(tmp_path / "my.toml"),
                                       "DEPLOY_TOOL": "python -m deploy",
                                       "DEPLOY_TOKEN": "x", "DEPLOY_STAGE": "prod"})
    assert config.endpoint == "from-file"


@pytest.mark.parametrize("instance_type", ["ml.m5.xlargee", "ml.g5", "m5.xlarge", "ml..large"])
def test_an_instance_type_of_the_wrong_shape_is_refused(tmp_path, monkeypatch, instance_type):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(UserError, match="is not a SageMaker instance type"):
        deploy_config.load(None, {"DEPLOY_INSTANCE_TYPE": instance_type})
    for good in ("ml.g6e.xlarge", "ml.p4de.24xlarge", "ml.t2.medium", "ml.c7i.large"):
        assert deploy_config.load(None, {"DEPLOY_INSTANCE_TYPE": good}).instance_type == good
