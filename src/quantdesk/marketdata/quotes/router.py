"""``/api/v1/market/quotes``: the latest quotes, from the cache every process shares."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from quantdesk.marketdata.quotes.service import QuoteService, canonical_key
from quantdesk.marketdata.schemas import QuoteOut, QuotesOut
from quantdesk.platform.context import Context
from quantdesk.platform.exceptions import InvalidInput
from quantdesk.security.policy import RequireViewer

router = APIRouter(prefix="/api/v1/market", tags=["market data"])
MAX_QUOTE_KEYS = 200


@router.get("/quotes", summary="Latest quotes of up to 200 instruments")
async def get_quotes(
    _viewer: RequireViewer,
    ctx: Context,
    keys: Annotated[
        list[str],
        Query(
            description="Instrument keys, comma-separated and/or repeated: "
            "keys=NSE:RELIANCE,NSE:TCS",
            max_length=MAX_QUOTE_KEYS,
        ),
    ],
) -> QuotesOut:
    wanted = [k.strip() for item in keys for k in item.split(",") if k.strip()]
    if not wanted:
        raise InvalidInput("give at least one instrument key", field="keys")
    if len(wanted) > MAX_QUOTE_KEYS:
        raise InvalidInput(f"at most {MAX_QUOTE_KEYS} keys per request", field="keys")
    try:
        canonical = list(dict.fromkeys(canonical_key(k) for k in wanted))
    except ValueError as exc:
        raise InvalidInput(str(exc), field="keys") from None
    found = await QuoteService(ctx.cache, ctx.bus).get_many(canonical)
    return QuotesOut(
        quotes=[QuoteOut.of(found[k]) for k in canonical if k in found],
        missing=[k for k in canonical if k not in found],
    )
