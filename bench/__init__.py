"""Benchmarks of the reranker engine and server against what users run today."""
