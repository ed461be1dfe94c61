"""Models built offline for demos, benchmarks and tests (no hub needed)."""
