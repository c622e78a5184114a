"""Session-aware resampling: hand-worked NSE/NYSE cases, pandas as reference, properties."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from quantdesk.marketdata.bars.resample import SessionBounds, buckets_for, resample, weekly_buckets
from quantdesk.marketdata.calendars import get_calendar
from quantdesk.marketdata.domain import BarArrays, Timeframe

IST = dt.timezone(dt.timedelta(hours=5, minutes=30))


def ist(day: dt.date, hhmm: str) -> int:
    hour, minute = int(hhmm[:2]), int(hhmm[2:])
    return int(dt.datetime.combine(day, dt.time(hour, minute), IST).timestamp())


def nse_sessions(first: dt.date, last: dt.date) -> SessionBounds:
    sessions = get_calendar("NSE").sessions(first, last)
    return SessionBounds.of(
        [(int(s.open_utc.timestamp()), int(s.close_utc.timestamp())) for s in sessions]
    )


def minute_bars(starts: list[int], counts: list[int]) -> BarArrays:
    """Consecutive 1m bars; bar i has open i, close i + 0.5, high i + 1, low i - 1, volume 1."""
    ts = np.concatenate(
        [s + 60 * np.arange(n, dtype=np.int64) for s, n in zip(starts, counts, strict=True)]
    )
    i = np.arange(ts.shape[0], dtype=np.float64)
    return BarArrays(ts, i, i + 1, i - 1, i + 0.5, np.ones_like(i), oi=1000 + i)


MONDAY = dt.date(2024, 11, 18)  # a regular NSE session, 09:15-15:30 IST


def test_nse_5m_bars_align_to_0915() -> None:
    bars = minute_bars([ist(MONDAY, "0915")], [375])
    out = resample(bars, Timeframe.M5, nse_sessions(MONDAY, MONDAY))
    assert len(out) == 75
    assert out.ts[0] == ist(MONDAY, "0915")
    assert out.ts[1] == ist(MONDAY, "0920")
    assert out.ts[-1] == ist(MONDAY, "1525")
    # First bucket = minutes 0..4: open of bar 0, close of bar 4, extremes of bars 4 and 0.
    assert (out.open[0], out.close[0], out.high[0], out.low[0]) == (0.0, 4.5, 5.0, -1.0)
    assert np.all(out.volume == 5)
    assert out.oi[0] == 1004  # open interest at the bucket's close


@pytest.mark.parametrize(("timeframe", "minutes"), [(Timeframe.M3, 3), (Timeframe.M10, 10)])
def test_kites_3_and_10_minute_bars_align_to_0915(timeframe: Timeframe, minutes: int) -> None:
    bars = minute_bars([ist(MONDAY, "0915")], [375])
    out = resample(bars, timeframe, nse_sessions(MONDAY, MONDAY))
    assert len(out) == -(-375 // minutes)  # 125 three-minute bars; 38, the last 5 minutes long
    assert out.ts[1] == ist(MONDAY, "0918" if minutes == 3 else "0925")
    assert out.close[0] == minutes - 0.5
    assert out.volume[-1] == (375 % minutes or minutes)


def test_nse_hourly_bars_align_to_0915_with_partial_last_hour() -> None:
    bars = minute_bars([ist(MONDAY, "0915")], [375])
    out = resample(bars, Timeframe.H1, nse_sessions(MONDAY, MONDAY))
    stamps = [dt.datetime.fromtimestamp(int(t), IST).strftime("%H%M") for t in out.ts]
    assert stamps == ["0915", "1015", "1115", "1215", "1315", "1415", "1515"]
    # Continuous session, no lunch break: every full hour has all 60 minutes, incl. 12:15.
    assert out.volume.tolist() == [60, 60, 60, 60, 60, 60, 15]
    assert out.open[6] == 360
    assert out.close[6] == 374.5


def test_partial_last_bar_when_data_stops_mid_bucket() -> None:
    bars = minute_bars([ist(MONDAY, "0915")], [108])  # up to and including 11:02
    out = resample(bars, Timeframe.M5, nse_sessions(MONDAY, MONDAY))
    assert out.ts[-1] == ist(MONDAY, "1100")
    assert out.volume[-1] == 3
    assert out.close[-1] == 107.5


def test_a_holiday_and_a_weekend_produce_no_bars() -> None:
    thursday, friday_holiday = dt.date(2024, 11, 14), dt.date(2024, 11, 15)
    assert not get_calendar("NSE").is_trading_day(friday_holiday)  # Guru Nanak Jayanti
    bars = minute_bars([ist(thursday, "0915"), ist(MONDAY, "0915")], [375, 375])
    out = resample(bars, Timeframe.M15, nse_sessions(thursday, MONDAY))
    days = {dt.datetime.fromtimestamp(int(t), IST).date() for t in out.ts}
    assert days == {thursday, MONDAY}
    assert len(out) == 50  # 25 per session; nothing invented for Friday or the weekend
    assert out.ts[25] == ist(MONDAY, "0915")


def test_gaps_inside_a_session_are_not_filled() -> None:
    # Minutes 09:15-09:19 and 09:40-09:44 only: two 5m bars, not six.
    bars = minute_bars([ist(MONDAY, "0915"), ist(MONDAY, "0940")], [5, 5])
    out = resample(bars, Timeframe.M5, nse_sessions(MONDAY, MONDAY))
    assert out.ts.tolist() == [ist(MONDAY, "0915"), ist(MONDAY, "0940")]


def test_bars_outside_every_session_are_left_out() -> None:
    bars = minute_bars([ist(MONDAY, "0900"), ist(MONDAY, "0915")], [5, 5])
    out = resample(bars, Timeframe.M5, nse_sessions(MONDAY, MONDAY))
    assert out.ts.tolist() == [ist(MONDAY, "0915")]
    assert out.open[0] == 5  # the pre-open minutes (bars 0-4) are not in it


def test_muhurat_session_anchors_to_its_own_open() -> None:
    diwali = dt.date(2024, 11, 1)
    (special,) = get_calendar("NSE").sessions(diwali, diwali)
    assert special.kind == "special"
    start = int(special.open_utc.timestamp())
    bars = minute_bars([start + 120], [20])  # data from two minutes after the open
    out = resample(bars, Timeframe.M15, nse_sessions(diwali, diwali))
    assert out.ts.tolist() == [start, start + 900]
    assert out.volume.tolist() == [13, 7]


def test_nyse_hourly_bars_align_to_0930_and_respect_early_close() -> None:
    eve, holiday = dt.date(2024, 7, 3), dt.date(2024, 7, 4)
    sessions = get_calendar("NYSE").sessions(eve, holiday)
    assert len(sessions) == 1
    assert sessions[0].kind == "early_close"
    bounds = SessionBounds.of(
        [(int(s.open_utc.timestamp()), int(s.close_utc.timestamp())) for s in sessions]
    )
    open_ts = int(sessions[0].open_utc.timestamp())
    bars = minute_bars([open_ts], [240])  # 09:30-13:29 ET, though the close is 13:00
    out = resample(bars, Timeframe.H1, bounds)
    assert out.ts.tolist() == [open_ts + 3600 * k for k in range(4)]
    assert out.volume.tolist() == [60, 60, 60, 30]  # minutes after the 13:00 close dropped


def test_weekly_bars_group_by_exchange_week() -> None:
    days = [dt.date(2024, 11, d) for d in (11, 12, 13, 14, 18, 19, 20, 21, 22, 25)]
    ts = np.array([int(dt.datetime.combine(d, dt.time(), dt.UTC).timestamp()) for d in days])
    i = np.arange(len(days), dtype=np.float64)
    bars = BarArrays(ts, i, i + 1, i - 1, i + 0.5, np.full_like(i, 10.0))
    out = resample(bars, Timeframe.W1)
    first_days = [dt.datetime.fromtimestamp(int(t), dt.UTC).date() for t in out.ts]
    # Week of the 11th has no Friday (15th holiday): four bars.  Its stamp is its Monday.
    assert first_days == [dt.date(2024, 11, 11), dt.date(2024, 11, 18), dt.date(2024, 11, 25)]
    assert out.volume.tolist() == [40, 50, 10]
    assert out.open.tolist() == [0, 4, 9]
    assert out.close.tolist() == [3.5, 8.5, 9.5]


def test_weekly_stamp_is_first_trading_day_when_monday_is_closed() -> None:
    days = [dt.date(2024, 4, d) for d in (16, 18, 19)]  # Mon 15 absent, Wed 17 a holiday
    ts = np.array([int(dt.datetime.combine(d, dt.time(), dt.UTC).timestamp()) for d in days])
    buckets = weekly_buckets(ts, np.ones(3), np.ones(3))
    assert buckets.ts.tolist() == [ts[0]]


def test_stored_timeframes_pass_through_unchanged() -> None:
    bars = minute_bars([ist(MONDAY, "0915")], [10])
    out = resample(bars, Timeframe.M1)
    assert np.array_equal(out.ts, bars.ts)
    assert np.array_equal(out.close, bars.close)


def test_intraday_resampling_needs_sessions() -> None:
    with pytest.raises(ValueError, match="sessions"):
        resample(minute_bars([ist(MONDAY, "0915")], [10]), Timeframe.M5)


def test_unsorted_input_is_refused() -> None:
    bars = minute_bars([ist(MONDAY, "0915")], [3])
    reversed_bars = BarArrays(
        bars.ts[::-1], bars.open, bars.high, bars.low, bars.close, bars.volume
    )
    with pytest.raises(ValueError, match="increasing"):
        resample(reversed_bars, Timeframe.M5, nse_sessions(MONDAY, MONDAY))


def test_session_bounds_validation() -> None:
    with pytest.raises(ValueError, match="non-overlapping"):
        SessionBounds.of([(10, 20), (15, 30)])
    with pytest.raises(ValueError, match="non-empty"):
        SessionBounds.of([(10, 10)])


# -- pandas as the reference ---------------------------------------------------------


def pandas_reference(bars: BarArrays, sessions: SessionBounds, minutes: int) -> pd.DataFrame:
    """Per session, pandas' resample anchored at the session open, empty bins dropped."""
    frame = pd.DataFrame(
        {
            "open": bars.open,
            "high": bars.high,
            "low": bars.low,
            "close": bars.close,
            "volume": bars.volume,
        },
        index=pd.to_datetime(bars.ts, unit="s", utc=True),
    )
    pieces = []
    for start, end in zip(sessions.opens.tolist(), sessions.closes.tolist(), strict=True):
        part = frame[
            (frame.index >= pd.Timestamp(start, unit="s", tz="UTC"))
            & (frame.index < pd.Timestamp(end, unit="s", tz="UTC"))
        ]
        if part.empty:
            continue
        agg = part.resample(f"{minutes}min", origin=pd.Timestamp(start, unit="s", tz="UTC")).agg(
            {"open": "first", "high": "max", "low": "min", "close": "last", "volume": "sum"}
        )
        pieces.append(agg.dropna(subset=["open"]))
    return pd.concat(pieces)


@pytest.mark.parametrize("timeframe", [Timeframe.M5, Timeframe.M15, Timeframe.M30, Timeframe.H1])
def test_matches_pandas_on_random_sessions_with_gaps(timeframe: Timeframe) -> None:
    rng = np.random.default_rng(7)
    sessions = nse_sessions(dt.date(2024, 10, 1), dt.date(2024, 11, 29))
    minutes = np.concatenate(
        [
            np.arange(o, c, 60)
            for o, c in zip(sessions.opens.tolist(), sessions.closes.tolist(), strict=True)
        ]
    )
    ts = np.sort(rng.choice(minutes, size=minutes.shape[0] * 3 // 4, replace=False))
    close = 100 + np.cumsum(rng.normal(0, 0.3, ts.shape[0]))
    open_ = close + rng.normal(0, 0.1, ts.shape[0])
    high = np.maximum(open_, close) + rng.random(ts.shape[0])
    low = np.minimum(open_, close) - rng.random(ts.shape[0])
    volume = rng.integers(1, 1000, size=(len(ts),)).astype(np.float64)
    bars = BarArrays(ts, open_, high, low, close, volume)
    ours = resample(bars, timeframe, sessions)
    expected = pandas_reference(bars, sessions, timeframe.duration.seconds // 60)
    assert ours.ts.tolist() == [int(t.timestamp()) for t in expected.index]
    for column in ("open", "high", "low", "close", "volume"):
        assert np.array_equal(getattr(ours, column), expected[column].to_numpy()), column


def test_weekly_matches_pandas() -> None:
    rng = np.random.default_rng(11)
    days = get_calendar("NSE").trading_days(dt.date(2023, 1, 1), dt.date(2024, 12, 31))
    ts = np.array([int(dt.datetime.combine(d, dt.time(), dt.UTC).timestamp()) for d in days])
    close = 100 + np.cumsum(rng.normal(0, 1, ts.shape[0]))
    high, low = close + rng.random(ts.shape[0]), close - rng.random(ts.shape[0])
    bars = BarArrays(
        ts, close, high, low, close, rng.integers(1, 100, size=(len(ts),)).astype(np.float64)
    )
    ours = resample(bars, Timeframe.W1)
    frame = pd.DataFrame(
        {"ts": ts, "open": close, "high": high, "low": low, "close": close, "volume": bars.volume},
        index=pd.to_datetime(ts, unit="s"),
    )
    expected = (
        frame.resample("W-SUN")
        .agg(
            {
                "ts": "first",
                "open": "first",
                "high": "max",
                "low": "min",
                "close": "last",
                "volume": "sum",
            }
        )
        .dropna()
    )
    assert ours.ts.tolist() == expected["ts"].astype(np.int64).tolist()
    for column in ("open", "high", "low", "close", "volume"):
        assert np.array_equal(getattr(ours, column), expected[column].to_numpy()), column


# -- properties ----------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(
    keep=st.lists(st.booleans(), min_size=375, max_size=375),
    timeframe=st.sampled_from([Timeframe.M5, Timeframe.M15, Timeframe.M30, Timeframe.H1]),
    seed=st.integers(0, 2**32 - 1),
)
def test_bucket_invariants(keep: list[bool], timeframe: Timeframe, seed: int) -> None:
    rng = np.random.default_rng(seed)
    ts = ist(MONDAY, "0915") + 60 * np.flatnonzero(np.array(keep)).astype(np.int64)
    n = ts.shape[0]
    close = rng.normal(100, 5, n)
    high, low = close + rng.random(n), close - rng.random(n)
    bars = BarArrays(ts, close, high, low, close, rng.integers(0, 50, size=n).astype(np.float64))
    buckets = buckets_for(timeframe, ts, high, low, nse_sessions(MONDAY, MONDAY))
    out = resample(bars, timeframe, nse_sessions(MONDAY, MONDAY))
    width = timeframe.duration.seconds
    assert out.volume.sum() == bars.volume.sum()  # nothing lost, nothing invented
    assert len(out) == len({(t - ist(MONDAY, "0915")) // width for t in ts.tolist()})
    for k in range(len(out)):
        inside = (ts >= out.ts[k]) & (ts < out.ts[k] + width)
        assert out.high[k] == high[inside].max()
        assert out.low[k] == low[inside].min()
        assert buckets.first[k] == np.flatnonzero(inside)[0]
        assert buckets.last[k] == np.flatnonzero(inside)[-1]
        assert (out.ts[k] - ist(MONDAY, "0915")) % width == 0
