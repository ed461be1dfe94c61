"""The README.md written beside the JSON files: what to send, where, in which order."""

from __future__ import annotations

from deploy.integrations.opensearch.patterns import PATTERNS, Pattern
from deploy.integrations.opensearch.steps import steps
from deploy.integrations.opensearch.target import Target

_CHOICE = """\
## Which pattern

| pattern | OpenSearch | calls per search | use it when |
|---|---|---|---|
| `1-cohere` (recommended) | 2.12+ | 1 | always, unless a reason below applies; no Painless at all |
| `2-tei-painless` | 2.12+ | 1 | queries may be JSON (its Painless builds the body); TEI works too |
| `3-ml-inference-by-field` | 2.18+ | one per hit | the score as a field; reads one field |
"""

_CAVEATS = """\
## Caveats

- **Text that is itself JSON.** ml-commons escapes every parameter before putting it into
  `request_body`, except values that already parse as a JSON object or array
  (`ConnectorUtils.escapeRemoteInferenceInputData`, `StringUtils.isJson`). Such a value is
  pasted into `"${{parameters.query}}"` as it is, and the body breaks exactly when it also
  holds a character JSON strings must escape: a double quote, a backslash or a control
  character. So `{{"a": 1}}` and `["x"]` break, while `[1,2]`, `{{}}` and every plain text (with
  quotes, backslashes, newlines, unicode or emoji) are safe.
  - Pattern 2 is immune: its Painless builds the whole body and `request_body` is just
    `${{parameters.body}}`, which ml-commons passes on unescaped because it is JSON.
  - Pattern 1 breaks on such a *query* (documents travel as one JSON array and are safe);
    pattern 3 on such a query *or document field*.
  - What you see: the search fails with an error whose reason starts with
    `Invalid payload:` (`HttpConnector.createPayload`); the endpoint is never called (a
    broken body that did reach it would get a clear HTTP 400 `invalid_json`, never a 500).
  - Guard where the text comes from: before sending a search, refuse or rephrase a query
    that parses as a JSON object or array (for example, in Python,
    `isinstance(json.loads(q), (dict, list))` inside a try), or use pattern 2; for pattern 3,
    check document fields at indexing time.
- **`${{parameters.NAME}}` inside a query or document is expanded** by ml-commons (Apache
  StringSubstitutor, recursively, with the connector's parameters such as `region` in
  scope), in every pattern; in pattern 2, the text `${{parameters.body}}` fails the search.
  Plain text never contains that sequence.
- **Several document fields** ({fields}) are joined with no separator by the `rerank`
  processor (`ml_opensearch`): `"a" + "b"` is scored as `ab`. End each field with a space
  or punctuation in the index, or name one field. Pattern 3 reads the first field only.
- **Number of hits**: the rerank processor sends every hit of the page (`size`). The container
  accepts up to `RERANK_MAX_DOCUMENTS` documents (default 1000) and answers 413 above.
- **Missing fields**: `ml_opensearch` scores a hit without the document field as an empty
  text; `ml_inference` fails the search on such a hit unless `"ignore_missing": true`, and
  `by_field` then fails unless the rerank processor has `"ignore_failure": true`.
"""

_TUTORIALS = """\
## Coming from OpenSearch's tutorials

- **Reranking by a field using a cross-encoder** (`ml_inference` with `text` = the document,
  `text_pair` = the query): every pattern here sends the **query first**, as these
  cross-encoders were trained (`[CLS] query [SEP] document [SEP]`). That is right, but it
  changes every score, so re-check any score threshold or `min_score` tuned on the old order.
  That tutorial's index kept the text in the field `facts`: pass `--document-field facts`
  (`make opensearch DOCUMENT_FIELD=facts`).
- **Reranking search results using a reranker in Amazon SageMaker** (TEI connector with
  Painless): its index used `passage_text`
  (`DOCUMENT_FIELD=passage_text`); drop its `escape()` calls, ml-commons escapes the inputs
  itself since 2.12.
- This folder was written for document field(s) `{fields}`.
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


def _instruction(target: Target) -> str:
    if target.instruction is None:
        return ("An LLM reranker judges by the endpoint's own instruction (its"
                " `RERANK_INSTRUCTION`, else the model's default); `--instruction` writes one"
                " into every connector.\n")
    return ("Every connector sends this instruction with each request (an LLM reranker's"
            " task; a cross-encoder refuses it with HTTP 422):\n\n"
            + "".join(f"    {line}\n" for line in target.instruction.splitlines()))


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


def _component(target: Target) -> str:
    return f", inference component `{target.component}`" if target.component else ""


def text(target: Target) -> str:
    flavour = ("Amazon OpenSearch Service" if target.flavour == "aws"
               else "self-managed OpenSearch")
    parts = [f"""\
# OpenSearch reranking with SageMaker endpoint `{target.endpoint}`{_component(target)}

Region `{target.region}`, for {flavour}. Every `.json` file is one request body, plain JSON.
Send them in the numbered order, for example:

    curl -XPOST "$OPENSEARCH_URL/_plugins/_ml/connectors/_create" \\
      -H 'Content-Type: application/json' --data-binary @1-cohere/01-create-connector.json

or paste the method, path and file content into Dev Tools. `python -m deploy opensearch
--endpoint {target.endpoint} ... --apply` sends steps 01, 02 and 04 of one pattern for you,
idempotently, and prints the ids. Document fields: `{", ".join(target.document_fields)}`;
index in the examples: `{target.index}`.
""", _instruction(target), _iam(target), _CHOICE]
    parts += [_pattern(p, target) for p in PATTERNS.values()]
    fields = ", ".join(f"`{f}`" for f in target.document_fields)
    parts.append(_CAVEATS.format(fields=fields))
    parts.append(_TUTORIALS.format(fields=", ".join(target.document_fields)))
    return "\n".join(parts)
