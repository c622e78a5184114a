"""Every feature router, mounted in one place.

Add a feature's router here with one line; ``create_app`` includes them all in this order.
"""

from __future__ import annotations

from fastapi import APIRouter

from quantdesk.analytics_api.chain_router import router as chain_router
from quantdesk.analytics_api.indicators_router import router as indicators_router
from quantdesk.analytics_api.options_router import router as options_router
from quantdesk.analytics_api.strategies_router import router as strategies_router
from quantdesk.marketdata.calendar_router import router as calendar_router
from quantdesk.marketdata.providers_router import router as providers_router
from quantdesk.marketdata.router import instruments_router, market_router
from quantdesk.marketdata.udf_router import router as udf_router
from quantdesk.platform.health import router as health_router
from quantdesk.security.jwks import router as jwks_router
from quantdesk.security.policy import mark_public
from quantdesk.users.admin_router import router as admin_router
from quantdesk.users.router import routers as identity_routers


def feature_routers() -> list[APIRouter]:
    return [
        mark_public(health_router),
        jwks_router,
        *identity_routers,
        admin_router,
        options_router,
        strategies_router,
        indicators_router,
        chain_router,
        instruments_router,
        market_router,
        calendar_router,
        udf_router,
        providers_router,
    ]
