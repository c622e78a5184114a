"""The one index of features: every router and every background lifespan, in one place.

Add a feature here with one line; ``create_app`` installs the routers in this order and runs
the lifespans (:mod:`quantdesk.platform.lifecycle`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from fastapi import APIRouter, FastAPI
from fastapi.routing import APIRoute, APIWebSocketRoute

from quantdesk.derivatives.router import router as derivatives_router
from quantdesk.marketdata.bars.router import indicators_router
from quantdesk.marketdata.bars.router import router as bars_router
from quantdesk.marketdata.calendars.router import router as calendar_router
from quantdesk.marketdata.calendars.service import official_calendars_lifespan
from quantdesk.marketdata.instruments.router import router as instruments_router
from quantdesk.marketdata.providers.demo.lifespan import demo_ticker_lifespan
from quantdesk.marketdata.providers.demo.router import router as demo_router
from quantdesk.marketdata.providers.kite.router import router as kite_router
from quantdesk.marketdata.providers.kite.service import kite_feed_lifespan
from quantdesk.marketdata.providers.router import router as providers_router
from quantdesk.marketdata.providers.setup import providers_lifespan
from quantdesk.marketdata.quotes.router import router as quotes_router
from quantdesk.marketdata.udf.router import router as udf_router
from quantdesk.ops.business_metrics import business_metrics_lifespan
from quantdesk.ops.killswitch import kill_switch_lifespan
from quantdesk.ops.router import router as ops_router
from quantdesk.platform.health import router as health_router
from quantdesk.platform.lifecycle import FeatureLifespan
from quantdesk.platform.startup import analytics_kernels_lifespan
from quantdesk.portfolios.demo_fx import demo_fx_lifespan
from quantdesk.portfolios.router import router as portfolios_router
from quantdesk.risk.router import portfolio_router as portfolio_risk_router
from quantdesk.risk.router import router as risk_router
from quantdesk.security.jwks import router as jwks_router
from quantdesk.security.policy import mark_public
from quantdesk.signals.jobs import signal_jobs_lifespan
from quantdesk.signals.router import router as signals_router
from quantdesk.strategies.router import router as strategies_router
from quantdesk.strategies.saved_router import router as saved_strategies_router
from quantdesk.stream.router import router as stream_router
from quantdesk.stream.service import stream_lifespan
from quantdesk.trading.matcher import matcher_lifespan
from quantdesk.trading.placement import placement_lifespan
from quantdesk.trading.router import charges_router
from quantdesk.trading.router import router as trading_router
from quantdesk.users.admin_router import router as admin_router
from quantdesk.users.router import routers as identity_routers
from quantdesk.web.router import router as web_router


@dataclass(frozen=True, slots=True)
class Feature:
    """One feature as the app sees it: its routers and, if it runs background work, its
    lifespan (entered in this file's order at start-up, left in reverse at shutdown)."""

    name: str
    routers: tuple[APIRouter, ...]
    lifespan: FeatureLifespan | None = None


FEATURES: tuple[Feature, ...] = (
    Feature("health", (mark_public(health_router),)),
    Feature("identity", (jwks_router, *identity_routers, admin_router)),
    Feature("derivatives", (derivatives_router,)),
    Feature("strategies", (strategies_router,)),
    Feature("instruments", (instruments_router,)),
    Feature("bars", (indicators_router, bars_router)),
    Feature("quotes", (quotes_router,)),
    Feature("calendars", (calendar_router,), official_calendars_lifespan),
    Feature("udf", (udf_router,)),
    Feature("providers", (providers_router,), providers_lifespan),
    # After the providers: the feed uses the app's kite provider, and stops before it closes.
    Feature("kite", (kite_router,), kite_feed_lifespan),
    Feature("demo", (demo_router,), demo_ticker_lifespan),
    Feature("trading", (trading_router, charges_router), matcher_lifespan),
    # After the matcher, so that it stops placing before the matcher stops.
    Feature("trading-placement", (), placement_lifespan),
    Feature("portfolios", (portfolios_router,), demo_fx_lifespan),
    Feature("risk", (risk_router, portfolio_risk_router)),
    Feature("saved-strategies", (saved_strategies_router,)),
    Feature("signals", (signals_router,), signal_jobs_lifespan),
    Feature("stream", (stream_router,), stream_lifespan),
    Feature("operations", (ops_router,), kill_switch_lifespan),
    Feature("business-metrics", (), business_metrics_lifespan),
    # Last, so that the demo market builds in its thread while the kernels load in theirs.
    Feature("analytics", (), analytics_kernels_lifespan),
    # The dashboard's page shells hold no data (each page reads the API with its session).
    Feature("dashboard", (mark_public(web_router),)),
)


def feature_routers() -> list[APIRouter]:
    return [router for feature in FEATURES for router in feature.routers]


def feature_lifespans() -> list[FeatureLifespan]:
    return [feature.lifespan for feature in FEATURES if feature.lifespan is not None]


def install_routes(app: FastAPI, routers: Iterable[APIRouter]) -> None:
    """Put every route of ``routers`` straight into the app's own route table.

    Since FastAPI 0.138 ``include_router`` keeps each router as a nested node that every
    request walks twice (match, then handle) and re-versions by scanning the route list;
    with a dozen routers that cost 11 µs per request, a fifth of a bare request.  A route
    built on an ``APIRouter`` already carries the router's prefix, tags, responses and
    dependencies, so it can be served as it is.  What this gives up is
    ``app.dependency_overrides``, which quantdesk does not use (tests run the real parts).
    """
    for router in routers:
        if router.on_startup or router.on_shutdown:
            raise TypeError("feature routers must not carry start-up hooks; use the lifespan")
        for route in router.routes:
            if not isinstance(route, APIRoute | APIWebSocketRoute):
                raise TypeError(
                    f"{route!r} in a feature router: only path operations are installed; "
                    "give a nested router's routes to the feature router itself"
                )
            app.router.routes.append(route)
