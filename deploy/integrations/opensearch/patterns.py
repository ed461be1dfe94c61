"""The three ways to wire the endpoint into OpenSearch, each as the bodies to send.

1. ``cohere``: ml-commons' built-in cohere.rerank pre/post-process (OpenSearch 2.12+), our
   container's Cohere dialect, and the ``rerank`` processor of type ``ml_opensearch``.
2. ``tei``: the TEI format with our Painless (the pattern of OpenSearch's
   SageMaker reranker tutorial, fixed for 2.12+), which
   builds the whole request body, so no input can break it.
3. ``ml-inference``: an ``ml_inference`` response processor scoring each hit in the HF
   pipeline format (text = query, text_pair = document), then ``rerank`` ``by_field``
   (the pattern of OpenSearch's rerank-by-field tutorial as two processors, query first;
   OpenSearch 2.18+).

``--instruction`` (an LLM reranker's task) rides in every body as a constant: one more key
of the JSON template in patterns 1 and 3, one more literal of the body the Painless builds
in pattern 2.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Callable

from deploy.integrations.opensearch import painless
from deploy.integrations.opensearch.target import Target

# Ids the cluster hands out; the README says to replace them (``--apply`` fills them in).
CONNECTOR_ID = "<connector_id from 01-create-connector>"
MODEL_ID = "<model_id from 02-register-model>"
# The access-key form, for self-managed clusters: placeholders only, never real keys.
ACCESS_KEY = "<AWS_ACCESS_KEY_ID of an IAM user allowed by iam/invoke-endpoint-policy.json>"
SECRET_KEY = "<AWS_SECRET_ACCESS_KEY of that user>"

# query_text_path / _request path of the example search's multi_match query.
QUERY_PATH = "query.multi_match.query"
SAMPLE_QUERY = "What is the capital city of America?"
SAMPLE_DOCS = [
    "Carson City is the capital city of the American state of Nevada.",
    "Washington, D.C. is the capital of the United States.",
]


@dataclasses.dataclass(frozen=True)
class Pattern:
    key: str
    folder: str
    title: str
    request_body: str  # a JSON object template, unless the Painless builds the body
    pre_process: str | None
    post_process: str | None
    pipeline: Callable[[Target, str], dict]
    search: Callable[[Target], dict]
    predict: Callable[[Target], tuple[str, dict]]  # (API path with the model id, body)

    def connector_name(self, target: Target) -> str:
        tag = instruction_tag(target)
        return f"{target.slug} reranker ({self.key})" + (f" [instruction {tag}]" if tag else "")

    def pipeline_name(self, target: Target) -> str:
        tag = instruction_tag(target)
        return f"{target.slug}-rerank-{self.key}" + (f"-{tag}" if tag else "")


def instruction_tag(target: Target) -> str:
    """Eight hex digits of the instruction's sha256 ('' without one).  ``--apply`` finds
    connectors and models by name: another instruction must never reuse them, and each
    instruction gets its own pipeline, so one endpoint can serve several indexes."""
    if target.instruction is None:
        return ""
    return hashlib.sha256(target.instruction.encode("utf-8")).hexdigest()[:8]


def credential(target: Target) -> dict:
    if target.flavour == "aws":
        return {"roleArn": target.role_arn}
    return {"access_key": ACCESS_KEY, "secret_key": SECRET_KEY}


def _request_body(pattern: Pattern, instruction: str | None) -> str:
    if instruction is None or pattern.pre_process == painless.TEI_PRE_PROCESS:
        return pattern.request_body
    member = f', "instruction": {json.dumps(instruction, ensure_ascii=False)}'
    return pattern.request_body[:-1] + member + "}"


def _pre_process(pattern: Pattern, instruction: str | None) -> str | None:
    if pattern.pre_process == painless.TEI_PRE_PROCESS:
        return painless.tei_pre_process(instruction)
    return pattern.pre_process


def headers(target: Target) -> dict:
    """What every call sends: JSON, and the component an endpoint of several must be told
    (SageMaker refuses a call to such an endpoint that names none)."""
    out = {"content-type": "application/json"}
    if target.component:
        out["X-Amzn-SageMaker-Inference-Component"] = target.component
    return out


def connector(pattern: Pattern, target: Target) -> dict:
    action = {
        "action_type": "predict",
        "method": "POST",
        "url": target.url,
        "headers": headers(target),
        "request_body": _request_body(pattern, target.instruction),
    }
    pre_process = _pre_process(pattern, target.instruction)
    if pre_process:
        action["pre_process_function"] = pre_process
    if pattern.post_process:
        action["post_process_function"] = pattern.post_process
    return {
        "name": pattern.connector_name(target),
        "description": _description(pattern, target),
        "version": "1",
        "protocol": "aws_sigv4",
        "parameters": {"region": target.region, "service_name": "sagemaker"},
        "credential": credential(target),
        "actions": [action],
    }


def _description(pattern: Pattern, target: Target) -> str:
    """The role is named here because the cluster never shows the credential: a re-run with
    another --role-arn then reads as a changed description and updates the connector."""
    text = f"SageMaker cross-encoder endpoint {target.endpoint} ({pattern.title})"
    return text + (f"; signs as {target.role_arn}" if target.flavour == "aws" else "")


def register_model(pattern: Pattern, target: Target, connector_id: str = CONNECTOR_ID) -> dict:
    return {
        "name": pattern.connector_name(target),
        "function_name": "remote",
        "description": f"Cross-encoder on SageMaker endpoint {target.endpoint}",
        "connector_id": connector_id,
    }


def _rerank_pipeline(target: Target, model_id: str) -> dict:
    return {
        "description": f"Rerank hits with the cross-encoder on {target.endpoint}",
        "response_processors": [{
            "rerank": {
                "ml_opensearch": {"model_id": model_id},
                "context": {"document_fields": list(target.document_fields)},
            }
        }],
    }


def _by_field_pipeline(target: Target, model_id: str) -> dict:
    return {
        "description": f"Score each hit with the cross-encoder on {target.endpoint},"
                       " then sort by that score",
        "response_processors": [
            {"ml_inference": {
                "tag": "cross_encoder",
                "description": "query first, document second, as the model was trained",
                "model_id": model_id,
                "function_name": "remote",
                "input_map": [{"text": f"$._request.{QUERY_PATH}",
                               "text_pair": target.document_fields[0]}],
                "output_map": [{"rank_score": "$.score"}],
                "full_response_path": False,
                "model_config": {},
                "ignore_missing": False,
                "ignore_failure": False,
                "one_to_one": True,
            }},
            {"rerank": {"by_field": {
                "target_field": "rank_score",
                "remove_target_field": True,
                "keep_previous_score": True,
            }}},
        ],
    }


def _multi_match(target: Target) -> dict:
    return {"multi_match": {"query": SAMPLE_QUERY, "fields": list(target.document_fields)}}


def _search_with_context(target: Target) -> dict:
    return {
        "size": 10,
        "query": _multi_match(target),
        "ext": {"rerank": {"query_context": {"query_text_path": QUERY_PATH}}},
    }


def _search_plain(target: Target) -> dict:
    return {"size": 10, "query": _multi_match(target)}


def _predict_similarity(target: Target) -> tuple[str, dict]:
    return ("/_plugins/_ml/_predict/text_similarity/{model_id}",
            {"query_text": SAMPLE_QUERY, "text_docs": SAMPLE_DOCS})


def _predict_pair(target: Target) -> tuple[str, dict]:
    return ("/_plugins/_ml/models/{model_id}/_predict",
            {"parameters": {"text": SAMPLE_QUERY, "text_pair": SAMPLE_DOCS[1]}})


PATTERNS: dict[str, Pattern] = {p.key: p for p in (
    Pattern(
        key="cohere", folder="1-cohere",
        title="recommended: built-in cohere.rerank functions, rerank ml_opensearch",
        request_body=('{"query": "${parameters.query}", "documents": ${parameters.documents},'
                      ' "top_n": ${parameters.top_n}}'),
        pre_process="connector.pre_process.cohere.rerank",
        post_process="connector.post_process.cohere.rerank",
        pipeline=_rerank_pipeline, search=_search_with_context, predict=_predict_similarity,
    ),
    Pattern(
        key="tei", folder="2-tei-painless",
        title="TEI format with Painless pre/post-process, rerank ml_opensearch",
        # The Painless builds the whole body: no quoted ${parameters.query} to break.
        request_body="${parameters.body}",
        pre_process=painless.TEI_PRE_PROCESS,
        post_process=painless.TEI_POST_PROCESS,
        pipeline=_rerank_pipeline, search=_search_with_context, predict=_predict_similarity,
    ),
    Pattern(
        key="ml-inference", folder="3-ml-inference-by-field",
        title="ml_inference response processor (one call per hit), rerank by_field",
        request_body=('{"inputs": {"text": "${parameters.text}",'
                      ' "text_pair": "${parameters.text_pair}"}}'),
        pre_process=None, post_process=None,
        pipeline=_by_field_pipeline, search=_search_plain, predict=_predict_pair,
    ),
)}
