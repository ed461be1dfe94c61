"""POST /endpoints/{name}/invocations answered the way the SageMaker runtime answers.

This is the path boto3's ``sagemaker-runtime`` ``invoke_endpoint`` calls, so a client
pointed at this server (``endpoint_url=http://127.0.0.1:8080``) sees what it sees on AWS:
the container's body and Content-Type on success, and for any error status the runtime's
``ModelError`` (HTTP 424) with ``OriginalStatusCode`` and ``OriginalMessage`` (our JSON
body), which botocore raises as ``client.exceptions.ModelError``.
"""

from __future__ import annotations

import json

from starlette.responses import Response

VARIANT = "AllTraffic"


def success(response: Response) -> Response:
    response.headers["x-Amzn-Invoked-Production-Variant"] = VARIANT
    return response


def model_error(response: Response, request_id: str) -> Response:
    original = response.body.decode("utf-8", errors="replace")
    kind = "client" if response.status_code < 500 else "server"
    body = {
        "ErrorCode": f"{kind.upper()}_ERROR_FROM_MODEL",
        "Message": f"Received {kind} error ({response.status_code}) from primary with message "
                   f'"{original}". See the server log (request id {request_id}) for more '
                   "information.",
        "OriginalStatusCode": response.status_code,
        "OriginalMessage": original,
        "LogStreamArn": "",
    }
    headers = {"x-amzn-ErrorType": "ModelError"}
    return Response(json.dumps(body), status_code=424, headers=headers,
                    media_type="application/json")
