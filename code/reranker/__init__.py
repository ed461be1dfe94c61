"""Cross-encoder reranking engine: wire dialects, batching and scoring behind one API.

The SageMaker hooks in ``code/inference.py`` and our HTTP server are thin doors onto
:class:`reranker.engine.Reranker`; everything about scoring lives in this package.
"""

__version__ = "0.2.0"  # the project's one version (pyproject.toml reads it)
