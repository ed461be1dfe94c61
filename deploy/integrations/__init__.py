"""Search engines that call the reranker: OpenSearch and Vespa, and what they share."""
