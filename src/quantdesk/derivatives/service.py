"""Derivatives analytics as use cases: option chains and futures from the instrument master
and the latest quotes, and batch pricing / implied volatility over posted columns."""

from __future__ import annotations

import asyncio
import datetime as dt
import math
from decimal import Decimal
from typing import Any, SupportsFloat

import numpy as np
from sqlalchemy.ext.asyncio import AsyncSession

from quantdesk.analytics.chain import ChainAnalytics, OptionChain, analyze_chain
from quantdesk.analytics.daycount import DAYS_PER_YEAR
from quantdesk.analytics.futures import (
    Buildup,
    annualised_basis,
    fair_value,
    oi_buildup,
    rollover_pct,
)
from quantdesk.analytics.options import IV_REASON_NAMES, greeks, implied_vol
from quantdesk.derivatives.market_inputs import (
    DEFAULT_RATES,
    is_live,
    mark_price,
    number,
    spot_quote,
    upcoming_expiries,
    years_to_expiry,
)
from quantdesk.derivatives.schemas import (
    MAX_BATCH_ROWS,
    GreeksRequest,
    ImpliedVolRequest,
)
from quantdesk.marketdata.domain import Exchange, Instrument, InstrumentType, OptionType, Quote
from quantdesk.marketdata.instruments.service import InstrumentFilter, InstrumentService
from quantdesk.marketdata.instruments.underlyings import currency_of
from quantdesk.marketdata.quotes.service import QuoteService
from quantdesk.platform.decimals import at_places, decimal_column, decimal_from_float, places_of
from quantdesk.platform.exceptions import NotFound
from quantdesk.platform.json_columns import floats_or_null, model_input, rows_of

_BUILDUPS = {int(code): code.label for code in Buildup}


def _side(
    contracts: dict[tuple[float, OptionType], Instrument],
    quotes: dict[str, Quote],
    strikes: list[float],
    option: OptionType,
    places: int,
) -> dict[str, Any]:
    """One side of the chain: exact prices for the wire, float columns for the analytics."""
    rows = [
        quotes.get(contracts[(k, option)].key) if (k, option) in contracts else None
        for k in strikes
    ]
    marks = [mark_price(q, places) for q in rows]
    return {
        "last_out": [None if q is None else at_places(q.last, places) for q in rows],
        "mark_out": marks,
        # The analytics value each option at the mark it answers with, so a client that
        # recomputes an IV from the payload gets the payload's IV.
        "price": np.array([math.nan if m is None else model_input(m) for m in marks]),
        "oi_out": [None if q is None else q.oi for q in rows],
        "oi_change_out": [None if q is None else oi_change(q) for q in rows],
        "volume_out": [None if q is None else q.volume for q in rows],
        "oi": np.array([number(q.oi) if q else math.nan for q in rows]),
        "oi_change": np.array([number(q.oi) - number(q.prev_oi) if q else math.nan for q in rows]),
        "volume": np.array([number(q.volume) if q else math.nan for q in rows]),
        "price_change": np.array([number(q.change) if q else math.nan for q in rows]),
    }


def _side_out(
    analytics: ChainAnalytics, side: dict[str, Any], option: OptionType, keys: list[str | None]
) -> dict[str, Any]:
    call = option is OptionType.CALL
    greeks = analytics.call_greeks if call else analytics.put_greeks
    iv = analytics.call_iv if call else analytics.put_iv
    reason = analytics.call_iv_reason if call else analytics.put_iv_reason
    buildup = analytics.call_buildup if call else analytics.put_buildup
    return {
        "key": keys,
        "last": side["last_out"],
        "mark": side["mark_out"],
        "oi": side["oi_out"],
        "oi_change": side["oi_change_out"],
        "volume": side["volume_out"],
        "iv": floats_or_null(iv),
        "iv_reason": [IV_REASON_NAMES[int(code)] for code in reason],
        "delta": floats_or_null(greeks.delta),
        "gamma": floats_or_null(greeks.gamma),
        "theta_per_day": floats_or_null(greeks.theta / DAYS_PER_YEAR),
        "vega_per_point": floats_or_null(greeks.vega / 100.0),
        "buildup": None if buildup is None else [_BUILDUPS[int(c)] for c in buildup],
    }


def oi_change(quote: Quote) -> Decimal | None:
    """Open interest minus the previous session's, exactly; None without either (a
    quantity, so a decimal string on the wire, as the quote's own ``oi``)."""
    if quote.oi is None or quote.prev_oi is None:
        return None
    return quote.oi - quote.prev_oi


def _finite(value: SupportsFloat) -> float | None:
    """A float for JSON, or null for NaN/inf (NumPy scalars welcome)."""
    number = float(value)
    return number if math.isfinite(number) else None


def _price(value: SupportsFloat, places: int) -> Decimal | None:
    """An analytics level (forward, straddle, fair value) as a price at ``places``."""
    return decimal_from_float(float(value), places)


def chain_payload(
    root: str,
    expiry: dt.date,
    contracts: list[Instrument],
    quotes: dict[str, Quote],
    spot: Quote,
    t: float,
    r: float,
    q: float,
) -> dict[str, Any]:
    """The analysed chain as the fast path sends it (see :class:`.schemas.ChainOut`).

    Prices, strikes and levels are Decimals at the tick's precision (orjson writes them with
    ``decimal_text``); listed prices and strikes come from the quotes and the master exactly,
    never through a float, and so are OI, its change and volume (quantities).  Greeks, IVs
    and ratios are floats.
    """
    places = max(places_of(c.tick_size) for c in contracts)
    by_strike = {(float(c.strike or 0), c.option_type or OptionType.CALL): c for c in contracts}
    listed_strike = {float(c.strike or 0): c.strike or Decimal(0) for c in contracts}
    strikes = sorted({k for k, _ in by_strike})
    calls = _side(by_strike, quotes, strikes, OptionType.CALL, places)
    puts = _side(by_strike, quotes, strikes, OptionType.PUT, places)
    multiplier = float(contracts[0].lot_size * contracts[0].multiplier)
    analytics = analyze_chain(
        OptionChain(
            strikes=strikes,
            spot=model_input(spot.last),
            t=t,
            r=r,
            q=q,
            multiplier=multiplier,
            call_oi=calls["oi"],
            put_oi=puts["oi"],
            call_oi_change=calls["oi_change"],
            put_oi_change=puts["oi_change"],
            call_volume=calls["volume"],
            put_volume=puts["volume"],
            call_price=calls["price"],
            put_price=puts["price"],
            call_price_change=calls["price_change"],
            put_price_change=puts["price_change"],
        )
    )
    skew = analytics.skew_25d
    move = analytics.expected_move

    def keys(option: OptionType) -> list[str | None]:
        return [by_strike[(k, option)].key if (k, option) in by_strike else None for k in strikes]

    def strike_of(level: float) -> Decimal | None:
        # ATM and max pain are listed strikes: answer the master's exact strike.
        listed = listed_strike.get(float(level))
        return _price(level, places) if listed is None else at_places(listed, places)

    return {
        "underlying": root,
        "expiry": expiry.isoformat(),
        "spot": at_places(spot.last, places),
        "spot_key": spot.key,
        "forward": _price(analytics.forward, places),
        "t_years": t,
        "r": r,
        "q": q,
        "lot_size": contracts[0].lot_size,
        "atm_strike": strike_of(analytics.atm_strike),
        "atm_iv": _finite(analytics.atm_iv),
        "max_pain": None if analytics.max_pain is None else strike_of(analytics.max_pain.strike),
        "pcr_oi": _finite(analytics.pcr_oi),
        "pcr_volume": _finite(analytics.pcr_volume),
        "skew_25d": {
            "call_iv": _finite(skew.call_iv),
            "put_iv": _finite(skew.put_iv),
            "risk_reversal": _finite(skew.risk_reversal),
            "butterfly": _finite(skew.butterfly),
        },
        "gex_total": None if analytics.gex is None else _finite(analytics.gex.total),
        "expected_move": None
        if move is None
        else {
            "straddle": _price(move.straddle, places),
            "pct": _finite(move.pct),
            "lower": _price(move.lower, places),
            "upper": _price(move.upper, places),
        },
        "strikes": [at_places(listed_strike[k], places) for k in strikes],
        "smile": floats_or_null(analytics.smile),
        "gex": None if analytics.gex is None else floats_or_null(analytics.gex.per_strike),
        "calls": _side_out(analytics, calls, OptionType.CALL, keys(OptionType.CALL)),
        "puts": _side_out(analytics, puts, OptionType.PUT, keys(OptionType.PUT)),
    }


async def live_chain(
    db: AsyncSession,
    root: str,
    expiry: dt.date | None,
    exchange: Exchange | None,
    now: dt.datetime,
) -> tuple[dt.date, list[Instrument]]:
    """The requested expiry's options, or the nearest expiry that has not settled yet."""
    service = InstrumentService(db)
    candidates = [expiry] if expiry else await upcoming_expiries(db, root, now, exchange)
    for candidate in candidates:
        contracts = await service.chain(root, candidate, exchange)
        if contracts and (expiry or is_live(contracts[0].exchange, candidate, now)):
            return candidate, contracts
    if expiry:
        # Say which expiries there are, so a client can correct the request in one step.
        listed = await service.expiries(root, since=now.date(), exchange=exchange)
        valid = [e.isoformat() for e in listed]
        raise NotFound(
            f"no options on {root} expiring {expiry}; listed expiries: "
            f"{', '.join(valid) or 'none'}",
            valid_expiries=valid,
        )
    raise NotFound(f"no live option expiries on {root}")


def futures_payload(
    root: str,
    futures: list[Instrument],
    quotes: dict[str, Quote],
    spot: Quote,
    now: dt.datetime,
    r: float,
) -> dict[str, Any]:
    """Every quoted future on ``root`` (see :class:`.schemas.FuturesOut`).

    Prices, basis, price change and the calendar spread are exact Decimal differences of the
    quotes at each contract's tick precision; fair value comes from the carry model (float)
    at the same precision.  Carry, basis % and rollover are floats.
    """
    listed = [f for f in futures if f.expiry is not None and f.key in quotes]
    listed.sort(key=lambda f: f.expiry or dt.date.max)
    spot_price = model_input(spot.last)
    price = np.array([model_input(quotes[f.key].last) for f in listed])
    t = np.array([years_to_expiry(f.exchange, f.expiry or now.date(), now) for f in listed])
    oi = np.array([number(quotes[f.key].oi) for f in listed])
    oi_moves = oi - np.array([number(quotes[f.key].prev_oi) for f in listed])
    price_change = np.array([number(quotes[f.key].change) for f in listed])
    carry = annualised_basis(price, spot_price, t)
    fair = fair_value(spot_price, t, r)
    buildup = oi_buildup(price_change, oi_moves)
    places = [places_of(f.tick_size) for f in listed]

    def change_of(quote: Quote, at: int) -> Decimal | None:
        return None if quote.change is None else at_places(quote.change, at)

    contracts = [
        {
            "key": f.key,
            "expiry": (f.expiry or now.date()).isoformat(),
            "days_to_expiry": round(float(t[i]) * DAYS_PER_YEAR, 4),
            "price": at_places(quotes[f.key].last, places[i]),
            "basis": at_places(quotes[f.key].last - spot.last, places[i]),
            "basis_pct": _finite(100.0 * (price[i] - spot_price) / spot_price),
            "annualised_carry": _finite(carry[i]),
            "fair_value": _price(fair[i], places[i]),
            "oi": quotes[f.key].oi,
            "oi_change": oi_change(quotes[f.key]),
            "price_change": change_of(quotes[f.key], places[i]),
            "buildup": _BUILDUPS[int(buildup[i])],
        }
        for i, f in enumerate(listed)
    ]
    near_next: dict[str, Any] = {"rollover_pct": None, "calendar_spread": None}
    if len(listed) >= 2:
        far_oi = float(np.nansum(oi[2:])) if len(listed) > 2 else 0.0
        spread = quotes[listed[1].key].last - quotes[listed[0].key].last
        near_next = {
            "rollover_pct": _finite(rollover_pct(oi[0], oi[1], far_oi)),
            "calendar_spread": at_places(spread, max(places[0], places[1])),
        }
    return {
        "underlying": root,
        "spot": at_places(spot.last, max(places, default=2)),
        "spot_key": spot.key,
        "r": r,
        "contracts": contracts,
        **near_next,
    }


async def chain_analytics(
    db: AsyncSession,
    quotes_service: QuoteService,
    root: str,
    *,
    expiry: dt.date | None,
    exchange: Exchange | None,
    r: float | None,
    q: float,
) -> dict[str, Any]:
    """The chain of ``root`` at ``expiry`` (default: the nearest live one), analysed."""
    now = dt.datetime.now(dt.UTC)
    expiry, contracts = await live_chain(db, root, expiry, exchange, now)
    derivatives_exchange = contracts[0].exchange
    spot = await spot_quote(db, quotes_service, root, derivatives_exchange)
    quotes = await quotes_service.get_many([c.key for c in contracts])
    t = years_to_expiry(derivatives_exchange, expiry, now)
    rate = DEFAULT_RATES[currency_of(derivatives_exchange)] if r is None else r
    return await asyncio.to_thread(chain_payload, root, expiry, contracts, quotes, spot, t, rate, q)


async def futures_analytics(
    db: AsyncSession, quotes_service: QuoteService, root: str, *, r: float | None
) -> dict[str, Any]:
    """Every live future on ``root``: basis, carry, fair value, OI buildup, rollover."""
    now = dt.datetime.now(dt.UTC)
    page = await InstrumentService(db).search(
        InstrumentFilter(type=InstrumentType.FUTURE, underlying=root), limit=50
    )
    futures = [f for f in page.items if f.expiry is not None and is_live(f.exchange, f.expiry, now)]
    if not futures:
        raise NotFound(f"no listed futures on {root}")
    spot = await spot_quote(db, quotes_service, root, futures[0].exchange)
    quotes = await quotes_service.get_many([f.key for f in futures])
    rate = DEFAULT_RATES[currency_of(futures[0].exchange)] if r is None else r
    return futures_payload(root, futures, quotes, spot, now, rate)


# --- batch pricing over posted columns -------------------------------------------------
def _columns(request: GreeksRequest | ImpliedVolRequest, *names: str) -> dict[str, Any]:
    columns = {name: getattr(request, name) for name in names}
    rows_of(columns, MAX_BATCH_ROWS)
    return columns


def greeks_payload(request: GreeksRequest) -> dict[str, Any]:
    cols = _columns(request, "kind", "spot", "strike", "t", "r", "sigma", "q")
    result = greeks(**cols, model=request.model)
    return {
        "rows": int(np.size(result.price)),
        # Model prices to 6 decimals (the batch has no instrument); zero has no sign.
        "price": decimal_column(result.price, 6),
        "delta": floats_or_null(result.delta),
        "gamma": floats_or_null(result.gamma),
        "vega": floats_or_null(result.vega),
        "vega_per_point": floats_or_null(result.vega / 100.0),
        "theta": floats_or_null(result.theta),
        "theta_per_day": floats_or_null(result.theta / DAYS_PER_YEAR),
        "rho": floats_or_null(result.rho),
        "vanna": floats_or_null(result.vanna),
        "volga": floats_or_null(result.volga),
        "charm": floats_or_null(result.charm),
    }


def implied_vol_payload(request: ImpliedVolRequest) -> dict[str, Any]:
    cols = _columns(request, "price", "kind", "spot", "strike", "t", "r", "q")
    result = implied_vol(**cols, model=request.model)
    reasons = np.atleast_1d(np.asarray(result.reason, dtype=np.int64))
    return {
        "rows": int(np.size(result.vol)),
        "iv": floats_or_null(result.vol),
        "reason": [IV_REASON_NAMES[int(code)] for code in reasons],
    }
