"""The README.md written beside the JSON files: what to send, where, in which order."""

from __future__ import annotations

from deploy.opensearch.patterns import PATTERNS, Pattern
from deploy.opensearch.steps import steps
from deploy.opensearch.target import Target

_CHOICE = """\
## Which pattern

| pattern | OpenSearch | calls per search | use it when |
|---|---|---|---|
| `1-cohere` (recommended) | 2.12+ | 1 | always, unless a reason below applies; no Painless at all |
| `2-tei-painless` | 2.12+ | 1 | the same connector must also work with a TEI endpoint |
| `3-ml-inference-by-field` | 2.18+ | one per hit | the score as a field; reads one field |
"""

_CAVEATS = """\
## Caveats

- **A query that is itself a JSON object or array** (for example `{"a": "b"}`): ml-commons
  escapes every parameter before putting it into `request_body`, except values that already
  parse as JSON (`ConnectorUtils.escapeRemoteInferenceInputData`). Such a query is pasted
  into `"${parameters.query}"` unescaped and the body stops being valid JSON. ml-commons
  usually refuses it itself (`Invalid payload`); a body that still reaches the endpoint gets
  a clear HTTP 400 `invalid_json` from the container, never a 500. Patterns 1 and 2 share this
  limit; in pattern 3 it also applies to document fields whose text is JSON.
  Plain text queries and documents with quotes, backslashes, newlines, control characters,
  unicode or emoji are safe in every pattern.
- **Number of hits**: the rerank processor sends every hit of the page (`size`). The container
  accepts up to `RERANK_MAX_DOCUMENTS` documents (default 1000) and answers 413 above.
- **Missing fields**: `ml_opensearch` scores a hit without the document field as an empty
  text; `ml_inference` fails the search on such a hit unless `"ignore_missing": true`, and
  `by_field` then fails unless the rerank processor has `"ignore_failure": true`.
- ml-commons also expands `${parameters.NAME}` written inside a query or document text
  (Apache StringSubstitutor); plain text never contains that sequence.
"""


def _iam(target: Target) -> str:
    if target.flavour == "aws":
        return f"""\
## 0. IAM (once)

1. Create the role `{target.role_arn}` with `iam/trust-policy.json` as its trust policy
   (OpenSearch Service assumes it) and `iam/invoke-endpoint-policy.json` as its permissions
   (`sagemaker:InvokeEndpoint` on `{target.endpoint_arn}` only).
2. Allow the identity that sends `01-create-connector.json` to pass that role
   (`iam/pass-role-policy.json`). With fine-grained access control, map that identity to the
   `ml_full_access` role in OpenSearch Dashboards.
"""
    return f"""\
## 0. IAM (once)

A self-managed cluster cannot assume an IAM role: the connector signs with an IAM user's
keys. Create a user allowed only by `iam/invoke-endpoint-policy.json`
(`sagemaker:InvokeEndpoint` on `{target.endpoint_arn}`), and replace the `<AWS_...>`
placeholders in each `01-create-connector.json` just before sending it (add
`"session_token"` for temporary credentials). Do not store the filled file.
`--apply --send-aws-credentials` instead sends the credentials of your current AWS session
in the request only, never writing them anywhere.

A cluster without dedicated ML nodes deploys remote models only after
`PUT /_cluster/settings` with
`{{"persistent": {{"plugins.ml_commons.only_run_on_ml_node": false}}}}`.
"""


def _pattern(pattern: Pattern, target: Target) -> str:
    rows = "\n".join(f"| {i} | `{pattern.folder}/{s.file}` | `{s.method} {s.path}` | {s.what} |"
                     for i, s in enumerate(steps(pattern, target), 1))
    return f"""\
## {pattern.folder}: {pattern.title}

| # | file | send to | |
|---|---|---|---|
{rows}

Replace `<connector_id ...>` and `<model_id ...>` with the ids the earlier responses gave.
"""


def text(target: Target) -> str:
    flavour = ("Amazon OpenSearch Service" if target.flavour == "aws"
               else "self-managed OpenSearch")
    parts = [f"""\
# OpenSearch reranking with SageMaker endpoint `{target.endpoint}`

Region `{target.region}`, for {flavour}. Every `.json` file is one request body, plain JSON.
Send them in the numbered order, for example:

    curl -XPOST "$OPENSEARCH_URL/_plugins/_ml/connectors/_create" \\
      -H 'Content-Type: application/json' --data-binary @1-cohere/01-create-connector.json

or paste the method, path and file content into Dev Tools. `python -m deploy opensearch
--endpoint {target.endpoint} ... --apply` sends steps 01, 02 and 04 of one pattern for you,
idempotently, and prints the ids. Document fields: `{", ".join(target.document_fields)}`;
index in the examples: `{target.index}`.
""", _iam(target), _CHOICE]
    parts += [_pattern(p, target) for p in PATTERNS.values()]
    parts.append(_CAVEATS)
    return "\n".join(parts)
