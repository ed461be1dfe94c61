"""Each pattern as numbered requests: file name, method, API path and body, in sending order."""

from __future__ import annotations

import dataclasses

from deploy.integrations.opensearch import patterns
from deploy.integrations.opensearch.patterns import Pattern
from deploy.integrations.opensearch.target import Target


@dataclasses.dataclass(frozen=True)
class Step:
    file: str
    method: str
    path: str
    body: dict
    what: str


def steps(pattern: Pattern, target: Target, connector_id: str = patterns.CONNECTOR_ID,
          model_id: str = patterns.MODEL_ID) -> list[Step]:
    pipeline = pattern.pipeline_name(target)
    predict_path, predict_body = pattern.predict(target)
    return [
        Step("01-create-connector.json", "POST", "/_plugins/_ml/connectors/_create",
             patterns.connector(pattern, target), "create the connector; note connector_id"),
        Step("02-register-model.json", "POST", "/_plugins/_ml/models/_register?deploy=true",
             patterns.register_model(pattern, target, connector_id),
             "register and deploy the remote model; note model_id"),
        Step("03-test-model.json", "POST", predict_path.format(model_id=model_id),
             predict_body, "optional: call the model once, outside any search"),
        Step("04-create-pipeline.json", "PUT", f"/_search/pipeline/{pipeline}",
             pattern.pipeline(target, model_id), "create (or replace) the search pipeline"),
        Step("05-search.json", "POST", f"/{target.index}/_search?search_pipeline={pipeline}",
             pattern.search(target), "an example search through the pipeline"),
    ]
