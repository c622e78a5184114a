"""FastAPI's native OpenTelemetry follows ``QUANTDESK_OTEL_ENABLED``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from opentelemetry import trace

from quantdesk.app import create_app
from tests.conftest import base_settings


async def _provider_lookups(
    monkeypatch: pytest.MonkeyPatch, settings_dir: Path, *, enabled: bool
) -> int:
    lookups = 0
    real = trace.get_tracer_provider

    def counting() -> Any:
        nonlocal lookups
        lookups += 1
        return real()

    # FastAPI reads the global provider through the API module on each request it considers
    # recording; counting the reads shows whether it does.
    monkeypatch.setattr(trace, "get_tracer_provider", counting)
    settings = base_settings(f"sqlite+aiosqlite:///{settings_dir / 'otel.db'}", settings_dir)
    app = create_app(settings.model_copy(update={"otel_enabled": enabled}))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            for _ in range(3):
                assert (await http.get("/health/live")).status_code == 200
    return lookups


async def test_off_by_default_fastapi_does_not_look_for_providers(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    assert await _provider_lookups(monkeypatch, tmp_path, enabled=False) == 0


async def test_enabled_fastapi_looks_for_the_global_providers(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    assert await _provider_lookups(monkeypatch, tmp_path, enabled=True) >= 3
