"""The client side: package, upload, deploy, invoke, and emit OpenSearch and Vespa files."""
