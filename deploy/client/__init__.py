"""Calling a deployed reranker: the Python client, the ``invoke`` command, worked examples.

    from deploy.client import RerankClient
"""

from deploy.client.rerank_client import RerankClient, RerankClientError

__all__ = ["RerankClient", "RerankClientError"]
