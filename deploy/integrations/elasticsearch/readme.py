"""The README.md written beside the JSON files: what to send, where, in which order."""

from __future__ import annotations

from deploy.integrations.elasticsearch.target import Target

_TEMPLATE = """\
# Elasticsearch reranking with the SageMaker endpoint `{endpoint}`

Elasticsearch 8.19 / 9.1 or later calls the endpoint itself: an inference endpoint of the
`amazon_sagemaker` service in its `elastic` API sends `{{"query", "input", "top_n",
"return_documents"}}` and reads `{{"rerank": [{{"index", "relevance_score", "text"}}]}}`, which
the endpoint answers (its `elastic` format; nothing else in the answer, since
Elasticsearch refuses unknown keys). A `text_similarity_reranker` retriever then reranks
the top hits of any search with it.

| file | send it as |
|---|---|
| `{inference_endpoint}` | `PUT _inference/rerank/{inference_id}`, keys filled in (step 2) |
| `{test_inference}` | `POST _inference/rerank/{inference_id}` |
| `{search}` | `POST {index}/_search` |
| `{policy}` | the IAM policy of the user whose keys Elasticsearch signs with |

The commands below name these files by their relative paths: run them from this folder.

## 1. An IAM user that may invoke this endpoint only

The `amazon_sagemaker` service signs requests with an access key; it does not assume a
role. Give it a user of its own, allowed `sagemaker:InvokeEndpoint` on
`{endpoint_arn}` and nothing else:

```bash
aws iam create-user --user-name {iam_user}
aws iam put-user-policy --user-name {iam_user} --policy-name invoke-{slug} \\
    --policy-document file://{policy}
aws iam create-access-key --user-name {iam_user}   # into your secret store
```

## 2. Create the inference endpoint

The file holds placeholders for the two keys; fill them in from the environment as you
send it, so they are never written to disk. Elasticsearch keeps them as secret settings
and never shows them again.

```bash
export ES_URL=https://my-deployment.es.{region}.aws.elastic.cloud:443
export ES_AUTH="ApiKey <an Elasticsearch API key>"
export ES_SAGEMAKER_ACCESS_KEY=... ES_SAGEMAKER_SECRET_KEY=...   # the user's, from step 1
jq --arg ak "$ES_SAGEMAKER_ACCESS_KEY" --arg sk "$ES_SAGEMAKER_SECRET_KEY" \\
   '.service_settings.access_key = $ak | .service_settings.secret_key = $sk' \\
   {inference_endpoint} |
curl -sS -X PUT "$ES_URL/_inference/rerank/{inference_id}" -H "Authorization: $ES_AUTH" \\
     -H 'Content-Type: application/json' -d @-
```
{component_note}
## 3. Check it

```bash
curl -sS -X POST "$ES_URL/_inference/rerank/{inference_id}" -H "Authorization: $ES_AUTH" \\
     -H 'Content-Type: application/json' -d @{test_inference}
# {{"rerank": [{{"index": 0, "relevance_score": 0.99, "text": "The giant panda ..."}}, ...]}}
```

An error here is the endpoint's own message (a 4xx names the field), or SageMaker's
(`AccessDeniedException`: the policy; `ValidationException`: the endpoint name or region).

## 4. Rerank a search

```bash
curl -sS -X POST "$ES_URL/{index}/_search" -H "Authorization: $ES_AUTH" \\
     -H 'Content-Type: application/json' -d @{search}
```

- `field` (`{document_field}`) is the text each hit is scored on; the endpoint cuts long
  texts to the model's limit (`RERANK_MAX_LENGTH`), document first.
- `rank_window_size` ({rank_window}) hits go to the endpoint in one request per search:
  keep it at or under the endpoint's `RERANK_MAX_DOCUMENTS`. A larger window ranks better
  and takes longer; 25 to 100 is usual.
- `relevance_score` is 0..1 (the endpoint's relevance: the sigmoid of a cross-encoder's
  logit, an LLM reranker's probability of "yes"), so `min_score` on the retriever drops hits
  below a relevance you choose. Elasticsearch keeps it as a 32-bit float: relevances above
  0.99999994 (a logit above about 17, which LLM rerankers reach) all read 1.0 there and tie.
"""

_COMPONENT = """
The endpoint hosts inference components: `inference_component_name` sends each call to
`{component}`.
"""


def text(target: Target) -> str:
    from deploy.integrations.elasticsearch import bundle  # which imports this module

    component_note = _COMPONENT.format(component=target.component) if target.component else ""
    return _TEMPLATE.format(
        endpoint=target.endpoint, endpoint_arn=target.endpoint_arn, slug=target.slug,
        iam_user=target.iam_user,
        region=target.region, inference_id=target.inference_id, index=target.index,
        document_field=target.document_field, rank_window=target.rank_window,
        component_note=component_note, inference_endpoint=bundle.INFERENCE_ENDPOINT,
        test_inference=bundle.TEST_INFERENCE, search=bundle.SEARCH, policy=bundle.POLICY)
