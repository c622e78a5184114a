"""Liveness, readiness and the Prometheus scrape endpoint."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from quantdesk.platform.context import Context
from quantdesk.platform.errors import problem_body, problem_response, request_id_of
from quantdesk.platform.responses import FastJSONResponse

# Readiness must answer within 2 s even when a dependency hangs.
CHECK_TIMEOUT_S = 1.5

router = APIRouter(tags=["operations"])


@router.get("/health/live", summary="The process is up", response_class=FastJSONResponse)
async def live() -> FastJSONResponse:
    return FastJSONResponse({"status": "ok"})


@router.get(
    "/health/ready",
    summary="Dependencies are reachable (database, Redis when configured)",
    response_class=FastJSONResponse,
    responses={503: {"description": "A dependency is down; the problem names it"}},
)
async def ready(request: Request, ctx: Context) -> Response:
    checks: dict[str, str] = {}
    failing: list[str] = []

    async def check(name: str, probe: Coroutine[Any, Any, object]) -> None:
        try:
            await asyncio.wait_for(probe, CHECK_TIMEOUT_S)
            checks[name] = "ok"
        except Exception:
            checks[name] = "unreachable"
            failing.append(name)

    probes = [check("database", ctx.database.ping())]
    redis = ctx.redis
    if redis is not None:

        async def ping_redis() -> object:
            return await redis.ping()

        probes.append(check("redis", ping_redis()))
    await asyncio.gather(*probes)
    if failing:
        body = problem_body(
            503,
            slug="dependency-unavailable",
            detail=f"unreachable: {', '.join(sorted(failing))}",
            instance=request.url.path,
            request_id=request_id_of(request),
            extra={"checks": checks, "failing": sorted(failing)},
        )
        return problem_response(503, body, {"Retry-After": "2"})
    return FastJSONResponse({"status": "ok", "checks": checks})


@router.get("/metrics", summary="Prometheus metrics", include_in_schema=True)
async def metrics(ctx: Context) -> Response:
    return Response(ctx.metrics.render(), media_type=ctx.metrics.content_type)
