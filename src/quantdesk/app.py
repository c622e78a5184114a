"""The app factory: ``create_app(settings)`` builds everything; nothing lives at module level."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.telemetry import TelemetryConfig

from quantdesk import __version__
from quantdesk.api import feature_lifespans, feature_routers, install_routes
from quantdesk.platform import apidocs
from quantdesk.platform.context import AppContext
from quantdesk.platform.errors import install_error_handlers
from quantdesk.platform.errortracking import init_error_tracking
from quantdesk.platform.lifecycle import run_lifespans
from quantdesk.platform.logging import AccessLog, configure_logging, get_logger
from quantdesk.platform.middleware import RequestContextMiddleware
from quantdesk.platform.openapi import install_problem_responses
from quantdesk.platform.startup import freeze_startup_heap
from quantdesk.security.http import SecurityHeaders, install_http_hardening
from quantdesk.security.policy import mark_public
from quantdesk.security.services import install_security
from quantdesk.settings import Settings
from quantdesk.users.credentials import UserCredentialStore

log = get_logger("quantdesk.app")


def telemetry_off() -> TelemetryConfig:
    return {"tracing": False, "metrics": False, "logs": False}


def fastapi_telemetry(settings: Settings) -> TelemetryConfig | None:
    """FastAPI's native OpenTelemetry: its defaults when enabled, every signal off otherwise.

    Left at its defaults, FastAPI looks up the global OpenTelemetry providers on every
    request to decide whether to record it: about 8% of a bare request's instructions,
    spent on nothing in a deployment that exports no telemetry.
    """
    return None if settings.otel_enabled else telemetry_off()


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    settings.check_production()
    configure_logging(settings.log_level, json=settings.json_logs)
    init_error_tracking(settings)  # Sentry, only with QUANTDESK_SENTRY_DSN
    ctx = AppContext.build(settings)
    security = install_security(ctx, UserCredentialStore(ctx.database))
    access_log = AccessLog(settings.log_level, json=settings.json_logs)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        log.info("starting", profile=settings.profile.value, database=ctx.database.dialect)
        try:
            async with run_lifespans(ctx, feature_lifespans()):
                if settings.gc_freeze:
                    freeze_startup_heap(settings.gc_full_every)
                yield
        finally:
            await ctx.aclose()
            log.info("stopped")
            access_log.flush()

    app = FastAPI(
        title="quantdesk",
        version=__version__,
        summary="Self-hostable investment and trading platform API",
        lifespan=lifespan,
        telemetry=fastapi_telemetry(settings),
        # Off by default in prod (QUANTDESK_DOCS_ENABLED): the schema maps every endpoint.
        # The pages are ours (platform/apidocs.py): FastAPI's load from a CDN.
        docs_url=None,
        redoc_url=None,
        openapi_url="/openapi.json" if settings.docs_open else None,
    )
    app.state.ctx = ctx
    app.state.access_log = access_log
    install_error_handlers(app)
    install_problem_responses(app)
    install_routes(app, feature_routers())
    if settings.docs_open:
        install_routes(app, [mark_public(apidocs.router)])
    install_http_hardening(app, settings, csrf_key=security.derived_key("csrf"))
    app.add_middleware(
        RequestContextMiddleware,
        metrics=ctx.metrics if settings.metrics_enabled else None,
        access_log=access_log,
        response_headers=[SecurityHeaders(hsts=settings.hsts_enabled).add],
    )
    return app
