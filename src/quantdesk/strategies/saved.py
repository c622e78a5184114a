"""Saved strategies as use cases: CRUD per owner, mark-to-market over stored bars (per leg
and total, any timeframe), net Greeks over time, the payoff now; legs linked to paper
orders follow their fills.

The P&L and Greeks are computed by the pure :mod:`.marking`; the payoff by the same
analysis as ``/analytics/strategies/analyze`` (:mod:`.service`).
"""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal

from sqlalchemy.ext.asyncio import AsyncSession

from quantdesk.marketdata.bars.repository import BarStore
from quantdesk.marketdata.domain import Exchange, Timeframe, make_key, parse_key
from quantdesk.marketdata.instruments.service import InstrumentService
from quantdesk.marketdata.instruments.underlyings import spot_candidates
from quantdesk.marketdata.models import InstrumentRow
from quantdesk.platform.db import utcnow
from quantdesk.platform.exceptions import Conflict, InvalidInput, NotFound
from quantdesk.strategies.marking import MarkedLeg, mark
from quantdesk.strategies.models import SavedStrategyLegRow, SavedStrategyRow
from quantdesk.strategies.repository import SavedStrategyRepository
from quantdesk.strategies.saved_schemas import (
    LegPnL,
    MarkToMarketOut,
    SavedLegOut,
    SavedStrategyIn,
    SavedStrategyOut,
)
from quantdesk.strategies.schemas import InstrumentLegIn, StrategyRequest, UnderlyingLegIn
from quantdesk.trading.engine.positions import tidy
from quantdesk.trading.models import OrderRow

ZERO = Decimal(0)


def _key(key: str, field: str) -> str:
    try:
        return make_key(*parse_key(key))
    except ValueError as exc:
        raise InvalidInput(f"{field}: {exc}", field=field) from None


async def _validate(
    db: AsyncSession, owner_id: uuid.UUID, body: SavedStrategyIn
) -> list[SavedStrategyLegRow]:
    keys = [_key(leg.instrument, f"legs[{i}].instrument") for i, leg in enumerate(body.legs)]
    found = await InstrumentService(db).get_rows(sorted(set(keys)))
    for i, key in enumerate(keys):
        if key not in found:
            raise NotFound(f"legs[{i}].instrument: no instrument {key}", field=f"legs[{i}]")
    linked = [leg.order_id for leg in body.legs if leg.order_id is not None]
    orders = await SavedStrategyRepository(db).orders(owner_id, linked)
    for i, leg in enumerate(body.legs):
        if leg.order_id is not None and leg.order_id not in orders:
            raise NotFound(f"legs[{i}].order_id: no such order", field=f"legs[{i}].order_id")
        if leg.order_id is not None and orders[leg.order_id].instrument != keys[i]:
            raise InvalidInput(f"legs[{i}].order_id is an order on another instrument")
    return [
        SavedStrategyLegRow(position=i, instrument=keys[i], quantity=leg.quantity,
                            entry_price=leg.entry_price, iv=leg.iv, order_id=leg.order_id)
        for i, leg in enumerate(body.legs)
    ]  # fmt: skip


async def _out(
    db: AsyncSession, owner_id: uuid.UUID, rows: list[SavedStrategyRow]
) -> list[SavedStrategyOut]:
    repo = SavedStrategyRepository(db)
    legs = await repo.legs([row.id for row in rows])
    linked = [leg.order_id for ls in legs.values() for leg in ls if leg.order_id is not None]
    orders = await repo.orders(owner_id, linked)
    out = []
    for row in rows:
        shown = []
        for leg in legs[row.id]:
            order = orders.get(leg.order_id) if leg.order_id is not None else None
            shown.append(SavedLegOut.of(leg, order.filled_quantity if order else None))
        out.append(SavedStrategyOut.of(row, shown))
    return out


async def create(db: AsyncSession, owner_id: uuid.UUID, body: SavedStrategyIn) -> SavedStrategyOut:
    legs = await _validate(db, owner_id, body)
    row = SavedStrategyRow(owner_id=owner_id, name=body.name, tags=sorted(set(body.tags)),
                           notes=body.notes)  # fmt: skip
    db.add(row)
    await db.flush()
    for leg in legs:
        leg.strategy_id = row.id
    db.add_all(legs)
    await db.flush()
    return (await _out(db, owner_id, [row]))[0]


async def owned(db: AsyncSession, owner_id: uuid.UUID, strategy_id: uuid.UUID,
                for_update: bool = False) -> SavedStrategyRow:  # fmt: skip
    row = await SavedStrategyRepository(db).get_for_owner(owner_id, strategy_id,
                                                          for_update=for_update)  # fmt: skip
    if row is None:
        raise NotFound("no such strategy")
    return row


async def get(db: AsyncSession, owner_id: uuid.UUID, strategy_id: uuid.UUID) -> SavedStrategyOut:
    return (await _out(db, owner_id, [await owned(db, owner_id, strategy_id)]))[0]


async def page(
    db: AsyncSession, owner_id: uuid.UUID, *, limit: int, cursor: str | None, tag: str | None
) -> tuple[list[SavedStrategyOut], str | None]:
    rows, next_cursor = await SavedStrategyRepository(db).page(
        owner_id, limit=limit, cursor=cursor, tag=tag
    )
    return await _out(db, owner_id, rows), next_cursor


async def update(
    db: AsyncSession, owner_id: uuid.UUID, strategy_id: uuid.UUID, body: SavedStrategyIn
) -> SavedStrategyOut:
    row = await owned(db, owner_id, strategy_id, for_update=True)
    if body.version is not None and body.version != row.version:
        raise Conflict(f"the strategy is at version {row.version}, not {body.version}",
                       version=row.version)  # fmt: skip
    legs = await _validate(db, owner_id, body)
    for leg in legs:
        leg.strategy_id = row.id
    await SavedStrategyRepository(db).replace_legs(row.id, legs)
    row.name, row.tags, row.notes = body.name, sorted(set(body.tags)), body.notes
    row.version += 1
    row.updated_at = utcnow()
    await db.flush()
    return (await _out(db, owner_id, [row]))[0]


async def delete(db: AsyncSession, owner_id: uuid.UUID, strategy_id: uuid.UUID) -> None:
    row = await owned(db, owner_id, strategy_id, for_update=True)
    await db.delete(row)
    await db.flush()


# --- valuation -----------------------------------------------------------------------------
def effective(leg: SavedStrategyLegRow, inst: InstrumentRow, order: OrderRow | None,
              ) -> tuple[Decimal, Decimal]:  # fmt: skip
    """(signed lots, entry price): the typed ones, or the linked order's fills."""
    if leg.order_id is None:
        return leg.quantity, leg.entry_price
    if order is None or order.filled_quantity == 0:
        return ZERO, leg.entry_price
    sign = 1 if order.side == "buy" else -1
    return sign * order.filled_quantity / inst.lot_size, order.filled_value / order.filled_quantity


async def _legs_with_instruments(
    db: AsyncSession, owner_id: uuid.UUID, row: SavedStrategyRow
) -> list[tuple[SavedStrategyLegRow, InstrumentRow, Decimal, Decimal]]:
    repo = SavedStrategyRepository(db)
    legs = (await repo.legs([row.id]))[row.id]
    instruments = await InstrumentService(db).get_rows(sorted({leg.instrument for leg in legs}))
    orders = await repo.orders(owner_id, [leg.order_id for leg in legs if leg.order_id])
    out = []
    for leg in legs:
        inst = instruments.get(leg.instrument)
        if inst is None:
            raise NotFound(f"instrument {leg.instrument} is no longer in the master")
        lots, entry = effective(leg, inst, orders.get(leg.order_id) if leg.order_id else None)
        out.append((leg, inst, lots, entry))
    return out


def underlying_keys(rows: list[InstrumentRow]) -> list[str]:
    """Candidate keys of the legs' underlying: a cash leg itself, else the derivatives'."""
    for inst in rows:
        if inst.type not in ("option", "future"):
            return [make_key(inst.exchange, inst.symbol)]
    for inst in rows:
        if inst.underlying:
            return spot_candidates(inst.underlying, Exchange(inst.exchange))
    return []


async def mark_to_market(
    db: AsyncSession, owner_id: uuid.UUID, strategy_id: uuid.UUID, timeframe: Timeframe,
    start: dt.datetime | None, end: dt.datetime | None, limit: int, r: float,
) -> tuple[MarkToMarketOut, list[MarkedLeg], tuple[list[int], list[Decimal]] | None]:  # fmt: skip
    """The inputs of :func:`marking.mark`, read here; the caller runs it off the loop via
    :func:`marked`."""
    row = await owned(db, owner_id, strategy_id)
    legs = await _legs_with_instruments(db, owner_id, row)
    store = BarStore(db)
    marked = []
    for leg, inst, lots, entry in legs:
        series = await store.series(inst, timeframe, start=start, end=end, limit=limit)
        marked.append(MarkedLeg(
            instrument=leg.instrument, kind=inst.type, lots=lots,
            units_per_lot=inst.lot_size * inst.multiplier, entry=entry,
            ts=series.ts.tolist(), close=[Decimal(c) for c in series.close],
            option_type=inst.option_type, strike=inst.strike, expiry=inst.expiry, iv=leg.iv,
        ))  # fmt: skip
    underlying = None
    candidates = underlying_keys([inst for _, inst, _, _ in legs])
    spots = await InstrumentService(db).get_rows(candidates) if candidates else {}
    for key in candidates:
        if key in spots:
            series = await store.series(spots[key], timeframe, start=start, end=end, limit=limit)
            if len(series):
                underlying = (series.ts.tolist(), [Decimal(c) for c in series.close])
            break
    shell = MarkToMarketOut(strategy_id=row.id, timeframe=timeframe.value, t=[], legs=[],
                            total=[], greeks=None)  # fmt: skip
    return shell, marked, underlying


def marked(
    shell: MarkToMarketOut, legs: list[MarkedLeg],
    underlying: tuple[list[int], list[Decimal]] | None, r: float,
) -> MarkToMarketOut:  # fmt: skip
    result = mark(legs, underlying, r)
    return shell.model_copy(update={
        "t": result.t, "total": result.total, "greeks": result.greeks,
        "legs": [LegPnL(instrument=leg.instrument, pnl=pnl)
                 for leg, pnl in zip(legs, result.legs, strict=True)],
    })  # fmt: skip


async def payoff_request(
    db: AsyncSession, owner_id: uuid.UUID, strategy_id: uuid.UUID, spot: Decimal | None
) -> StrategyRequest:
    """The saved strategy as an analysis request at today's spot (the underlying's latest
    close unless ``spot`` is given)."""
    row = await owned(db, owner_id, strategy_id)
    legs = await _legs_with_instruments(db, owner_id, row)
    request_legs: list[InstrumentLegIn | UnderlyingLegIn] = []
    for leg, inst, lots, entry in legs:
        if lots == 0:
            continue
        if inst.type in ("option", "future"):
            request_legs.append(InstrumentLegIn(instrument=leg.instrument, quantity=lots,
                                                entry_price=entry, iv=leg.iv))  # fmt: skip
        else:
            units = inst.lot_size * inst.multiplier
            request_legs.append(UnderlyingLegIn(type="underlying", quantity=lots,
                                                entry_price=entry, lot_size=units))  # fmt: skip
    if not request_legs:
        raise InvalidInput("no leg holds a position yet (linked orders have not filled)")
    if spot is None:
        candidates = underlying_keys([inst for _, inst, _, _ in legs])
        spots = await InstrumentService(db).get_rows(candidates) if candidates else {}
        for key in candidates:
            if key in spots:
                latest = await BarStore(db).series(spots[key], Timeframe.D1, limit=1)
                if len(latest):
                    spot = tidy(Decimal(latest.close[-1]))
                break
    if spot is None:
        raise InvalidInput("no bars of the underlying to take the spot from; give `spot`")
    return StrategyRequest(spot=spot, legs=request_legs)
