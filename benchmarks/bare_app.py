"""The references for the HTTP benchmark: bare FastAPI apps returning the same JSON.

``create_bare_app`` is the issue's reference.  ``create_bare_app_with_headers`` also sends
the response headers quantdesk must send (security headers, request id), built statically,
so the benchmark can separate the cost of the header bytes (paid in the server's HTTP
encoder) from the cost of our middleware.
"""

from __future__ import annotations

import uuid

from fastapi import FastAPI
from starlette.responses import Response

from quantdesk.security.http import API_CSP, PERMISSIONS_POLICY

SECURITY_HEADERS = {
    "content-security-policy": API_CSP,
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    "permissions-policy": PERMISSIONS_POLICY,
    "cross-origin-resource-policy": "same-origin",
}


def create_bare_app() -> FastAPI:
    app = FastAPI()

    @app.get("/health/live")
    async def live() -> Response:
        return Response(b'{"status":"ok"}', media_type="application/json")

    return app


def create_bare_app_with_headers() -> FastAPI:
    app = FastAPI()

    @app.get("/health/live")
    async def live() -> Response:
        headers = {**SECURITY_HEADERS, "x-request-id": uuid.uuid4().hex}
        return Response(b'{"status":"ok"}', media_type="application/json", headers=headers)

    return app
