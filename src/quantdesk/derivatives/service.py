"""Derivatives analytics as use cases: option chains and futures from the instrument master
and the latest quotes, and batch pricing / implied volatility over posted columns."""

from __future__ import annotations

import asyncio
import datetime as dt
import math
from typing import Any, SupportsFloat

import numpy as np
from sqlalchemy.ext.asyncio import AsyncSession

from quantdesk.analytics.chain import ChainAnalytics, OptionChain, analyze_chain
from quantdesk.analytics.daycount import DAYS_PER_YEAR
from quantdesk.analytics.futures import (
    Buildup,
    annualised_basis,
    basis,
    calendar_spread,
    fair_value,
    oi_buildup,
    rollover_pct,
)
from quantdesk.analytics.options import IV_REASON_NAMES, greeks, implied_vol
from quantdesk.derivatives.market_inputs import (
    DEFAULT_RATES,
    is_live,
    mark,
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
from quantdesk.platform.decimals import decimal_column
from quantdesk.platform.exceptions import NotFound
from quantdesk.platform.json_columns import decimal_strings, floats_or_null, model_input, rows_of

_BUILDUPS = {int(code): code.label for code in Buildup}


def _side(
    contracts: dict[tuple[float, OptionType], Instrument],
    quotes: dict[str, Quote],
    strikes: list[float],
    option: OptionType,
) -> dict[str, np.ndarray[Any, np.dtype[np.float64]]]:
    rows = [
        quotes.get(contracts[(k, option)].key) if (k, option) in contracts else None
        for k in strikes
    ]
    return {
        "price": np.array([mark(q) for q in rows]),
        "last": np.array([number(q.last) if q else math.nan for q in rows]),
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
        "last": decimal_strings(side["last"], 2),
        "mark": decimal_strings(side["price"], 2),
        "oi": floats_or_null(side["oi"]),
        "oi_change": floats_or_null(side["oi_change"]),
        "volume": floats_or_null(side["volume"]),
        "iv": floats_or_null(iv),
        "iv_reason": [IV_REASON_NAMES[int(code)] for code in reason],
        "delta": floats_or_null(greeks.delta),
        "gamma": floats_or_null(greeks.gamma),
        "theta_per_day": floats_or_null(greeks.theta / DAYS_PER_YEAR),
        "vega_per_point": floats_or_null(greeks.vega / 100.0),
        "buildup": None if buildup is None else [_BUILDUPS[int(c)] for c in buildup],
    }


def _finite(value: SupportsFloat) -> float | None:
    """A float for JSON, or null for NaN/inf (NumPy scalars welcome)."""
    number = float(value)
    return number if math.isfinite(number) else None


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
    by_strike = {(float(c.strike or 0), c.option_type or OptionType.CALL): c for c in contracts}
    strikes = sorted({k for k, _ in by_strike})
    calls = _side(by_strike, quotes, strikes, OptionType.CALL)
    puts = _side(by_strike, quotes, strikes, OptionType.PUT)
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

    return {
        "underlying": root,
        "expiry": expiry.isoformat(),
        "spot": str(spot.last),
        "spot_key": spot.key,
        "forward": round(analytics.forward, 4),
        "t_years": t,
        "r": r,
        "q": q,
        "lot_size": str(contracts[0].lot_size),
        "atm_strike": analytics.atm_strike,
        "atm_iv": _finite(analytics.atm_iv),
        "max_pain": None if analytics.max_pain is None else analytics.max_pain.strike,
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
            "straddle": _finite(move.straddle),
            "pct": _finite(move.pct),
            "lower": _finite(move.lower),
            "upper": _finite(move.upper),
        },
        "strikes": strikes,
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
    listed = [f for f in futures if f.expiry is not None and f.key in quotes]
    listed.sort(key=lambda f: f.expiry or dt.date.max)
    spot_price = model_input(spot.last)
    price = np.array([model_input(quotes[f.key].last) for f in listed])
    t = np.array([years_to_expiry(f.exchange, f.expiry or now.date(), now) for f in listed])
    oi = np.array([number(quotes[f.key].oi) for f in listed])
    oi_change = oi - np.array([number(quotes[f.key].prev_oi) for f in listed])
    price_change = np.array([number(quotes[f.key].change) for f in listed])
    carry = annualised_basis(price, spot_price, t)
    fair = fair_value(spot_price, t, r)
    buildup = oi_buildup(price_change, oi_change)
    contracts = [
        {
            "key": f.key,
            "expiry": (f.expiry or now.date()).isoformat(),
            "days_to_expiry": round(float(t[i]) * DAYS_PER_YEAR, 4),
            "price": str(quotes[f.key].last),
            "basis": decimal_strings(basis(price[i : i + 1], spot_price), 2)[0],
            "basis_pct": _finite(100.0 * (price[i] - spot_price) / spot_price),
            "annualised_carry": _finite(carry[i]),
            "fair_value": decimal_strings(fair[i : i + 1], 2)[0],
            "oi": _finite(oi[i]),
            "oi_change": _finite(oi_change[i]),
            "price_change": _finite(price_change[i]),
            "buildup": _BUILDUPS[int(buildup[i])],
        }
        for i, f in enumerate(listed)
    ]
    near_next: dict[str, Any] = {"rollover_pct": None, "calendar_spread": None}
    if len(listed) >= 2:
        far_oi = float(np.nansum(oi[2:])) if len(listed) > 2 else 0.0
        near_next = {
            "rollover_pct": _finite(rollover_pct(oi[0], oi[1], far_oi)),
            "calendar_spread": decimal_strings(calendar_spread(price[1:2], price[0:1]), 2)[0],
        }
    return {
        "underlying": root,
        "spot": str(spot.last),
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
