"""``GET /api/v1/providers/kite/status``: is today's Kite session good, and is the ticker up.

Says whether an access token is stored and valid (``state``: valid, expired, rejected,
missing, unreadable, unconfigured), when it was obtained and when it ends, and, in the
process that runs the ticker, each connection's state.  It never shows a credential.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field

from quantdesk.marketdata.providers.kite.auth import KiteTokenStore, TokenStatus
from quantdesk.marketdata.providers.kite.service import KITE_FEED, KiteFeed
from quantdesk.platform.context import Context
from quantdesk.security.policy import RequireViewer
from quantdesk.security.services import security_services

router = APIRouter(prefix="/api/v1/providers/kite", tags=["market data: providers"])


class KiteConnectionOut(BaseModel):
    index: int
    state: str = Field(
        description="idle, connecting, connected, reconnecting, waiting_for_login, "
        "token_rejected or stopped"
    )
    instruments: int
    reconnects: int
    tick_count: int
    malformed_frames: int
    error: str | None = Field(description="The last failure, in words (never a URL)")
    seconds_since_message: float | None


class KiteTickerOut(BaseModel):
    subscribed: int
    dropped: int = Field(description="Wanted instruments beyond 3 connections x 3000")
    connections: list[KiteConnectionOut]


class KiteStatusOut(BaseModel):
    configured: bool
    valid: bool
    state: str = Field(
        description="valid, expired, rejected, missing, unreadable or unconfigured",
        examples=["valid"],
    )
    login_time: dt.datetime | None = None
    expires_at: dt.datetime | None = None
    reason: str | None = None
    ticker: KiteTickerOut | None = Field(
        default=None,
        description="This process's ticker; null where another process holds the ticker "
        "lease, or the ticker is off",
    )


@router.get("/status", summary="Kite Connect session and ticker status")
async def kite_status(ctx: Context, _viewer: RequireViewer) -> KiteStatusOut:
    settings = ctx.settings
    if settings.kite_api_key is None:
        status = TokenStatus(
            False, False, "unconfigured", reason="QUANTDESK_KITE_API_KEY is not set"
        )
        return KiteStatusOut(**_fields(status))
    store = KiteTokenStore(
        ctx.database, security_services(ctx).pii, settings.kite_api_key.get_secret_value()
    )
    feed = ctx.extensions.get(KITE_FEED)
    ticker = None
    if isinstance(feed, KiteFeed) and feed.leading:
        ticker = KiteTickerOut.model_validate(feed.ticker.status())
    return KiteStatusOut(**_fields(await store.status()), ticker=ticker)


def _fields(status: TokenStatus) -> dict[str, Any]:
    return {
        "configured": status.configured,
        "valid": status.valid,
        "state": status.state,
        "login_time": status.login_time,
        "expires_at": status.expires_at,
        "reason": status.reason,
    }
