"""Optional error tracking: with a DSN, an unhandled error reaches Sentry (a local server
speaking Sentry's envelope protocol) without personal data; without one, nothing is sent."""

from __future__ import annotations

import gzip
import importlib
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
import sentry_sdk
from pydantic import SecretStr

from quantdesk.app import create_app
from quantdesk.platform.errortracking import scrub_event
from tests.conftest import base_settings

EMAIL = "alice@example.com"
BEARER = "eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJlLXZhbHVl"


class SentryIngest(BaseHTTPRequestHandler):
    """POST /api/<project>/envelope/: Sentry's envelope endpoint, recording each item."""

    envelopes: list[list[dict[str, Any]]]

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        encoding = self.headers.get("Content-Encoding")
        if encoding == "gzip":
            body = gzip.decompress(body)
        elif encoding == "br":
            brotli: Any = importlib.import_module("brotli")  # sentry-sdk's choice when present
            body = brotli.decompress(body)
        lines = [json.loads(line) for line in body.splitlines() if line.strip()]
        self.server.envelopes.append(lines)  # type: ignore[attr-defined]
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *_args: object) -> None:
        pass


@pytest.fixture
def ingest() -> Iterator[ThreadingHTTPServer]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), SentryIngest)
    server.envelopes = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


async def test_unhandled_error_reaches_sentry_without_pii(
    ingest: ThreadingHTTPServer, tmp_path: Path
) -> None:
    settings = base_settings(f"sqlite+aiosqlite:///{tmp_path / 'qd.db'}", tmp_path / "var")
    settings = settings.model_copy(
        update={"sentry_dsn": SecretStr(f"http://public@127.0.0.1:{ingest.server_port}/42")}
    )
    app = create_app(settings)

    async def boom() -> None:
        raise RuntimeError(f"ledger check failed for {EMAIL} with password=hunter2hunter2")

    app.add_api_route("/boom", boom)
    try:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            response = await client.get(
                "/boom?email=alice%40example.com",
                headers={"Authorization": f"Bearer {BEARER}", "Cookie": "qd_session=s3cr3t"},
            )
        assert response.status_code == 500
        sentry_sdk.flush(timeout=5)
    finally:
        sentry_sdk.get_client().close()
        sentry_sdk.get_global_scope().set_client(None)  # the process-wide client is off again

    events = [item for lines in ingest.envelopes for item in lines if "exception" in item]  # type: ignore[attr-defined]
    assert len(events) == 1
    event = events[0]
    exception = event["exception"]["values"][-1]
    assert exception["type"] == "RuntimeError"
    assert "ledger check failed" in exception["value"]
    assert event["request"]["method"] == "GET"
    assert event["request"]["url"] == "/boom"
    assert event["tags"]["request_id"] == response.headers["x-request-id"]
    sent = json.dumps(event)
    for secret in (EMAIL, "alice%40example.com", BEARER, "hunter2hunter2", "s3cr3t"):
        assert secret not in sent
    assert "authorization" not in sent.lower()
    assert event["environment"] == "test"


def test_scrub_event_keeps_only_harmless_request_fields() -> None:
    event: dict[str, Any] = {
        "request": {
            "url": "https://api.example.com/api/v1/orders?token=abc",
            "headers": {"Authorization": "Bearer x", "User-Agent": "curl/8", "Cookie": "a=b"},
            "data": {"password": "x"},
            "cookies": {"qd": "x"},
            "query_string": "token=abc",
        },
        "user": {"id": "u1", "email": EMAIL, "ip_address": "203.0.113.9"},
        "extra": {"note": f"mail {EMAIL}", "api_key": "qd_abcdefghijklmnopqrstu"},
    }
    scrubbed = scrub_event(event)
    assert scrubbed["request"] == {
        "url": "https://api.example.com/api/v1/orders",
        "headers": {"User-Agent": "curl/8"},
    }
    assert scrubbed["user"] == {"id": "u1"}
    assert EMAIL not in json.dumps(scrubbed)
    assert scrubbed["extra"]["api_key"] == "[redacted]"


def test_off_without_a_dsn(tmp_path: Path) -> None:
    settings = base_settings(f"sqlite+aiosqlite:///{tmp_path / 'qd.db'}", tmp_path / "var")
    assert settings.sentry_dsn is None
    create_app(settings)
    assert not sentry_sdk.is_initialized()
