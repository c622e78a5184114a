"""The demo market: universe, calendar fidelity, determinism, futures carry, chains."""

from __future__ import annotations

import datetime as dt
import math
from decimal import Decimal

import numpy as np
import pytest

from quantdesk.analytics.daycount import SECONDS_PER_YEAR
from quantdesk.marketdata.calendars import get_calendar
from quantdesk.marketdata.domain import Exchange, InstrumentType, OptionType, Timeframe
from quantdesk.marketdata.instruments.underlyings import spot_candidates
from quantdesk.marketdata.providers.demo.generator import TRADING_DAYS_PER_YEAR
from quantdesk.marketdata.providers.demo.market import DemoMarket
from tests.marketdata.providers.demo.conftest import ANCHOR, SEED
from tests.marketdata.providers.demo.test_chains import brute_force_max_pain

NSE_STOCKS = ("RELIANCE", "TCS", "INFY", "HDFCBANK", "ICICIBANK", "SBIN", "ITC", "LT")


def day_of(ts: int) -> dt.date:
    return dt.datetime.fromtimestamp(ts, dt.UTC).date()


def test_universe_holds_the_instruments_the_issue_asks_for(market: DemoMarket) -> None:
    by_key = {i.key: i for i in market.instruments()}
    for key in (
        "NSE:NIFTY 50",
        "NSE:NIFTY BANK",
        *(f"NSE:{s}" for s in NSE_STOCKS),
        "NASDAQ:AAPL",
        "NASDAQ:MSFT",
        "NYSE:SPY",
        "NASDAQ:QQQ",
    ):
        assert key in by_key
    assert by_key["NSE:NIFTY 50"].type is InstrumentType.INDEX
    assert by_key["NYSE:SPY"].type is InstrumentType.ETF
    assert by_key["NSE:RELIANCE"].tick_size == Decimal("0.05")
    assert by_key["NASDAQ:AAPL"].tick_size == Decimal("0.01")
    assert by_key["NSE:RELIANCE"].isin == "INE002A01018"
    # Near- and next-month futures of both indices and every stock, NSE symbology.
    nifty_june = by_key["NFO:NIFTY26JUNFUT"]
    assert nifty_june.lot_size == Decimal(65)
    assert nifty_june.expiry == dt.date(2026, 6, 30)  # last Tuesday of June 2026
    assert nifty_june.underlying == "NIFTY"
    # Every derivative's root leads the analytics back to the demo's spot instrument.
    for key, listing in market.futures.items():
        root = by_key[key].underlying
        assert root is not None
        assert spot_candidates(root, by_key[key].exchange)[0] == listing.spec.key
    for root in ("NIFTY", "BANKNIFTY", *NSE_STOCKS):
        assert f"NFO:{root}26JUNFUT" in by_key
        assert f"NFO:{root}26JULFUT" in by_key
    # Options: NIFTY weeklies (YY + month digit + DD) and monthlies, BANKNIFTY monthlies only.
    weekly_call = by_key["NFO:NIFTY2662329000CE"]
    assert weekly_call.expiry == dt.date(2026, 6, 23)
    assert weekly_call.strike == Decimal(29000)
    assert weekly_call.option_type is OptionType.CALL
    assert "NFO:NIFTY26JUN29000PE" in by_key
    banknifty = {s.expiry for s in market.option_series if s.spec.symbol == "NIFTY BANK"}
    assert banknifty == {dt.date(2026, 6, 30), dt.date(2026, 7, 28)}
    for series in market.option_series:
        step = 50.0 if series.spec.symbol == "NIFTY 50" else 100.0
        assert np.all(np.diff(series.strikes) == step)
        spot = float(market.close_quote(series.spec.key).last)
        fno = series.spec.derivatives
        assert fno is not None
        assert abs(series.strikes[fno.strikes_each_side] - spot) <= step / 2
        assert series.expiry >= ANCHOR


@pytest.mark.parametrize("key", ["NSE:RELIANCE", "NASDAQ:AAPL", "NYSE:SPY"])
def test_daily_bars_fall_on_trading_days_only(market: DemoMarket, key: str) -> None:
    spec = market.underlyings[key]
    last = market.last_index(spec)
    bars = market.bars(key, Timeframe.D1, last - 520, last)
    days = [day_of(int(ts)) for ts in bars.ts]
    calendar = get_calendar(spec.calendar)
    expected = calendar.trading_days(days[0], ANCHOR - dt.timedelta(days=1))
    assert days == expected
    assert days[-1] < ANCHOR
    holidays = {h.date for year in (2025, 2026) for h in calendar.holidays(year)}
    assert not holidays & set(days)
    # Weekend bars only on the budget-day sessions NSE held (a Saturday and a Sunday).
    weekend = {d for d in days if d.weekday() >= 5}
    assert weekend <= {dt.date(2025, 2, 1), dt.date(2026, 2, 1)}
    assert bool(weekend) == (spec.calendar == "NSE")


def test_minute_bars_lie_inside_sessions(market: DemoMarket) -> None:
    for key in ("NSE:NIFTY 50", "NSE:ITC", "NASDAQ:QQQ"):
        spec = market.underlyings[key]
        last = market.last_index(spec)
        bars = market.bars(key, Timeframe.M1, last - 29, last)
        calendar = get_calendar(spec.calendar)
        first_day = market.sessions(spec).date(last - 29)
        sessions = calendar.sessions(first_day, ANCHOR - dt.timedelta(days=1))
        opens = np.array([int(s.open_utc.timestamp()) for s in sessions])
        closes = np.array([int(s.close_utc.timestamp()) for s in sessions])
        where = np.searchsorted(opens, bars.ts, side="right") - 1
        assert np.all(where >= 0)
        assert np.all(bars.ts < closes[where])
        minutes_per_session = np.bincount(where)
        expected = (closes - opens) // 60
        np.testing.assert_array_equal(minutes_per_session, expected)
        if spec.calendar == "NSE":
            assert set(minutes_per_session.tolist()) == {375}  # 09:15-15:30 IST
            assert dt.date(2026, 5, 28) not in {s.date for s in sessions}  # Bakri Id


def test_us_early_close_has_a_short_session(market: DemoMarket) -> None:
    spec = market.underlyings["NASDAQ:AAPL"]
    sessions = market.sessions(spec)
    index = sessions.index_on_or_before(dt.date(2025, 11, 28))  # day after Thanksgiving
    assert sessions.date(index) == dt.date(2025, 11, 28)
    bars = market.bars("NASDAQ:AAPL", Timeframe.M1, index, index)
    assert len(bars) == 210  # 09:30-13:00 ET
    assert dt.datetime.fromtimestamp(int(bars.ts[-1]), dt.UTC).time() == dt.time(17, 59)


def test_same_seed_and_anchor_give_byte_identical_data(market: DemoMarket) -> None:
    twin = DemoMarket(SEED, ANCHOR)
    for key in ("NSE:NIFTY 50", "NFO:BANKNIFTY26JUNFUT", "NFO:NIFTY26JUN29000CE", "NYSE:SPY"):
        lo, hi = market.available(key)
        for timeframe in (Timeframe.D1, Timeframe.M1):
            a = market.bars(key, timeframe, max(lo, hi - 3), hi)
            b = twin.bars(key, timeframe, max(lo, hi - 3), hi)
            for column in ("ts", "open", "high", "low", "close", "volume", "oi"):
                assert getattr(a, column).tobytes() == getattr(b, column).tobytes()
    assert market.close_quotes(["NFO:NIFTY26JUN29000PE"]) == twin.close_quotes(
        ["NFO:NIFTY26JUN29000PE"]
    )
    other = DemoMarket(SEED + 1, ANCHOR)
    spec = market.underlyings["NSE:TCS"]
    last = market.last_index(spec)
    assert not np.array_equal(
        market.bars("NSE:TCS", Timeframe.D1, last - 5, last).close,
        other.bars("NSE:TCS", Timeframe.D1, last - 5, last).close,
    )


def test_a_later_anchor_extends_the_data_without_changing_it(market: DemoMarket) -> None:
    later = DemoMarket(SEED, ANCHOR + dt.timedelta(days=14))
    for key in ("NSE:HDFCBANK", "NASDAQ:MSFT"):
        spec = market.underlyings[key]
        last = market.last_index(spec)
        assert later.last_index(spec) > last
        for timeframe in (Timeframe.D1, Timeframe.M1):
            a = market.bars(key, timeframe, last - 4, last)
            b = later.bars(key, timeframe, last - 4, last)
            np.testing.assert_array_equal(a.ts, b.ts)
            np.testing.assert_array_equal(a.close, b.close)
            np.testing.assert_array_equal(a.volume, b.volume)


def test_futures_trade_at_cost_of_carry(market: DemoMarket) -> None:
    for key in ("NFO:NIFTY26JULFUT", "NFO:RELIANCE26JUNFUT"):
        listing = market.futures[key]
        spec = listing.spec
        last = market.last_index(spec)
        future = market.bars(key, Timeframe.M1, last - 9, last)
        spot = market.bars(spec.key, Timeframe.M1, last - 9, last)
        np.testing.assert_array_equal(future.ts, spot.ts)
        tau = (listing.contract.expiry_close_ts - future.ts) / SECONDS_PER_YEAR
        carry = (spec.rate - spec.dividend_yield) * tau
        basis = np.log(future.close / spot.close)
        assert np.all(basis > 0)  # r > q: futures at a premium
        # Fair carry plus a few basis points of mispricing and tick rounding.
        np.testing.assert_allclose(basis, carry, atol=0.0025)
        assert abs(float(np.mean(basis - carry))) < 0.001
        # Volume and open interest come in whole lots.
        lot = float(listing.instrument.lot_size)
        np.testing.assert_array_equal(future.volume % lot, 0)
        np.testing.assert_array_equal(future.oi % lot, 0)
        assert future.oi.min() > 0


def test_futures_exist_from_listing_only(market: DemoMarket) -> None:
    listing = market.futures["NFO:NIFTY26JULFUT"]
    first, last = market.available("NFO:NIFTY26JULFUT")
    assert first == listing.contract.listing_index
    sessions = market.sessions(listing.spec)
    # NSE trades three serial months: July is listed after April's expiry (2026-04-28).
    assert sessions.date(first) == dt.date(2026, 4, 29)
    daily = market.bars("NFO:NIFTY26JULFUT", Timeframe.D1, 0, last)
    assert day_of(int(daily.ts[0])) == sessions.date(first)


def test_option_chains_give_max_pain_near_spot_and_sensible_pcr(market: DemoMarket) -> None:
    for series in market.option_series:
        spec = series.spec
        index = market.last_index(spec)
        chain = market.chain(series, index)
        spot = float(market.close_quote(spec.key).last)
        pain = brute_force_max_pain(chain.strikes, chain.calls.oi, chain.puts.oi)
        assert abs(pain - spot) <= 0.015 * spot, series.name
        pcr = chain.puts.oi.sum() / chain.calls.oi.sum()
        assert 0.7 < pcr < 1.5
        # Nearest expiry carries the most open interest.
    totals = [
        market.chain(s, market.last_index(s.spec)).calls.oi.sum() for s in market.option_series[:3]
    ]
    assert totals[0] > totals[2]


def test_option_bars_history_and_bounds(market: DemoMarket) -> None:
    key = "NFO:NIFTY26JUN29000CE"
    lo, hi = market.available(key)
    assert hi - lo + 1 == 5
    bars = market.bars(key, Timeframe.D1, 0, hi)
    assert len(bars) == 5
    assert np.all(bars.high >= np.maximum(bars.open, bars.close))
    assert np.all(bars.low <= np.minimum(bars.open, bars.close))
    assert len(market.bars(key, Timeframe.M1, lo, hi)) == 0  # options: daily bars only
    spot = market.bars("NSE:NIFTY 50", Timeframe.D1, lo, hi).close
    # A call is worth at least its discounted intrinsic value on the futures price.
    assert np.all(bars.close >= np.maximum(spot - 29_000, 0) * 0.99 - 0.05)


def test_closing_quotes_match_the_last_bars(market: DemoMarket) -> None:
    quotes = market.close_quotes(
        ["NSE:NIFTY 50", "NSE:SBIN", "NFO:NIFTY26JUNFUT", "NFO:NIFTY26JUN29000PE"]
    )
    for key, quote in quotes.items():
        _lo, hi = market.available(key)
        daily = market.bars(key, Timeframe.D1, hi - 1, hi)
        assert quote.last == Decimal(repr(float(daily.close[-1])))
        assert quote.prev_close == Decimal(repr(float(daily.close[-2])))
        assert quote.change == quote.last - quote.prev_close
        assert quote.ts.tzinfo is not None
    index = quotes["NSE:NIFTY 50"]
    assert index.bid is None
    assert index.volume == 0
    stock = quotes["NSE:SBIN"]
    assert stock.bid is not None
    assert stock.ask is not None
    assert stock.bid < stock.last < stock.ask
    future = quotes["NFO:NIFTY26JUNFUT"]
    assert future.oi is not None
    assert future.prev_oi is not None
    option = quotes["NFO:NIFTY26JUN29000PE"]
    assert option.bid is not None
    assert option.ask is not None
    assert option.bid % Decimal("0.05") == 0
    assert option.ask % Decimal("0.05") == 0
    assert option.prev_oi is not None
    assert option.oi is not None


def test_realised_index_vol_is_near_its_model(market: DemoMarket) -> None:
    for key in ("NSE:NIFTY 50", "NASDAQ:QQQ"):
        spec = market.underlyings[key]
        last = market.last_index(spec)
        closes = market.bars(key, Timeframe.D1, last - 500, last).close
        realised = float(np.std(np.diff(np.log(closes)))) * math.sqrt(TRADING_DAYS_PER_YEAR)
        assert 0.6 * spec.model.vol < realised < 1.6 * spec.model.vol


def test_a_2027_anchor_lists_derivatives_on_the_provisional_calendar() -> None:
    # The defects issue: past the packages' NSE data (2026) every derivative was dropped.
    late = DemoMarket(SEED, dt.date(2027, 3, 1))
    assert late.clamped_calendars == []
    nse = late.underlyings["NSE:ITC"]
    assert late.sessions(nse).date(late.last_index(nse)) == dt.date(2027, 2, 26)
    assert "NFO:NIFTY27MARFUT" in late.futures
    assert late.option_series


def test_anchor_past_the_calendar_data_stops_that_exchange_there() -> None:
    late = DemoMarket(SEED, dt.date(2036, 3, 3))
    assert late.clamped_calendars == ["NASDAQ", "NSE", "NYSE"]
    nse = late.underlyings["NSE:ITC"]
    us = late.underlyings["NASDAQ:AAPL"]
    assert late.sessions(nse).date(late.last_index(nse)) == dt.date(2035, 12, 31)
    assert late.sessions(us).date(late.last_index(us)) == dt.date(2030, 12, 31)
    # No NSE contract can be dated; SIM, whose calendar runs to 2099, lists its own.
    assert {f.spec.exchange for f in late.futures.values()} == {Exchange.SIM}


def test_anchor_before_the_epoch_is_refused() -> None:
    with pytest.raises(ValueError, match="starts on 2020-01-01"):
        DemoMarket(SEED, dt.date(2019, 6, 1))
