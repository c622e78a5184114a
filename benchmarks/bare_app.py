"""The references for the HTTP benchmark: bare FastAPI apps returning the same JSON.

``create_bare_app`` is the issue's reference, FastAPI as it comes.  The other two are
configured as quantdesk configures FastAPI, with its native OpenTelemetry off unless asked
for (``quantdesk.app.fastapi_telemetry``), so that the benchmark can tell that setting
apart from our middleware; ``create_bare_app_with_headers`` also sends the response headers
quantdesk must send (security headers, request id), built statically, which separates the
cost of the header bytes (paid in the server's HTTP encoder) from that of our middleware.
"""

from __future__ import annotations

import uuid

from fastapi import FastAPI
from fastapi.telemetry import TelemetryConfig
from starlette.responses import Response

from quantdesk.app import telemetry_off
from quantdesk.security.http import API_CSP, PERMISSIONS_POLICY

SECURITY_HEADERS = {
    "content-security-policy": API_CSP,
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    "permissions-policy": PERMISSIONS_POLICY,
    "cross-origin-resource-policy": "same-origin",
}


def _bare_app(telemetry: TelemetryConfig | None, *, with_headers: bool = False) -> FastAPI:
    app = FastAPI(telemetry=telemetry)

    @app.get("/health/live")
    async def live() -> Response:
        headers = {**SECURITY_HEADERS, "x-request-id": uuid.uuid4().hex} if with_headers else None
        return Response(b'{"status":"ok"}', media_type="application/json", headers=headers)

    return app


def create_bare_app() -> FastAPI:
    return _bare_app(None)


def create_bare_app_without_telemetry() -> FastAPI:
    return _bare_app(telemetry_off())


def create_bare_app_with_headers() -> FastAPI:
    return _bare_app(telemetry_off(), with_headers=True)
