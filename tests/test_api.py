"""Feature routes are served flat from the app's own route table."""

from __future__ import annotations

import pytest
from fastapi import APIRouter, FastAPI
from fastapi.routing import APIRoute, APIWebSocketRoute

from quantdesk.api import feature_routers, install_routes


def test_every_feature_route_is_in_the_app_route_table(app: FastAPI) -> None:
    served = {id(route) for route in app.router.routes}
    expected = [route for router in feature_routers() for route in router.routes]
    assert expected
    assert all(id(route) in served for route in expected)
    assert all(
        isinstance(route, APIRoute | APIWebSocketRoute)
        for route in app.router.routes
        if getattr(route, "path", "").startswith("/api/")
    )


def test_a_nested_router_is_refused() -> None:
    inner = APIRouter()

    @inner.get("/inner")
    async def handler() -> dict[str, str]:
        return {}

    outer = APIRouter(prefix="/outer")
    outer.include_router(inner)
    with pytest.raises(TypeError, match="nested router"):
        install_routes(FastAPI(), [outer])
