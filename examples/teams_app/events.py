"""API Gateway (REST API, v1) proxy events, as AWS sends them to the function: for tests and demos."""

from __future__ import annotations

import base64
import json
import uuid
from typing import Any

__all__ = ["api_event"]


def api_event(
    method: str,
    path: str,
    body: Any = None,
    *,
    b64: bool = False,
    query: dict[str, str] | None = None,
) -> dict[str, Any]:
    """An API Gateway REST API proxy event, as AWS sends it to the function."""
    parts = path.strip("/").split("/")
    resource = "/teams/{id}" + ("/members" if len(parts) == 3 else "")
    text = None if body is None else (body if isinstance(body, str) else json.dumps(body))
    if text is not None and b64:
        text = base64.b64encode(text.encode()).decode()
    headers = {
        "Accept": "application/json",
        "Content-Type": "application/json",
        "Host": "abc123.execute-api.us-east-1.amazonaws.com",
        "User-Agent": "curl/8.4.0",
        "X-Forwarded-For": "203.0.113.7",
        "X-Forwarded-Port": "443",
        "X-Forwarded-Proto": "https",
    }
    return {
        "resource": resource,
        "path": path,
        "httpMethod": method,
        "headers": headers,
        "multiValueHeaders": {name: [value] for name, value in headers.items()},
        "queryStringParameters": query or None,
        "multiValueQueryStringParameters": {k: [v] for k, v in query.items()} if query else None,
        "pathParameters": {"id": parts[1]},
        "stageVariables": None,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "abc123",
            "domainName": "abc123.execute-api.us-east-1.amazonaws.com",
            "domainPrefix": "abc123",
            "extendedRequestId": "c1cGtHZJIAMFZ6A=",
            "httpMethod": method,
            "identity": {"sourceIp": "203.0.113.7", "userAgent": "curl/8.4.0"},
            "path": "/prod" + path,
            "protocol": "HTTP/1.1",
            "requestId": str(uuid.uuid4()),
            "requestTime": "25/Nov/2026:15:00:00 +0000",
            "requestTimeEpoch": 1795618800000,
            "resourceId": "xyz789",
            "resourcePath": resource,
            "stage": "prod",
        },
        "body": text,
        "isBase64Encoded": b64,
    }
