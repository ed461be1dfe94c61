"""``python -m deploy elasticsearch``: what Elasticsearch needs to rerank with our SageMaker
endpoint.

Elasticsearch 8.19 / 9.1 and later call SageMaker themselves: an inference endpoint of the
``amazon_sagemaker`` service with ``"api": "elastic"`` posts ``{"query", "input", "top_n",
"return_documents"}`` and reads ``{"rerank": [...]}`` (our ``elastic`` dialect), and a
``text_similarity_reranker`` retriever reranks a search with it.  This writes the inference
endpoint's body (keys left as placeholders, filled in only when it is sent), an example
inference call and search, the IAM policy for the keys' user, and a README.
"""
