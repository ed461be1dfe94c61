"""``python -m deploy opensearch``: what OpenSearch needs to rerank with our SageMaker endpoint.

Writes ready-to-send JSON (connector, model registration, search pipeline, example search)
for three patterns, the IAM policies, and a README saying what to send where; ``--apply``
sends them to ``OPENSEARCH_URL`` with opensearch-py, idempotently.
"""
