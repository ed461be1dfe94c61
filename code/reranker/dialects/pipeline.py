"""The Hugging Face text-classification pipeline, as the DLC's default handler serves it.

``{"inputs": {"text", "text_pair"} | [...], "parameters"?: {"function_to_apply", "top_k"}}``
scores (text, text_pair) in the order given, exactly like the pipeline (OpenSearch's
rerank-by-field tutorial maps text = the document, text_pair = the query).  Answers
``{"label", "score"}`` per input.  Our extension: a top-level ``instruction`` for an LLM
reranker, and ``long_documents``/``max_chunks_per_doc``, as in the query dialects.
"""

from __future__ import annotations

from .. import scoring
from ..errors import InvalidRequest
from ..request import RerankRequest, RerankResult
from ..wire import as_float
from . import fields

NAME = "pipeline"
_FUNCTIONS = ("sigmoid", "softmax", "none")


def parse(body: dict) -> RerankRequest:
    inputs = body.get("inputs")
    single = isinstance(inputs, dict)
    if single:
        items = [inputs]
    elif isinstance(inputs, list) and inputs:
        fields.check_count(len(inputs), "inputs")
        items = inputs
    else:
        raise InvalidRequest(
            'inputs must be {"text": ..., "text_pair": ...} or a non-empty list of them'
            " (a cross-encoder scores pairs)", field="inputs")
    pairs = [_pair(item, "inputs" if single else f"inputs[{i}]") for i, item in enumerate(items)]
    mode, chunks = fields.long_documents(body)
    return RerankRequest(
        dialect=NAME,
        pairs=pairs,
        documents=[p[1] for p in pairs],
        documents_field="inputs",
        query_field="inputs.text" if single else "inputs[{i}].text",
        document_field="inputs.text_pair" if single else "inputs[{i}].text_pair",
        options={"single": single, **_parameters(body)},
        long_documents=mode,
        max_chunks=chunks,
        instruction=fields.instruction(body),
    )


def _pair(item, where: str) -> tuple[str, str]:
    if not isinstance(item, dict):
        raise InvalidRequest(f'{where} must be an object {{"text", "text_pair"}}', field=where)
    text = fields.text(item, "text", label=f"{where}.text", allow_empty=True)
    pair = fields.text(item, "text_pair", label=f"{where}.text_pair", allow_empty=True)
    return text, pair


def _parameters(body: dict) -> dict:
    params = body.get("parameters")
    if params is None:
        return {}
    fields.require_object(params, "parameters")
    out = {}
    function = fields.choice(params, "function_to_apply", _FUNCTIONS, None,
                             label="parameters.function_to_apply")
    if function:
        out["function_to_apply"] = function
    if "top_k" in params:
        # null: every label
        out["top_k"] = fields.positive_int(params, "top_k", label="parameters.top_k")
        out["labels_list"] = True
    return out


def render(result: RerankResult):
    options = result.request.options
    num_labels = result.logits.shape[1]
    function = options.get("function_to_apply") or scoring.pipeline_default_function(num_labels)
    probs = scoring.apply_function(result.logits, function)
    answers = [_labels(row, result.id2label, options) for row in probs]
    return answers[0] if options.get("single") else answers


def _labels(row, id2label: dict, options: dict):
    order = sorted(range(len(row)), key=lambda k: -row[k])
    labelled = [{"label": id2label.get(k, f"LABEL_{k}"), "score": as_float(row[k])}
                for k in order]
    if not options.get("labels_list"):
        return labelled[0]
    top_k = options.get("top_k")
    return labelled if top_k is None else labelled[:top_k]
