"""The reference for the HTTP benchmark: a bare FastAPI app returning the same JSON."""

from __future__ import annotations

from fastapi import FastAPI
from starlette.responses import Response


def create_bare_app() -> FastAPI:
    app = FastAPI()

    @app.get("/health/live")
    async def live() -> Response:
        return Response(b'{"status":"ok"}', media_type="application/json")

    return app
