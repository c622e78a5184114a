"""The demo market for one seed and anchor date: instruments, bars and closing quotes.

The anchor is "today": the data hold every complete session strictly before it, and
derivatives still trading on it (a contract is live on its expiry day).  Underlyings'
bars exist from ``EPOCH``; futures from their listing (the session after the monthly expiry
three months before theirs, NSE's three-serial-month cycle); options for the last
``OPTION_HISTORY_SESSIONS`` sessions.  Everything is computed on demand and memoised, so the
provider can serve any range and the loader only pays for what it writes.

What is listed (sessions, futures, option series) is decided in ``listings``.  When the
anchor lies past a calendar's published data (NSE's holiday list ends with the last
published year), that exchange's data stop at the end of its horizon instead of inventing
trading days; a contract whose expiry lies past the horizon is left out.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import numpy as np

from quantdesk.analytics.daycount import SECONDS_PER_YEAR
from quantdesk.marketdata.calendars import get_calendar
from quantdesk.marketdata.domain import BarArrays, FloatArray, Instrument, Quote, Timeframe
from quantdesk.marketdata.providers.demo.chains import (
    ChainSnapshot,
    Smile,
    option_values,
    price_chain,
    smile_for,
)
from quantdesk.marketdata.providers.demo.futures import future_minutes
from quantdesk.marketdata.providers.demo.generator import (
    TRADING_DAYS_PER_YEAR,
    DailyPath,
    MinuteSpec,
    Sessions,
    daily_from_minutes,
    daily_path,
    empty_bars,
    factor_shocks,
    minute_bars,
)
from quantdesk.marketdata.providers.demo.listings import (
    FutureListing,
    OptionSeries,
    exchange_sessions,
    list_futures,
    list_option_series,
)
from quantdesk.marketdata.providers.demo.universe import (
    EPOCH,
    REFERENCE_DATE,
    UNDERLYINGS,
    DemoUnderlying,
)

__all__ = ["OPTION_HISTORY_SESSIONS", "DemoMarket", "FutureListing", "OptionSeries"]

OPTION_HISTORY_SESSIONS = 5
_EXPIRY_LOOKAHEAD = timedelta(days=80)


@dataclass(frozen=True, slots=True)
class _OptionRef:
    series: OptionSeries
    strike_index: int
    call: bool


class DemoMarket:
    """Every demo instrument and its data for ``seed`` and ``anchor``; deterministic."""

    def __init__(self, seed: int, anchor: date) -> None:
        self.seed = seed
        self.requested_anchor = anchor
        if anchor - timedelta(days=1) < EPOCH:
            raise ValueError(f"the demo market starts on {EPOCH}; anchor {anchor} is earlier")
        self._sessions: dict[str, Sessions] = {}
        self._anchors: dict[str, date] = {}
        for calendar in sorted({spec.calendar for spec in UNDERLYINGS}):
            horizon = date(get_calendar(calendar).last_year, 12, 31)
            # Past the calendar's data the exchange's clock stops (see module docstring).
            self._anchors[calendar] = min(anchor, horizon + timedelta(days=1))
            end = min(max(anchor, REFERENCE_DATE) + _EXPIRY_LOOKAHEAD, horizon)
            self._sessions[calendar] = exchange_sessions(calendar, EPOCH, end)
        self._paths: dict[str, DailyPath] = {}
        self._factors: dict[str, FloatArray] = {}
        self._minutes: dict[tuple[str, int, int], BarArrays] = {}
        self._chains: dict[tuple[str, int], ChainSnapshot] = {}
        self._series_bars: dict[tuple[str, int], BarArrays] = {}
        self.underlyings: dict[str, DemoUnderlying] = {spec.key: spec for spec in UNDERLYINGS}
        self.futures: dict[str, FutureListing] = {}
        self.option_series: list[OptionSeries] = []
        self._options: dict[str, _OptionRef] = {}
        for spec in UNDERLYINGS:
            if spec.derivatives is not None:
                self._list_derivatives(spec)

    # --- calendars -------------------------------------------------------------------
    @property
    def clamped_calendars(self) -> list[str]:
        """Calendars whose data end before the anchor (their data stop at the horizon)."""
        return [c for c, a in self._anchors.items() if a < self.requested_anchor]

    def sessions(self, spec: DemoUnderlying) -> Sessions:
        return self._sessions[spec.calendar]

    def last_index(self, spec: DemoUnderlying) -> int:
        """Index of the last complete session before the anchor."""
        return self.sessions(spec).index_before(self._anchors[spec.calendar])

    def anchor(self, spec: DemoUnderlying) -> date:
        return self._anchors[spec.calendar]

    # --- instruments -----------------------------------------------------------------
    def instruments(self) -> list[Instrument]:
        found = [spec.instrument() for spec in UNDERLYINGS]
        found += [listing.instrument for listing in self.futures.values()]
        for series in self.option_series:
            for call, put in zip(series.calls, series.puts, strict=True):
                found += [call, put]
        return found

    def instrument(self, key: str) -> Instrument:
        if key in self.underlyings:
            return self.underlyings[key].instrument()
        if key in self.futures:
            return self.futures[key].instrument
        ref = self._options.get(key)
        if ref is None:
            raise KeyError(key)
        return (ref.series.calls if ref.call else ref.series.puts)[ref.strike_index]

    def _list_derivatives(self, spec: DemoUnderlying) -> None:
        sessions = self.sessions(spec)
        anchor = self.anchor(spec)
        if anchor > sessions.date(len(sessions) - 1):
            return  # past the calendar's data: no contract can be dated
        for listing in list_futures(spec, sessions, anchor):
            self.futures[listing.instrument.key] = listing
        last = self.last_index(spec)
        spot = float(self.underlying_daily(spec, last, last).close[0])
        for series in list_option_series(spec, sessions, anchor, spot):
            self.option_series.append(series)
            for index, (call, put) in enumerate(zip(series.calls, series.puts, strict=True)):
                self._options[call.key] = _OptionRef(series, index, call=True)
                self._options[put.key] = _OptionRef(series, index, call=False)

    # --- underlyings -----------------------------------------------------------------
    def path(self, spec: DemoUnderlying) -> DailyPath:
        cached = self._paths.get(spec.key)
        if cached is None:
            sessions = self.sessions(spec)
            days = sessions.day_numbers(EPOCH)
            factor = self._factors.get(spec.region)
            if factor is None or factor.shape[0] <= int(days[-1]):
                factor = factor_shocks(self.seed, spec.region, int(days[-1]) + 1)
                self._factors[spec.region] = factor
            reference = sessions.index_on_or_before(REFERENCE_DATE)
            cached = daily_path(spec.model, spec.key, self.seed, factor, days, reference)
            self._paths[spec.key] = cached
        return cached

    def underlying_minutes(self, spec: DemoUnderlying, first: int, last: int) -> BarArrays:
        memo = (spec.key, first, last)
        cached = self._minutes.get(memo)
        if cached is None:
            minute_spec = MinuteSpec(
                name=spec.key, tick=float(spec.tick), daily_volume=spec.model.daily_volume
            )
            cached = minute_bars(
                minute_spec,
                self.path(spec),
                self.sessions(spec),
                first,
                last,
                self.seed,
                spec.model.gap_share,
            )
            if len(self._minutes) > 64:
                self._minutes.clear()
            self._minutes[memo] = cached
        return cached

    def underlying_daily(self, spec: DemoUnderlying, first: int, last: int) -> BarArrays:
        minutes = self.underlying_minutes(spec, first, last)
        return daily_from_minutes(minutes, self.sessions(spec), first, last)

    def current_vol(self, spec: DemoUnderlying, index: int) -> float:
        """Annualised conditional volatility for the session after ``index``."""
        variance = self.path(spec).variance
        return math.sqrt(variance[min(index + 1, variance.shape[0] - 1)] * TRADING_DAYS_PER_YEAR)

    # --- futures ---------------------------------------------------------------------
    def future_minutes(self, listing: FutureListing, first: int, last: int) -> BarArrays:
        spot = self.underlying_minutes(listing.spec, first, last)
        return future_minutes(
            listing.contract, spot, self.sessions(listing.spec), first, last, self.seed
        )

    def future_life(self, listing: FutureListing) -> tuple[int, int]:
        """First and last session with data (listing to the last session before the anchor)."""
        contract = listing.contract
        return contract.listing_index, min(contract.expiry_index, self.last_index(listing.spec))

    # --- options ---------------------------------------------------------------------
    def smile(self, spec: DemoUnderlying, index: int) -> Smile:
        return smile_for(self.current_vol(spec, index), spec.model.vol)

    def chain(self, series: OptionSeries, index: int) -> ChainSnapshot:
        """The chain at the close of session ``index``."""
        memo = (series.name, index)
        cached = self._chains.get(memo)
        if cached is not None:
            return cached
        spec = series.spec
        fno = spec.derivatives
        assert fno is not None  # noqa: S101 - only listed series get here
        assert fno.strike_step is not None  # noqa: S101
        sessions = self.sessions(spec)
        spot = float(self.underlying_daily(spec, index, index).close[0])
        t = (series.expiry_close_ts - int(sessions.closes[index])) / SECONDS_PER_YEAR
        # Positions build up towards expiry.
        sessions_left = series.expiry_index - index
        total = fno.option_lots_per_expiry * series.oi_weight * math.exp(-0.04 * sessions_left)
        cached = price_chain(
            name=series.name,
            spot=spot,
            strikes=series.strikes,
            t=t,
            rate=spec.rate,
            dividend_yield=spec.dividend_yield,
            smile=self.smile(spec, index),
            step=fno.strike_step,
            tick=float(spec.tick),
            lot=float(fno.lot_size),
            total_call_lots=total,
            put_call_ratio=fno.put_call_ratio,
            seed=self.seed,
            day=int(sessions.day_numbers(EPOCH)[index]),
        )
        self._chains[memo] = cached
        return cached

    def option_history(self, series: OptionSeries) -> tuple[int, int]:
        last = min(self.last_index(series.spec), series.expiry_index)
        return max(last - OPTION_HISTORY_SESSIONS + 1, 0), last

    def series_daily(self, series: OptionSeries, call: bool) -> BarArrays:
        """Daily bars of every strike of one side of a series over its history window.

        Columns are ``(sessions, strikes)`` matrices (``ts`` one per session).  The close is
        the chain's; open, high and low are the option's value at the spot's open, high and
        low that day (an option's value is monotone in spot, so its extremes come with the
        spot's).
        """
        memo = (f"{series.name}:{'C' if call else 'P'}", -1)
        cached = self._series_bars.get(memo)
        if cached is not None:
            return cached
        spec = series.spec
        lo, hi = self.option_history(series)
        spot = self.underlying_daily(spec, lo, hi)
        kind = "call" if call else "put"
        columns: dict[str, list[FloatArray]] = {
            c: [] for c in ("open", "high", "low", "close", "volume", "oi")
        }
        for row, index in enumerate(range(lo, hi + 1)):
            snapshot = self.chain(series, index)
            side = snapshot.calls if call else snapshot.puts
            levels = np.array([spot.open[row], spot.high[row], spot.low[row]])
            values = option_values(
                kind,
                levels,
                series.strikes,
                snapshot.t,
                spec.rate,
                spec.dividend_yield,
                self.smile(spec, index),
                float(spec.tick),
            )
            columns["open"].append(values[0])
            columns["high"].append(np.maximum(values.max(axis=0), side.price))
            columns["low"].append(np.minimum(values.min(axis=0), side.price))
            columns["close"].append(side.price)
            columns["volume"].append(side.volume)
            columns["oi"].append(side.oi)
        stacked = {
            name: np.vstack(parts) if parts else np.empty((0, series.strikes.shape[0]))
            for name, parts in columns.items()
        }
        cached = BarArrays(
            ts=self.sessions(spec).dates[lo : hi + 1].astype("datetime64[s]").astype(np.int64),
            **stacked,
        )
        self._series_bars[memo] = cached
        return cached

    def option_daily(self, key: str, first: int, last: int) -> BarArrays:
        ref = self._options[key]
        lo, hi = self.option_history(ref.series)
        first, last = max(first, lo), min(last, hi)
        if first > last:
            return empty_bars()
        table = self.series_daily(ref.series, ref.call)
        rows = slice(first - lo, last - lo + 1)
        column = ref.strike_index
        return BarArrays(
            ts=table.ts[rows],
            open=table.open[rows, column],
            high=table.high[rows, column],
            low=table.low[rows, column],
            close=table.close[rows, column],
            volume=table.volume[rows, column],
            oi=table.oi[rows, column],
        )

    # --- one entry point for any instrument --------------------------------------------
    def spec_of(self, key: str) -> DemoUnderlying:
        if key in self.underlyings:
            return self.underlyings[key]
        if key in self.futures:
            return self.futures[key].spec
        return self._options[key].series.spec

    def available(self, key: str) -> tuple[int, int]:
        """First and last session index with data for ``key``."""
        if key in self.underlyings:
            return 0, self.last_index(self.underlyings[key])
        if key in self.futures:
            return self.future_life(self.futures[key])
        if key in self._options:
            return self.option_history(self._options[key].series)
        raise KeyError(key)

    def bars(self, key: str, timeframe: Timeframe, first: int, last: int) -> BarArrays:
        """Bars of sessions ``first..last`` (clipped to what exists) at 1m or 1d."""
        lo, hi = self.available(key)
        first, last = max(first, lo), min(last, hi)
        if first > last:
            return empty_bars()
        if key in self._options:
            if timeframe is not Timeframe.D1:
                return empty_bars()
            return self.option_daily(key, first, last)
        spec = self.spec_of(key)
        if key in self.futures:
            minutes = self.future_minutes(self.futures[key], first, last)
        else:
            minutes = self.underlying_minutes(spec, first, last)
        if timeframe is Timeframe.M1:
            return minutes
        return daily_from_minutes(minutes, self.sessions(spec), first, last)

    def session_range(self, key: str, start: datetime, end: datetime) -> tuple[int, int]:
        """Session indices whose bars may fall in ``[start, end]``."""
        sessions = self.sessions(self.spec_of(key))
        start_day = start.astimezone(UTC).date() - timedelta(days=1)
        end_day = end.astimezone(UTC).date() + timedelta(days=1)
        return sessions.index_on_or_after(start_day), sessions.index_on_or_before(end_day)

    # --- quotes ----------------------------------------------------------------------
    def close_quotes(self, keys: Iterable[str] | None = None) -> dict[str, Quote]:
        """Each instrument's quote at the close of the last session before the anchor."""
        wanted = list(keys) if keys is not None else [i.key for i in self.instruments()]
        return {key: self.close_quote(key) for key in wanted}

    def close_quote(self, key: str) -> Quote:
        spec = self.spec_of(key)
        lo, hi = self.available(key)
        if hi < lo:
            raise KeyError(f"{key} has no data before the anchor")
        bars = self.bars(key, Timeframe.D1, max(hi - 1, lo), hi)
        sessions = self.sessions(spec)
        tick = spec.tick
        last = _dec(bars.close[-1], tick)
        prev = _dec(bars.close[-2], tick) if len(bars) > 1 else None
        is_index = spec.model.daily_volume == 0 and key == spec.key
        # Options quote a little wider than one tick (about 4 bp of premium, in whole ticks).
        spread = (
            tick * max(1, round(last * Decimal("0.0004") / tick)) if key in self._options else tick
        )
        lot = (
            Decimal(spec.derivatives.lot_size)
            if spec.derivatives and key != spec.key
            else Decimal(1)
        )
        return Quote(
            key=key,
            last=last,
            ts=datetime.fromtimestamp(int(sessions.closes[hi]), UTC),
            bid=None if is_index else max(last - spread, tick),
            ask=None if is_index else last + spread,
            bid_size=None if is_index else lot * 10,
            ask_size=None if is_index else lot * 12,
            volume=_dec(bars.volume[-1], Decimal(1)),
            oi=_dec(bars.oi[-1], Decimal(1)) if len(bars.oi) else None,
            change=last - prev if prev is not None else None,
            prev_close=prev,
            prev_oi=_dec(bars.oi[-2], Decimal(1)) if len(bars.oi) > 1 else None,
        )


def _dec(value: float, tick: Decimal) -> Decimal:
    return Decimal(repr(float(value))).quantize(tick)
