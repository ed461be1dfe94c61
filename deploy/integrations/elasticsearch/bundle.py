"""The folder: the inference endpoint's body, an inference call, a search, the IAM policy
and the README."""

from __future__ import annotations

import json
from pathlib import Path

from deploy.integrations import common as integration
from deploy.integrations.elasticsearch import readme
from deploy.integrations.elasticsearch.target import Target
from deploy.sagemaker.iam import allow, document

# Filled in when the body is sent (README: jq from the environment), never in a file.
ACCESS_KEY = "<AWS_ACCESS_KEY_ID>"
SECRET_KEY = "<AWS_SECRET_ACCESS_KEY>"
EXAMPLE_QUERY = "what is a panda?"
EXAMPLE_DOCUMENTS = ["The giant panda is a bear species endemic to China.",
                     "Pandas is a Python library for data analysis.",
                     "Paris is the capital of France."]

INFERENCE_ENDPOINT = "1-inference-endpoint.json"
TEST_INFERENCE = "2-test-inference.json"
SEARCH = "3-search.json"
POLICY = "iam/invoke-endpoint-policy.json"


def inference_endpoint(target: Target) -> dict:
    """PUT _inference/rerank/<id>: the amazon_sagemaker service in the elastic API."""
    settings = {"access_key": ACCESS_KEY, "secret_key": SECRET_KEY, "region": target.region,
                "api": "elastic", "endpoint_name": target.endpoint}
    if target.component:
        settings["inference_component_name"] = target.component
    return {"service": "amazon_sagemaker", "service_settings": settings}


def test_inference() -> dict:
    """POST _inference/rerank/<id>: what Elasticsearch then sends the endpoint, near enough."""
    return {"query": EXAMPLE_QUERY, "input": EXAMPLE_DOCUMENTS, "top_n": 2,
            "return_documents": True}


def search(target: Target) -> dict:
    """POST <index>/_search: first-stage match, then the top rank_window hits reranked."""
    return {"retriever": {"text_similarity_reranker": {
        "retriever": {"standard": {"query": {"match": {target.document_field: EXAMPLE_QUERY}}}},
        "field": target.document_field,
        "inference_id": target.inference_id,
        "inference_text": EXAMPLE_QUERY,
        "rank_window_size": target.rank_window}},
        "size": min(10, target.rank_window)}


def invoke_policy(target: Target) -> dict:
    """For the IAM user whose keys Elasticsearch signs with: this endpoint, nothing else."""
    return document(allow("sagemaker:InvokeEndpoint", target.endpoint_arn,
                          "InvokeRerankerEndpoint"))


def render(obj) -> str:
    return json.dumps(obj, indent=2, ensure_ascii=False) + "\n"


def files(target: Target) -> dict[str, str]:
    return {INFERENCE_ENDPOINT: render(inference_endpoint(target)),
            TEST_INFERENCE: render(test_inference()),
            SEARCH: render(search(target)),
            POLICY: render(invoke_policy(target)),
            "README.md": readme.text(target)}


def write(target: Target, out_dir: Path) -> list[Path]:
    contents = files(target)
    with integration.folder(out_dir, "elasticsearch") as stage:
        integration.write_files(stage, contents)
    return [out_dir / rel for rel in contents]
