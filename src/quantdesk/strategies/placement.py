"""A strategy template placed as one paper mleg order, and saved with its legs linked.

``POST /api/v1/strategies/orders`` names a template (``iron_condor``), the underlying, the
expiry and the strikes, as ``/analytics/strategies/analyze`` does.  The template's own
builder (``analytics.strategies.templates``) says which options it holds and in what
ratio; each is found in the instrument master by underlying, expiry, strike and type; the
legs go to the account as one mleg order (all or none, ``trading.orders``); and a saved
strategy (``strategies.saved``) is written in the same transaction, each leg following its
leg order's fills, so ``/strategies/{id}/mtm`` shows the strategy's combined P&L and net
Greeks.  A retry with the same ``client_order_id`` answers the same order and strategy.
"""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal

from sqlalchemy.ext.asyncio import AsyncSession

from quantdesk.analytics.strategies.legs import OptionLeg
from quantdesk.analytics.strategies.templates import Market
from quantdesk.marketdata.domain import Exchange, Instrument
from quantdesk.marketdata.instruments.service import InstrumentService
from quantdesk.marketdata.quotes.service import QuoteService
from quantdesk.platform.context import AppContext
from quantdesk.platform.exceptions import InvalidInput, NotFound
from quantdesk.strategies import saved
from quantdesk.strategies.repository import SavedStrategyRepository
from quantdesk.strategies.saved_schemas import (
    SavedLegIn,
    SavedStrategyIn,
    StrategyOrderIn,
    StrategyOrderOut,
)
from quantdesk.strategies.service import TEMPLATES, strike_names
from quantdesk.trading.orders import OrderService
from quantdesk.trading.schemas import LegIn, OrderIn

# The builder's expiries stand for the request's dates (calendars: near, then far).
_NEAR, _FAR = 1.0, 2.0


def template_options(body: StrategyOrderIn) -> list[tuple[str, Decimal, dt.date, int]]:
    """(call or put, strike, expiry, signed lots per combination) of each of the
    template's legs, in the builder's order."""
    wanted = strike_names(body.template)
    if set(body.strikes) != set(wanted):
        raise InvalidInput(
            f"template {body.template} takes strikes {wanted}, got {sorted(body.strikes)}",
            field="strikes",
        )
    strikes = [body.strikes[name] for name in wanted]
    calendar = body.template.endswith("_calendar")
    if calendar and (body.near_expiry is None or body.far_expiry is None):
        raise InvalidInput("calendars need near_expiry and far_expiry", field="near_expiry")
    if not calendar and body.expiry is None:
        raise InvalidInput(f"template {body.template} needs an expiry", field="expiry")
    dates = {_NEAR: body.near_expiry, _FAR: body.far_expiry} if calendar else {_NEAR: body.expiry}
    expiries = {"near_expiry": _NEAR, "far_expiry": _FAR} if calendar else {"expiry": _NEAR}
    market = Market(spot=float(strikes[0]), iv=0.2)
    try:
        legs = TEMPLATES[body.template](*(float(s) for s in strikes), market=market, **expiries)
    except ValueError as exc:  # strikes out of order, say
        raise InvalidInput(f"template {body.template}: {exc}", field="strikes") from None
    by_value = {float(s): s for s in strikes}
    options: list[tuple[str, Decimal, dt.date, int]] = []
    for leg in legs:
        if not isinstance(leg, OptionLeg):
            raise InvalidInput(
                f"{body.template} holds the underlying: place it as an mleg order with legs",
                field="template",
            )
        expiry = dates[leg.expiry]
        assert expiry is not None  # noqa: S101 - checked above
        options.append((leg.kind, by_value[leg.strike], expiry, int(leg.quantity)))
    return options


async def _contracts(
    db: AsyncSession, body: StrategyOrderIn, options: list[tuple[str, Decimal, dt.date, int]]
) -> list[Instrument]:
    exchange = Exchange(body.exchange)
    chains: dict[dt.date, list[Instrument]] = {}
    found = []
    for i, (kind, strike, expiry, _) in enumerate(options):
        if expiry not in chains:
            chains[expiry] = await InstrumentService(db).chain(body.underlying, expiry, exchange)
        match = next(
            (o for o in chains[expiry] if o.option_type == kind and o.strike == strike), None
        )
        if match is None:
            raise NotFound(
                f"leg {i}: no {body.underlying.upper()} {expiry.isoformat()} {strike} {kind} "
                f"on {exchange.value}",
                field="strikes",
            )
        found.append(match)
    if len({c.lot_size for c in found}) > 1:
        raise InvalidInput("the legs' contracts have different lot sizes", field="strikes")
    return found


async def place_template(
    ctx: AppContext, db: AsyncSession, owner_id: uuid.UUID, body: StrategyOrderIn
) -> StrategyOrderOut:
    options = template_options(body)
    contracts = await _contracts(db, body, options)
    lot = contracts[0].lot_size
    order = OrderIn(
        order_class="mleg",
        quantity=body.lots * lot,
        type=body.type,
        limit_price=body.limit_price,
        time_in_force=body.time_in_force,
        product=body.product,
        legs=[
            LegIn(instrument=c.key, side="buy" if ratio > 0 else "sell", ratio=abs(ratio))
            for c, (_, _, _, ratio) in zip(contracts, options, strict=True)
        ],
        client_order_id=body.client_order_id,
    )
    placed = await OrderService(ctx, db).place(owner_id, body.account_id, order)
    leg_orders = placed.legs or []
    await db.flush()
    existing = await SavedStrategyRepository(db).strategy_linked_to(owner_id, leg_orders[0].id)
    if existing is not None:  # the same client_order_id again: its strategy
        return StrategyOrderOut(order=placed, strategy=await saved.get(db, owner_id, existing.id))
    quotes = await QuoteService(ctx.cache, ctx.bus).get_many([c.key for c in contracts])
    expiry = body.expiry or body.near_expiry
    name = body.name or f"{body.template} {body.underlying.upper()} {expiry}"
    strategy = await saved.create(
        db,
        owner_id,
        SavedStrategyIn(
            name=name,
            tags=body.tags,
            legs=[
                SavedLegIn(
                    instrument=leg.instrument,
                    quantity=ratio * body.lots,
                    # Replaced by the fills' average as the leg order fills.
                    entry_price=quotes[c.key].last,
                    order_id=leg.id,
                )
                for c, leg, (_, _, _, ratio) in zip(contracts, leg_orders, options, strict=True)
            ],
        ),
    )
    return StrategyOrderOut(order=placed, strategy=strategy)
