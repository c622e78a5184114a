"""Liveness, readiness and the Prometheus scrape endpoint.

Readiness is answered from a short cache (``QUANTDESK_HEALTH_CACHE_S``, 1 s): without it
every probe, and every client that found the URL, cost a database and a Redis round trip.
Concurrent calls while a check runs wait for that one check instead of starting their own.

``/metrics`` tells per-route traffic and failure counts, which is reconnaissance for an
attacker: with ``QUANTDESK_METRICS_TOKEN`` set a scrape must present it as a bearer token;
without one, it is served outside prod only (``QUANTDESK_METRICS_PUBLIC`` overrides).
"""

from __future__ import annotations

import asyncio
import hmac
import time
from collections.abc import Coroutine
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from quantdesk.platform.context import AppContext, Context
from quantdesk.platform.errors import problem_body, problem_response, request_id_of
from quantdesk.platform.exceptions import NotFound, Unauthenticated
from quantdesk.platform.responses import FastJSONResponse
from quantdesk.platform.startup import STARTUP_EXTENSION, StartupPhases

# Readiness must answer within 2 s even when a dependency hangs.
CHECK_TIMEOUT_S = 1.5
READINESS_EXTENSION = "readiness"


class Readiness:
    """The last readiness result (checks, failing) and when it was taken."""

    def __init__(self, ttl_s: float) -> None:
        self.ttl_s = ttl_s
        self._taken_at = float("-inf")
        self._result: tuple[dict[str, str], list[str]] | None = None
        self._lock = asyncio.Lock()

    async def result(self, ctx: AppContext) -> tuple[dict[str, str], list[str]]:
        if self._result is not None and time.monotonic() - self._taken_at < self.ttl_s:
            return self._result
        async with self._lock:
            # Another caller may have refreshed it while this one waited for the lock.
            if self._result is None or time.monotonic() - self._taken_at >= self.ttl_s:
                self._result = await _check_dependencies(ctx)
                self._taken_at = time.monotonic()
            return self._result


def _readiness(ctx: AppContext) -> Readiness:
    found = ctx.extensions.get(READINESS_EXTENSION)
    if not isinstance(found, Readiness):
        found = ctx.extensions[READINESS_EXTENSION] = Readiness(ctx.settings.health_cache_s)
    return found


async def _check_dependencies(ctx: AppContext) -> tuple[dict[str, str], list[str]]:
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
    # What the alerts "readiness failing" and "Redis unreachable" read (deploy/prometheus).
    for name, state in checks.items():
        ctx.metrics.dependency_up.labels(name).set(1 if state == "ok" else 0)
    ctx.metrics.ready.set(0 if failing else 1)
    return checks, sorted(failing)


router = APIRouter(tags=["operations"])


@router.get("/health/live", summary="The process is up", response_class=FastJSONResponse)
async def live() -> FastJSONResponse:
    return FastJSONResponse({"status": "ok"})


@router.get(
    "/health/ready",
    summary="Started, and dependencies are reachable (database, Redis when configured)",
    response_class=FastJSONResponse,
    responses={
        503: {"description": "Still starting, or a dependency is down; the problem says which"}
    },
)
async def ready(request: Request, ctx: Context) -> Response:
    startup = ctx.extensions.get(STARTUP_EXTENSION)
    if isinstance(startup, StartupPhases) and startup.pending:
        # Not ready while start-up still runs (the demo's first quotes): answering 200 then
        # sent the first chain request to a 422 "no quote yet" (platform/startup.py).
        body = problem_body(
            503,
            slug="starting",
            detail=f"starting: {', '.join(startup.pending)}",
            instance=request.url.path,
            request_id=request_id_of(request),
            extra={
                "checks": {"startup": "running"},
                "failing": ["startup"],
                "pending": startup.pending,
            },
        )
        return problem_response(503, body, {"Retry-After": "1"})
    checks, failing = await _readiness(ctx).result(ctx)
    if failing:
        body = problem_body(
            503,
            slug="dependency-unavailable",
            detail=f"unreachable: {', '.join(failing)}",
            instance=request.url.path,
            request_id=request_id_of(request),
            extra={"checks": checks, "failing": failing},
        )
        return problem_response(503, body, {"Retry-After": "2"})
    return FastJSONResponse({"status": "ok", "checks": checks})


@router.get("/metrics", summary="Prometheus metrics", include_in_schema=True)
async def metrics(request: Request, ctx: Context) -> Response:
    settings = ctx.settings
    if settings.metrics_token is not None:
        expected = "Bearer " + settings.metrics_token.get_secret_value()
        presented = request.headers.get("authorization", "")
        if not hmac.compare_digest(presented.encode(), expected.encode()):
            error = Unauthenticated("/metrics needs the scrape token (QUANTDESK_METRICS_TOKEN)")
            error.headers["WWW-Authenticate"] = 'Bearer realm="quantdesk-metrics"'
            raise error
    elif not settings.metrics_open:
        raise NotFound(f"no resource at {request.url.path}")
    await ctx.metrics.refresh()
    return Response(ctx.metrics.render(), media_type=ctx.metrics.content_type)
