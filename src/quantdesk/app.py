"""The app factory: ``create_app(settings)`` builds everything; nothing lives at module level."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from quantdesk import __version__
from quantdesk.api import feature_routers
from quantdesk.platform.context import AppContext
from quantdesk.platform.errors import install_error_handlers
from quantdesk.platform.logging import configure_logging, get_logger
from quantdesk.platform.middleware import RequestContextMiddleware
from quantdesk.settings import Settings

log = get_logger("quantdesk.app")


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    settings.check_production()
    configure_logging(settings.log_level, json=settings.json_logs)
    ctx = AppContext.build(settings)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        log.info("starting", profile=settings.profile.value, database=ctx.database.dialect)
        try:
            yield
        finally:
            await ctx.aclose()
            log.info("stopped")

    app = FastAPI(
        title="quantdesk",
        version=__version__,
        summary="Self-hostable investment and trading platform API",
        lifespan=lifespan,
    )
    app.state.ctx = ctx
    install_error_handlers(app)
    for router in feature_routers():
        app.include_router(router)
    app.add_middleware(
        RequestContextMiddleware, metrics=ctx.metrics if settings.metrics_enabled else None
    )
    return app
