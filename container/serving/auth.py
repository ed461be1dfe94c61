"""An API key for the container outside SageMaker (ECS, EKS, a VM): with SERVE_API_KEY set,
every request but GET /ping must carry ``Authorization: Bearer <key>`` (what the Cohere,
TEI, Infinity and vLLM clients send with their api_key), else 401.

SageMaker authenticates callers with IAM and never passes an Authorization header on, so
the key is for other hosts only; ``make deploy`` refuses to put it in an endpoint's
environment.  /ping stays open because load balancers and orchestrators probe it without
credentials; it says only whether the model is loaded.
"""

from __future__ import annotations

import hmac
import json

from starlette.datastructures import Headers

OPEN_PATHS = ("/ping",)
_BODY = json.dumps({"error": {
    "type": "unauthorized", "field": "authorization",
    "message": "send the server's API key as 'Authorization: Bearer <key>'"}}).encode()


class ApiKey:
    """ASGI middleware: 401 for a request without the key, before its body is read."""

    def __init__(self, app, key: str):
        self.app = app
        self.key = key.encode()

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["path"] in OPEN_PATHS or self._carries_key(scope):
            await self.app(scope, receive, send)
            return
        scope.setdefault("state", {}).setdefault("log", {})["error"] = "unauthorized"
        await send({"type": "http.response.start", "status": 401, "headers": [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(_BODY)).encode()),
            (b"www-authenticate", b'Bearer realm="reranker"'),
            # The body was not read: what is left of it would read as the next request.
            (b"connection", b"close")]})
        await send({"type": "http.response.body", "body": _BODY})

    def _carries_key(self, scope) -> bool:
        scheme, _, credential = Headers(scope=scope).get("authorization", "").partition(" ")
        # compare_digest: the time taken says nothing about how much of the key matched.
        return scheme.lower() == "bearer" and hmac.compare_digest(
            credential.strip().encode(), self.key)
