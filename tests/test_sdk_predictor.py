"""The SageMaker Python SDK's Predictor (sagemaker 2.x, in .venv-sagemaker) as the client of
our server: the aws-samples notebook's invocation code path (`predictor.predict({...})` with JSON
serializers), through the SDK's boto3 sagemaker-runtime client pointed at 127.0.0.1.

Our server answers the runtime API's POST /endpoints/{name}/invocations, so the request the
SDK signs and sends is the one SageMaker would get; only the host differs.  No Docker.
"""

from __future__ import annotations

import pytest

import sdkutil
from bench.local_server import start_server
from example_texts import MOVIES, MOVIES_QUERY, PANDA_DOCS, PANDA_QUERY

TOPK_REQUEST = {"query": PANDA_QUERY, "documents": PANDA_DOCS, "topk": 2}
COHERE = {"query": MOVIES_QUERY, "documents": MOVIES, "top_n": 3}
EMPTY_QUERY = {"query": "", "documents": PANDA_DOCS}


@pytest.fixture(scope="module")
def sdk_answers(bert_dir):
    if not sdkutil.venv_ready():
        pytest.skip(f"{sdkutil.SDK_VENV} is not built: run `make sagemaker-venv`")
    with start_server(bert_dir) as url:
        return sdkutil.run_job({"mode": "runtime", "endpoint_url": url,
                                "requests": [TOPK_REQUEST, COHERE, EMPTY_QUERY]})


def answers_of(sdk_answers, index):
    """The answers every predictor gave to request ``index``."""
    return {name: answers[index]
            for name, answers in zip(sdk_answers["predictors"], sdk_answers["answers"])}


def test_both_predictors_ran(sdk_answers):
    assert sdk_answers["predictors"] == ["Predictor+JSON", "HuggingFacePredictor"]


def test_topk_through_the_predictor(sdk_answers, bert_engine):
    raw = bert_engine.score(PANDA_QUERY, PANDA_DOCS, raw=True)
    best = sorted(range(len(PANDA_DOCS)), key=lambda i: -raw[i])[:2]
    for name, got in answers_of(sdk_answers, 0).items():
        assert "ok" in got, (name, got)
        assert [item["index"] for item in got["ok"]] == best, name
        for item in got["ok"]:
            assert item["score"] == pytest.approx(raw[item["index"]], abs=1e-5), name


def test_cohere_through_the_predictor(sdk_answers, bert_engine):
    relevance = bert_engine.score(MOVIES_QUERY, MOVIES)
    best = sorted(range(len(MOVIES)), key=lambda i: -relevance[i])[:3]
    for name, got in answers_of(sdk_answers, 1).items():
        results = got["ok"]["results"]
        assert [r["index"] for r in results] == best, name
        for r in results:
            assert r["relevance_score"] == pytest.approx(relevance[r["index"]], abs=1e-5)


def test_bad_input_reaches_the_user_as_model_error_naming_the_field(sdk_answers):
    import json

    for name, got in answers_of(sdk_answers, 2).items():
        error = got["error"]
        assert error["type"] == "ModelError", (name, error)
        assert error["status"] == 422
        assert json.loads(error["message"])["error"]["field"] == "query"


def test_nothing_written_to_home(sdk_answers):
    """Fake credentials lived in the driver's environment only: no ~/.aws, no SDK config."""
    assert not [p for p in sdk_answers["home_files"] if p.startswith(".aws")]
