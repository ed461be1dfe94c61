"""Our SageMaker serving container: an ASGI app on uvicorn around the hooks of inference.py.

``python -m serving --model-dir DIR`` (what ``container/serve`` and ``make serve`` run).
The modules, outside in:

- ``app``: the Starlette app, its start-up (background model load) and shut-down
- ``routes``: GET /ping, POST /invocations, POST /endpoints/{name}/invocations, and the
  native POST /rerank (TEI, or Cohere's shape), /v1/rerank and /v2/rerank (Cohere),
  /score and /v1/score (vLLM); GET /info and /v1/models (what is served), GET
  /openapi.json
- ``info``: the model's description for /info and /v1/models
- ``openapi``: GET /openapi.json, the API as an OpenAPI 3.1 document
- ``runtime_api``: answers on the runtime path the way the SageMaker runtime does
- ``auth``: the API key off SageMaker (SERVE_API_KEY; 401 without it)
- ``admission``: the bounded number of requests in flight (503 above it)
- ``body``: reading a request body within the payload limit (413) and the body timeout (408)
- ``protocol``: uvicorn's h11 protocol with the connection limits, transport errors in JSON
- ``shutdown``: the SIGTERM deadline (drain, engine close, watchdog)
- ``hooks``: the model door, loading ``code/inference.py`` the way the HF toolkit does
- ``requestlog``: request ids and one JSON log line per request
- ``metrics``: GET /metrics (Prometheus), the engine's observer; ``requestmetrics``: the
  request counters and latencies around the app
- ``logs``: JSON log lines; ``config``: the server's settings (``SERVE_*``)
- ``healthcheck``: the image's HEALTHCHECK command; ``ports``: whether a port is free,
  asked before the model loads (and by ``make docker-run``)
"""
