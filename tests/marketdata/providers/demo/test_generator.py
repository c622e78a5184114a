"""The pure generator: determinism, statistics (vol, clustering, volume shape), bar sanity."""

from __future__ import annotations

import datetime as dt
import math
from decimal import Decimal

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from quantdesk.marketdata.domain import FloatArray
from quantdesk.marketdata.providers.demo.generator import (
    TRADING_DAYS_PER_YEAR,
    DailyPath,
    MinuteSpec,
    PriceModel,
    Sessions,
    activity_profile,
    daily_from_minutes,
    daily_path,
    factor_shocks,
    minute_bars,
    round_to_tick,
)

EPOCH = dt.date(1990, 1, 1)
IST_OPEN = 3 * 3600 + 45 * 60  # 09:15 IST in seconds after 00:00 UTC


def weekday_sessions(count: int, minutes: int = 375) -> Sessions:
    days = np.busday_offset(np.datetime64(EPOCH, "D"), np.arange(count), roll="forward")
    opens = days.astype("datetime64[s]").astype(np.int64) + IST_OPEN
    return Sessions(dates=days, opens=opens, closes=opens + 60 * minutes)


def path_for(model: PriceModel, sessions: Sessions, seed: int = 7, name: str = "X") -> DailyPath:
    days = sessions.day_numbers(EPOCH)
    factor = factor_shocks(seed, "IN", int(days[-1]) + 1)
    return daily_path(model, name, seed, factor, days, reference_index=len(sessions) - 1)


def autocorrelation(x: FloatArray, lag: int) -> float:
    x = x - x.mean()
    return float(np.dot(x[:-lag], x[lag:]) / np.dot(x, x))


LONG = weekday_sessions(12_000)


def test_round_to_tick_gives_the_float_nearest_the_decimal() -> None:
    prices = np.array([24567.849999, 0.0749, 1.025000001, 99.97501])
    assert [repr(p) for p in round_to_tick(prices, 0.05).tolist()] == [
        "24567.85",
        "0.05",
        "1.05",
        "100.0",
    ]
    assert repr(float(round_to_tick(np.array([187.1249]), 0.01)[0])) == "187.12"
    with pytest.raises(ValueError, match="must divide 1"):
        round_to_tick(prices, 0.03)


def test_same_seed_gives_identical_paths_and_another_seed_does_not() -> None:
    model = PriceModel(level=100.0, vol=0.2, daily_volume=1e6)
    sessions = weekday_sessions(300)
    first, second = path_for(model, sessions), path_for(model, sessions)
    other = path_for(model, sessions, seed=8)
    np.testing.assert_array_equal(first.log_close, second.log_close)
    np.testing.assert_array_equal(first.variance, second.variance)
    assert not np.allclose(first.log_close, other.log_close)
    spec = MinuteSpec(name="X", tick=0.05, daily_volume=1e6)
    a = minute_bars(spec, first, sessions, 250, 299, 7, model.gap_share)
    b = minute_bars(spec, second, sessions, 250, 299, 7, model.gap_share)
    for column in ("ts", "open", "high", "low", "close", "volume"):
        assert getattr(a, column).tobytes() == getattr(b, column).tobytes()


def test_a_sessions_minutes_do_not_depend_on_the_range_generated() -> None:
    model = PriceModel(level=100.0, vol=0.2, daily_volume=1e6)
    sessions = weekday_sessions(100)
    path = path_for(model, sessions)
    spec = MinuteSpec(name="X", tick=0.05, daily_volume=1e6)
    wide = minute_bars(spec, path, sessions, 10, 60, 7, model.gap_share)
    alone = minute_bars(spec, path, sessions, 42, 42, 7, model.gap_share)
    start = 32 * 375
    np.testing.assert_array_equal(wide.close[start : start + 375], alone.close)
    np.testing.assert_array_equal(wide.volume[start : start + 375], alone.volume)


def test_daily_paths_are_stable_when_more_sessions_follow() -> None:
    # The loader appends days later: earlier sessions must keep their values.
    model = PriceModel(level=100.0, vol=0.2)
    short, long = weekday_sessions(400), weekday_sessions(450)
    days_short, days_long = short.day_numbers(EPOCH), long.day_numbers(EPOCH)
    a = daily_path(model, "X", 3, factor_shocks(3, "IN", int(days_short[-1]) + 1), days_short, 100)
    b = daily_path(model, "X", 3, factor_shocks(3, "IN", int(days_long[-1]) + 1), days_long, 100)
    np.testing.assert_array_equal(a.log_close, b.log_close[:400])


def test_reference_session_closes_at_the_level() -> None:
    model = PriceModel(level=24_500.0, vol=0.13)
    path = path_for(model, weekday_sessions(500))
    assert path.closes[-1] == pytest.approx(24_500.0, rel=1e-12)


@pytest.mark.parametrize("vol", [0.12, 0.3])
def test_daily_log_return_vol_is_near_the_configured_vol(vol: float) -> None:
    path = path_for(PriceModel(level=100.0, vol=vol), LONG)
    realised = float(np.std(np.diff(path.log_close))) * math.sqrt(TRADING_DAYS_PER_YEAR)
    # GARCH clustering makes sample variance noisy (std error ~5% here); 15% is ~3 sigma.
    assert realised == pytest.approx(vol, rel=0.15)
    # And the mean of the conditional variance is the configured long-run variance.
    assert math.sqrt(path.variance.mean() * TRADING_DAYS_PER_YEAR) == pytest.approx(vol, rel=0.15)


def test_volatility_clusters_with_garch_and_not_without() -> None:
    garch = path_for(PriceModel(level=100.0, vol=0.2), LONG)
    iid = path_for(PriceModel(level=100.0, vol=0.2, garch_alpha=0.0, garch_beta=0.0), LONG)
    squared = np.diff(garch.log_close) ** 2
    squared_iid = np.diff(iid.log_close) ** 2
    # GARCH(1,1) with alpha=0.08, beta=0.90: lag-1 ACF of r^2 is about 0.2 and decays slowly.
    assert autocorrelation(squared, 1) > 0.1
    assert autocorrelation(squared, 10) > 0.05
    assert abs(autocorrelation(squared_iid, 1)) < 0.04
    # Fat tails follow: kurtosis above the normal's 3.
    r = np.diff(garch.log_close)
    assert float(np.mean((r - r.mean()) ** 4) / np.var(r) ** 2) > 3.5


def test_stocks_move_with_their_index() -> None:
    sessions = weekday_sessions(3000)
    index = path_for(PriceModel(level=1e4, vol=0.13, factor_loading=0.97), sessions, name="IDX")
    stock = path_for(PriceModel(level=1e3, vol=0.25, factor_loading=0.6), sessions, name="STK")
    correlation = np.corrcoef(np.diff(index.log_close), np.diff(stock.log_close))[0, 1]
    assert correlation == pytest.approx(0.97 * 0.6, abs=0.08)


def test_intraday_volume_is_u_shaped() -> None:
    model = PriceModel(level=1500.0, vol=0.22, daily_volume=9e6)
    sessions = weekday_sessions(60)
    path = path_for(model, sessions)
    bars = minute_bars(MinuteSpec("X", 0.05, 9e6), path, sessions, 30, 59, 7, model.gap_share)
    by_minute = bars.volume.reshape(30, 375).mean(axis=0)
    first, last, midday = by_minute[:30].mean(), by_minute[-30:].mean(), by_minute[150:225].mean()
    assert first > 2 * midday
    assert last > 1.3 * midday
    profile = activity_profile(390)
    assert profile.mean() == pytest.approx(1.0)
    assert profile[:30].mean() > profile[180:210].mean() < profile[-30:].mean()


def test_index_has_no_volume_and_futures_volume_is_in_lots() -> None:
    model = PriceModel(level=1e4, vol=0.13)
    sessions = weekday_sessions(5)
    path = path_for(model, sessions)
    index = minute_bars(MinuteSpec("I", 0.05), path, sessions, 0, 4, 7, model.gap_share)
    assert not index.volume.any()
    lots = minute_bars(MinuteSpec("F", 0.05, 5e6, volume_lot=65), path, sessions, 0, 4, 7, 0.2)
    assert lots.volume.sum() > 0
    np.testing.assert_array_equal(lots.volume % 65, 0)


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    vol=st.floats(0.05, 0.8),
    level=st.floats(5.0, 80_000.0),
    tick=st.sampled_from([0.05, 0.01]),
)
def test_bars_are_consistent_on_tick_and_aggregate_to_daily(
    seed: int, vol: float, level: float, tick: float
) -> None:
    model = PriceModel(level=level, vol=vol, daily_volume=1e5)
    sessions = weekday_sessions(12, minutes=390)
    path = path_for(model, sessions, seed=seed)
    minutes = minute_bars(MinuteSpec("X", tick, 1e5), path, sessions, 2, 11, seed, model.gap_share)
    assert len(minutes) == 10 * 390
    assert np.all(minutes.high >= np.maximum(minutes.open, minutes.close))
    assert np.all(minutes.low <= np.minimum(minutes.open, minutes.close))
    for column in (minutes.open, minutes.high, minutes.low, minutes.close):
        np.testing.assert_array_equal(round_to_tick(column, tick), column)
        # ... which means each float prints as a decimal on the tick grid.
        assert all(Decimal(repr(x)) % Decimal(repr(tick)) == 0 for x in column[:50].tolist())
    # Each minute opens at the previous minute's close within a session.
    grid = minutes.close.reshape(10, 390)
    np.testing.assert_array_equal(minutes.open.reshape(10, 390)[:, 1:], grid[:, :-1])
    daily = daily_from_minutes(minutes, sessions, 2, 11)
    np.testing.assert_array_equal(daily.close, grid[:, -1])
    np.testing.assert_array_equal(daily.high, minutes.high.reshape(10, 390).max(axis=1))
    np.testing.assert_array_equal(daily.volume, minutes.volume.reshape(10, 390).sum(axis=1))
    np.testing.assert_array_equal(daily.ts % 86_400, 0)
    # The bridge lands on the day's close (up to tick rounding).
    np.testing.assert_allclose(daily.close, path.closes[2:12], atol=tick / 2 + 1e-9)


def test_minutes_skip_a_halt() -> None:
    base = weekday_sessions(3)
    halt_start = int(base.opens[1]) + 60 * 100
    sessions = Sessions(
        base.dates, base.opens, base.closes, halts=((1, halt_start, halt_start + 3600),)
    )
    assert sessions.minutes.tolist() == [375, 315, 375]
    model = PriceModel(level=100.0, vol=0.2, daily_volume=1e5)
    bars = minute_bars(
        MinuteSpec("X", 0.05, 1e5), path_for(model, sessions), sessions, 0, 2, 7, 0.15
    )
    assert len(bars) == 375 + 315 + 375
    inside = (bars.ts >= halt_start) & (bars.ts < halt_start + 3600)
    assert not inside.any()
    assert np.all(np.diff(bars.ts) > 0)


def test_early_close_sessions_keep_time_order() -> None:
    days = np.busday_offset(np.datetime64(EPOCH, "D"), np.arange(4), roll="forward")
    opens = days.astype("datetime64[s]").astype(np.int64) + 14 * 3600 + 1800
    closes = opens + 60 * np.array([390, 210, 390, 390])
    sessions = Sessions(days, opens, closes)
    model = PriceModel(level=100.0, vol=0.2, daily_volume=1e5)
    bars = minute_bars(
        MinuteSpec("X", 0.01, 1e5), path_for(model, sessions), sessions, 0, 3, 7, 0.15
    )
    assert len(bars) == 390 * 3 + 210
    assert np.all(np.diff(bars.ts) > 0)
    assert len(daily_from_minutes(bars, sessions, 0, 3)) == 4


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"level": -1.0, "vol": 0.2}, "positive"),
        ({"level": 1.0, "vol": 0.2, "garch_alpha": 0.2, "garch_beta": 0.8}, "alpha \\+ beta"),
        ({"level": 1.0, "vol": 0.2, "factor_loading": 1.5}, "factor_loading"),
    ],
)
def test_price_model_rejects_nonsense(kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        PriceModel(**kwargs)


def test_sessions_reject_bad_tables() -> None:
    days = np.array(["2024-01-02", "2024-01-01"], dtype="datetime64[D]")
    with pytest.raises(ValueError, match="increasing"):
        Sessions(days, np.array([0, 86_400]), np.array([600, 87_000]))
    days = np.array(["2024-01-01", "2024-01-02"], dtype="datetime64[D]")
    with pytest.raises(ValueError, match="whole number of minutes"):
        Sessions(days, np.array([0, 86_400]), np.array([630, 86_400]))
