"""Technical indicators over stored bars (``GET /api/v1/analytics/indicators/{name}``).

The indicator's own parameters (TA-Lib's names, e.g. ``timeperiod``, ``nbdevup``) come as
extra query parameters and are checked against the function's signature.  Bars before
``from`` are fetched as warm-up so the first requested bar already has a settled value.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import inspect
import typing
from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
from sqlalchemy.ext.asyncio import AsyncSession

from quantdesk.analytics import indicators as ind
from quantdesk.marketdata.bars.repository import BarSeries, BarStore
from quantdesk.marketdata.calendars import get_calendar
from quantdesk.marketdata.domain import Timeframe, parse_key
from quantdesk.platform.exceptions import InvalidInput, NotFound
from quantdesk.platform.json_columns import floats_or_null

INPUTS = ("open", "high", "low", "close", "volume", "session_ids")
OUTPUT_NAMES: dict[str, tuple[str, ...]] = {
    "macd": ("macd", "signal", "histogram"),
    "bbands": ("upper", "middle", "lower"),
    "stoch": ("slowk", "slowd"),
    "stochrsi": ("fastk", "fastd"),
    "supertrend": ("supertrend", "direction"),
    "keltner": ("upper", "middle", "lower"),
    "donchian": ("upper", "middle", "lower"),
}
FIXED_QUERY = frozenset({"instrument", "timeframe", "from", "to", "limit", "warmup"})
INDICATORS: dict[str, Callable[..., Any]] = {
    name: getattr(ind, name)
    for name in ind.__all__
    if inspect.isfunction(getattr(ind, name)) and name != "ma"
}


def indicator_parameters(name: str) -> dict[str, inspect.Parameter]:
    signature = inspect.signature(INDICATORS[name])
    return {p.name: p for p in signature.parameters.values() if p.name not in INPUTS}


def _outputs(name: str) -> tuple[str, ...]:
    if name in OUTPUT_NAMES:
        return OUTPUT_NAMES[name]
    returned = typing.get_type_hints(INDICATORS[name]).get("return")
    if dataclasses.is_dataclass(returned):
        return tuple(f.name for f in dataclasses.fields(returned))
    return (name,)


def catalogue() -> list[dict[str, Any]]:
    """Every indicator with the bar fields it reads, its parameters' defaults and its
    output columns: what a client needs to offer the indicator without hard-coding it."""
    listing = []
    for name in sorted(INDICATORS):
        signature = inspect.signature(INDICATORS[name])
        listing.append(
            {
                "name": name,
                "inputs": [p for p in signature.parameters if p in INPUTS and p != "session_ids"],
                "parameters": [
                    {"name": p.name, "default": p.default}
                    for p in indicator_parameters(name).values()
                ],
                "outputs": list(_outputs(name)),
            }
        )
    return listing


def _coerce(name: str, parameter: inspect.Parameter, raw: str) -> Any:
    default = parameter.default
    try:
        if isinstance(default, bool):
            raise TypeError
        if isinstance(default, int):
            return int(raw)
        if isinstance(default, float):
            return float(raw)
    except (TypeError, ValueError):
        raise InvalidInput(f"{name} must be a number, got {raw!r}", field=name) from None
    return raw


def parse_params(name: str, query: dict[str, str]) -> dict[str, Any]:
    accepted = indicator_parameters(name)
    extra = {k: v for k, v in query.items() if k not in FIXED_QUERY}
    unknown = sorted(set(extra) - set(accepted))
    if unknown:
        raise InvalidInput(
            f"{name} does not take {', '.join(unknown)}; its parameters: "
            f"{', '.join(accepted) or 'none'}"
        )
    return {key: _coerce(key, accepted[key], value) for key, value in extra.items()}


def session_ids(ts: npt.NDArray[np.int64], exchange: str) -> npt.NDArray[np.int64]:
    """The exchange-local trading date of each bar, as an integer label (VWAP anchoring)."""
    zone = get_calendar("US_OPTIONS" if exchange == "OPRA" else exchange).timezone
    local = pd.to_datetime(ts, unit="s", utc=True).tz_convert(zone)
    return np.asarray(local.year * 10_000 + local.month * 100 + local.day, dtype=np.int64)


def _arrays(series: BarSeries, exchange: str) -> dict[str, Any]:
    return {
        "open": np.asarray(series.open, dtype=np.float64),
        "high": np.asarray(series.high, dtype=np.float64),
        "low": np.asarray(series.low, dtype=np.float64),
        "close": np.asarray(series.close, dtype=np.float64),
        "volume": np.asarray(series.volume, dtype=np.float64),
        "session_ids": session_ids(series.ts, exchange),
    }


def compute(name: str, arrays: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
    function = INDICATORS[name]
    inputs = [p for p in inspect.signature(function).parameters if p in INPUTS]
    try:
        result = function(*(arrays[p] for p in inputs), **params)
    except ValueError as exc:
        raise InvalidInput(str(exc)) from None
    if dataclasses.is_dataclass(result) and not isinstance(result, type):
        return {f.name: getattr(result, f.name) for f in dataclasses.fields(result)}
    if isinstance(result, tuple):
        return dict(zip(OUTPUT_NAMES.get(name, ()), result, strict=True))
    return {name: result}


async def _bars(
    store: BarStore,
    key: str,
    timeframe: Timeframe,
    start: dt.datetime | None,
    end: dt.datetime | None,
    limit: int,
    warmup: int,
) -> tuple[BarSeries | None, BarSeries]:
    main = await store.series(key, timeframe, start=start, end=end, limit=limit)
    if warmup == 0 or len(main) == 0:
        return None, main
    first = dt.datetime.fromtimestamp(int(main.ts[0]), dt.UTC)
    before = await store.series(key, timeframe, end=first, limit=warmup)
    return before, main


def _joined(before: BarSeries | None, main: BarSeries, exchange: str) -> dict[str, Any]:
    arrays = _arrays(main, exchange)
    if before is None or len(before) == 0:
        return arrays
    earlier = _arrays(before, exchange)
    return {k: np.concatenate([earlier[k], arrays[k]]) for k in arrays}


async def indicator_over_bars(
    db: AsyncSession,
    name: str,
    query: dict[str, str],
    *,
    instrument: str,
    timeframe: Timeframe,
    start: dt.datetime | None,
    end: dt.datetime | None,
    limit: int,
    warmup: int,
) -> dict[str, Any]:
    """The indicator ``name`` over the stored bars of ``instrument``, warm-up bars first.

    ``query`` holds the indicator's own parameters (TA-Lib's names) as the request gave them.
    """
    if name not in INDICATORS:
        raise NotFound(f"unknown indicator {name!r}; available: {', '.join(sorted(INDICATORS))}")
    params = parse_params(name, query)
    for bound in (start, end):
        if bound is not None and bound.tzinfo is None:
            raise InvalidInput("from/to need a timezone (e.g. 2025-01-01T00:00:00Z)")
    try:
        exchange, _ = parse_key(instrument)
    except ValueError as exc:
        raise InvalidInput(str(exc), field="instrument") from None
    before, main = await _bars(BarStore(db), instrument, timeframe, start, end, limit, warmup)
    arrays = _joined(before, main, exchange.value)
    outputs = compute(name, arrays, params)
    skip = len(arrays["close"]) - len(main)
    return {
        "instrument": main.key,
        "indicator": name,
        "timeframe": timeframe.value,
        "params": params,
        "t": main.ts,
        "values": {k: floats_or_null(np.asarray(v)[skip:]) for k, v in outputs.items()},
    }
