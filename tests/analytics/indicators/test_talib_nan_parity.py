"""Every indicator the library exposes against TA-Lib on data with gaps (NaNs in the series).

TA-Lib does not check for NaN: a missing value flows through its arithmetic and its
comparisons, so where the output is NaN after a gap depends on each function's algorithm
(a recursion stays NaN for good, a rolling extreme may skip the gap or answer NaN for a few
bars), and its Python wrapper skips leading NaNs (``check_begidx``).  ``docs/indicators.md``
promises TA-Lib's output on such data, NaN positions included, so each case here is compared
with TA-Lib through the same assertion as the clean parity tests: identical NaN positions,
values within 1e-9 relative.

The test is parametrised over the registry, ``quantdesk.analytics.indicators.__all__``:
every public function must have reference cases here (a new indicator without one fails
``test_every_indicator_has_a_reference``).  The 28 TA-Lib functions use the cases of the
clean parity tests; the five TA-Lib lacks are compared with a reference built from TA-Lib's
pieces (``EMA``, ``ATR``, ``MAX``, ``MIN``, ``TYPPRICE``, ``WCLPRICE``) as each is defined.

The data are seeded random walks (and flat and machine-flat variants, where zero guards and
running-sum resets act) with gaps at several positions: leading runs in one input, an early
bar (inside most warm-ups), just past the warm-ups, the middle, the last bar, in one input
at a time and in all at once, singly and as runs, and one input missing entirely; a
hypothesis test then draws series, periods, MA types and gap positions at random.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import quantdesk.analytics.indicators as ind
from quantdesk.analytics.indicators.extra import PivotMethod
from tests.analytics.indicators.market_data import (
    Bars,
    FloatArray,
    flat_segments,
    machine_flat,
    random_walk,
)
from tests.analytics.indicators.test_talib_parity import (
    CASES,
    MA_TYPES,
    Case,
    Result,
    assert_matches_talib,
    talib,
)

SERIES = ("open", "high", "low", "close", "volume")


def with_gaps(
    bars: Bars, positions: tuple[int, ...], series: tuple[str, ...], run: int = 1
) -> Bars:
    """``bars`` with NaN at each of ``positions`` (``run`` bars long) in each of ``series``."""
    arrays = {name: getattr(bars, name).copy() for name in SERIES}
    for name in series:
        for position in positions:
            arrays[name][position : position + run] = np.nan
    return Bars(**arrays)


# References for the indicators TA-Lib does not have, from TA-Lib's own pieces.


def _donchian_reference(bars: Bars, period: int) -> Result:
    if period == 1:  # TA-Lib's MAX/MIN start at 2; a one-bar extreme is the bar itself
        upper, lower = bars.high.copy(), bars.low.copy()
    else:
        upper, lower = talib.MAX(bars.high, period), talib.MIN(bars.low, period)
    return upper, (upper + lower) * 0.5, lower


def _keltner_reference(bars: Bars, period: int, atr_period: int, multiplier: float) -> Result:
    middle = talib.EMA(bars.close, period)
    width = multiplier * talib.ATR(bars.high, bars.low, bars.close, atr_period)
    middle[np.isnan(width)] = np.nan
    return middle + width, middle, middle - width


def _supertrend_reference(bars: Bars, period: int, multiplier: float) -> Result:
    h, lo, c = bars.high, bars.low, bars.close
    band = talib.ATR(h, lo, c, period)
    n = len(c)
    line, direction = np.full(n, np.nan), np.full(n, np.nan)
    upper = lower = np.nan
    started = False
    for i in range(n):
        if np.isnan(band[i]):
            continue
        middle = (h[i] + lo[i]) / 2.0
        basic_upper, basic_lower = middle + multiplier * band[i], middle - multiplier * band[i]
        if not started:
            started, upper, lower = True, basic_upper, basic_lower
            line[i], direction[i] = upper, -1.0
            continue
        was_on_upper = line[i - 1] == upper
        if basic_lower > lower or c[i - 1] < lower:
            lower = basic_lower
        if basic_upper < upper or c[i - 1] > upper:
            upper = basic_upper
        up = c[i] > upper if was_on_upper else c[i] >= lower
        direction[i] = 1.0 if up else -1.0
        line[i] = lower if up else upper
    return line, direction


SESSION = 50  # bars per session in the VWAP cases


def _sessions(bars: Bars) -> npt.NDArray[np.int64]:
    return np.arange(len(bars), dtype=np.int64) // SESSION


def _vwap_reference(bars: Bars) -> Result:
    typical = talib.TYPPRICE(bars.high, bars.low, bars.close)
    sessions = _sessions(bars)
    out = np.full(len(bars), np.nan)
    value = volume = 0.0
    for i in range(len(bars)):
        if i == 0 or sessions[i] != sessions[i - 1]:
            value = volume = 0.0
        contribution = typical[i] * bars.volume[i]
        if np.isnan(contribution):
            continue
        value += contribution
        volume += bars.volume[i]
        if volume > 0.0:
            out[i] = value / volume
    return out


def _previous(series: FloatArray) -> FloatArray:
    return np.concatenate(([np.nan], series[:-1]))


def _pivot_reference(bars: Bars, method: str) -> Result:
    h, lo, c = _previous(bars.high), _previous(bars.low), _previous(bars.close)
    span = h - lo
    if method == "woodie":
        p = _previous(talib.WCLPRICE(bars.high, bars.low, bars.close))
    else:
        p = _previous(talib.TYPPRICE(bars.high, bars.low, bars.close))
    resistances: tuple[FloatArray, ...]
    supports: tuple[FloatArray, ...]
    if method == "fibonacci":
        resistances = (p + 0.382 * span, p + 0.618 * span, p + span)
        supports = (p - 0.382 * span, p - 0.618 * span, p - span)
    elif method == "camarilla":
        resistances = tuple(c + span * 1.1 / d for d in (12.0, 6.0, 4.0))
        supports = tuple(c - span * 1.1 / d for d in (12.0, 6.0, 4.0))
    else:  # classic and woodie
        resistances = (2.0 * p - lo, p + span, h + 2.0 * (p - lo))
        supports = (2.0 * p - h, p - span, lo - 2.0 * (h - p))
    return (p, *resistances, *supports)


def _pivot_levels(bars: Bars, method: PivotMethod) -> Result:
    levels = ind.pivot_points(bars.high, bars.low, bars.close, method)
    return (levels.p, levels.r1, levels.r2, levels.r3, levels.s1, levels.s2, levels.s3)


PIVOT_METHODS: tuple[PivotMethod, ...] = ("classic", "fibonacci", "camarilla", "woodie")


def _donchian_case(period: int) -> Case:
    return Case(
        f"donchian({period})",
        lambda b: ind.donchian(b.high, b.low, period),
        lambda b: _donchian_reference(b, period),
    )


def _keltner_case(period: int, atr_period: int, multiplier: float) -> Case:
    return Case(
        f"keltner({period},{atr_period},{multiplier})",
        lambda b: ind.keltner(b.high, b.low, b.close, period, atr_period, multiplier),
        lambda b: _keltner_reference(b, period, atr_period, multiplier),
    )


def _supertrend_case(period: int, multiplier: float) -> Case:
    return Case(
        f"supertrend({period},{multiplier})",
        lambda b: ind.supertrend(b.high, b.low, b.close, period, multiplier),
        lambda b: _supertrend_reference(b, period, multiplier),
    )


def _pivot_case(method: PivotMethod) -> Case:
    return Case(
        f"pivot_points({method})",
        lambda b: _pivot_levels(b, method),
        lambda b: _pivot_reference(b, method),
    )


EXTRA_CASES = [
    *[_donchian_case(period) for period in (1, 2, 5, 20)],
    *[_keltner_case(*args) for args in ((20, 10, 2.0), (5, 1, 1.5), (1, 14, 3.0))],
    *[_supertrend_case(*args) for args in ((10, 3.0), (1, 2.0), (7, 0.5))],
    Case(
        "vwap",
        lambda b: ind.vwap(b.high, b.low, b.close, b.volume, _sessions(b)),
        _vwap_reference,
    ),
    *[_pivot_case(method) for method in PIVOT_METHODS],
]


def _indicator_of(case: Case) -> str:
    return case.id.split("(", 1)[0]


# The registry: every public function, with the cases that check it.
REGISTRY = sorted(name for name in ind.__all__ if inspect.isfunction(getattr(ind, name)))
CASES_BY_INDICATOR: dict[str, list[Case]] = {}
for _case in [*CASES, *EXTRA_CASES]:
    CASES_BY_INDICATOR.setdefault(_indicator_of(_case), []).append(_case)


def test_every_indicator_has_a_reference() -> None:
    assert sorted(CASES_BY_INDICATOR) == REGISTRY
    assert len(REGISTRY) == 35  # 30 with a TA-Lib namesake (ma included) + 5 of our own


def test_extra_references_match_on_clean_data() -> None:
    # The hand-built references are only worth what they give on clean data too.
    bars = random_walk(500, seed=30)
    for case in EXTRA_CASES:
        assert_matches_talib(case.ours(bars), case.reference(bars))


BASE = {
    "random_walk": random_walk(400, seed=21),
    "flat_segments": flat_segments(400, seed=22),
    "machine_flat": machine_flat(400, seed=23),
}
# (name, positions, series, run).
GAP_PATTERNS: list[tuple[str, tuple[int, ...], tuple[str, ...], int]] = [
    # Leading NaNs in one input (the wrapper starts at the first bar where all are numbers),
    # then also an interior gap after them.
    ("close-lead@0x10", (0,), ("close",), 10),
    ("high-lead@0x4", (0,), ("high",), 4),
    ("low-lead@0x7", (0,), ("low",), 7),
    ("volume-lead@0x5,120x5", (0, 120), ("volume",), 5),
    ("all-lead@0x3,250x3", (0, 250), SERIES, 3),
    # Interior gaps.
    *[(f"{name}@3,40,399", (3, 40, 399), (name,), 1) for name in SERIES],
    *[(f"{name}@15,161", (15, 161), (name,), 1) for name in ("high", "low", "close")],
    ("all@29,200", (29, 200), SERIES, 1),
    ("close-run@60x35", (60,), ("close",), 35),
    ("high-run@45x6", (45,), ("high",), 6),
    ("volume-run@50x3", (50,), ("volume",), 3),
    # One input missing altogether.
    ("volume-missing", (0,), ("volume",), 400),
]
GAPPY = {
    f"{base}/{pattern}": with_gaps(bars, positions, series, run)
    for base, bars in BASE.items()
    for pattern, positions, series, run in GAP_PATTERNS
}


@pytest.mark.parametrize("data", GAPPY.values(), ids=GAPPY.keys())
@pytest.mark.parametrize("indicator", REGISTRY)
def test_matches_talib_with_gaps(indicator: str, data: Bars) -> None:
    for case in CASES_BY_INDICATOR[indicator]:
        try:
            assert_matches_talib(case.ours(data), case.reference(data))
        except AssertionError as exc:
            raise AssertionError(f"{case.id}: {exc}") from None


# Each defect named in issue 19, pinned to a small case of its own.


def test_mfi_is_nan_after_a_gap_not_zero() -> None:
    # A NaN poisons TA-Lib's running money-flow sums; we answered 0.0 ("oversold") instead.
    bars = with_gaps(random_walk(80, seed=1), (30,), ("volume",))
    result = ind.mfi(bars.high, bars.low, bars.close, bars.volume, 14)
    assert np.isnan(result[30:]).all()
    assert_matches_talib(result, talib.MFI(bars.high, bars.low, bars.close, bars.volume, 14))


@pytest.mark.parametrize("function", ["ATR", "NATR"])
def test_period_one_true_range_averages_stay_nan_after_a_gap(function: str) -> None:
    # TA-Lib runs the Wilder recursion even at period 1, so NaN never leaves it; TRANGE
    # (the same numbers on clean data) recovers on the next bar.
    bars = with_gaps(random_walk(40, seed=2), (20,), ("high",))
    ours = getattr(ind, function.lower())(bars.high, bars.low, bars.close, 1)
    assert np.isnan(ours[20:]).all()
    assert_matches_talib(ours, getattr(talib, function)(bars.high, bars.low, bars.close, 1))


def test_trix_of_period_one_stays_nan_after_a_gap() -> None:
    bars = with_gaps(random_walk(40, seed=3), (20,), ("close",))
    assert np.isnan(ind.trix(bars.close, 1)[20:]).all()
    assert_matches_talib(ind.trix(bars.close, 1), talib.TRIX(bars.close, 1))


def test_donchian_bands_each_skip_only_their_own_leading_nans() -> None:
    # The lower band's warm-up followed the NaNs at the start of ``high``.
    bars = with_gaps(random_walk(60, seed=6), (0,), ("high",), 4)
    upper, _, lower = ind.donchian(bars.high, bars.low, 5)
    assert np.isnan(upper[:8]).all()
    assert not np.isnan(lower[4:]).any()
    assert_matches_talib((upper, lower), (talib.MAX(bars.high, 5), talib.MIN(bars.low, 5)))


def test_an_input_without_any_number_starts_on_the_last_bar_as_talib() -> None:
    # TA-Lib's wrapper starts on the last bar when no bar has every input: OBV is then
    # that bar's volume, AD its (skipped) zero step.
    bars = with_gaps(random_walk(30, seed=7), (0,), ("close",), 30)
    h, lo, c, v = bars.high, bars.low, bars.close, bars.volume
    assert ind.obv(c, v)[-1] == v[-1]
    assert_matches_talib(ind.obv(c, v), talib.OBV(c, v))
    assert_matches_talib(ind.ad(h, lo, c, v), talib.AD(h, lo, c, v))


@pytest.mark.parametrize("period", [3, 5, 14])
def test_willr_treats_a_gap_as_talibs_block_scan_does(period: int) -> None:
    # TA-Lib 0.8's van Herk scan: a NaN opening a running extreme sticks, one met later is
    # skipped, so a window can answer NaN or an extreme that ignores the gap.
    for position in range(20, 20 + 2 * period):
        bars = with_gaps(random_walk(60, seed=4), (position,), ("high", "low"))
        h, lo, c = bars.high, bars.low, bars.close
        assert_matches_talib(ind.willr(h, lo, c, period), talib.WILLR(h, lo, c, period))


@pytest.mark.parametrize("period", [2, 5, 14])
def test_stoch_treats_a_gap_as_talibs_rescan_does(period: int) -> None:
    # TA-Lib's STOCH keeps the index of its extreme and rescans the window when it expires:
    # a rescan starting on a NaN answers NaN, a NaN met otherwise is skipped.
    for position in range(20, 20 + 2 * period):
        for series in (("high",), ("low",), ("high", "low")):
            bars = with_gaps(random_walk(70, seed=5), (position,), series)
            h, lo, c = bars.high, bars.low, bars.close
            assert_matches_talib(
                ind.stoch(h, lo, c, period, 3, 0, 3, 0), talib.STOCH(h, lo, c, period, 3, 0, 3, 0)
            )


# Random series, parameters and gaps.

gap_series = st.sets(st.sampled_from(SERIES), min_size=1, max_size=len(SERIES))


@st.composite
def gappy_bars(draw: st.DrawFn) -> Bars:
    length = draw(st.integers(1, 150))
    kind = draw(st.sampled_from([random_walk, flat_segments, machine_flat]))
    bars = kind(length, draw(st.integers(0, 2**32 - 1)))
    positions = tuple(draw(st.lists(st.integers(0, length - 1), min_size=1, max_size=4)))
    run = draw(st.integers(1, 4))
    return with_gaps(bars, positions, tuple(sorted(draw(gap_series))), run)


IndicatorPair = tuple[Callable[..., object], Callable[..., object]]


@settings(max_examples=150, deadline=None)
@given(bars=gappy_bars(), period=st.integers(2, 20), matype=st.sampled_from(MA_TYPES))
def test_matches_talib_on_random_gaps_and_parameters(bars: Bars, period: int, matype: int) -> None:
    h, lo, c, v = bars.high, bars.low, bars.close, bars.volume
    pairs: list[tuple[object, object]] = [
        (ind.ma(c, period, matype), talib.MA(c, period, matype)),
        (ind.sma(c, period), talib.SMA(c, period)),
        (ind.ema(c, period), talib.EMA(c, period)),
        (ind.wma(c, period), talib.WMA(c, period)),
        (ind.dema(c, period), talib.DEMA(c, period)),
        (ind.tema(c, period), talib.TEMA(c, period)),
        (ind.trima(c, period), talib.TRIMA(c, period)),
        (ind.kama(c, period), talib.KAMA(c, period)),
        (ind.t3(c, min(period, 8)), talib.T3(c, min(period, 8))),
        (ind.rsi(c, period), talib.RSI(c, period)),
        (ind.roc(c, period), talib.ROC(c, period)),
        (ind.mom(c, period), talib.MOM(c, period)),
        (ind.trix(c, period), talib.TRIX(c, period)),
        (ind.trix(c, 1), talib.TRIX(c, 1)),
        (
            ind.macd(c, period, period + 5, period // 2 + 1),
            talib.MACD(c, period, period + 5, period // 2 + 1),
        ),
        (ind.bbands(c, period, 1.5, 2.5, matype), talib.BBANDS(c, period, 1.5, 2.5, matype)),
        (
            ind.stoch(h, lo, c, period, 3, matype, 3, matype),
            talib.STOCH(h, lo, c, period, 3, matype, 3, matype),
        ),
        (ind.stoch(h, lo, c, period, 1, 0, 1, 0), talib.STOCH(h, lo, c, period, 1, 0, 1, 0)),
        (ind.stochrsi(c, period, 5, 3, matype), talib.STOCHRSI(c, period, 5, 3, matype)),
        (ind.atr(h, lo, c, period), talib.ATR(h, lo, c, period)),
        (ind.atr(h, lo, c, 1), talib.ATR(h, lo, c, 1)),
        (ind.natr(h, lo, c, period), talib.NATR(h, lo, c, period)),
        (ind.natr(h, lo, c, 1), talib.NATR(h, lo, c, 1)),
        (ind.trange(h, lo, c), talib.TRANGE(h, lo, c)),
        (ind.adx(h, lo, c, period), talib.ADX(h, lo, c, period)),
        (ind.plus_di(h, lo, c, period), talib.PLUS_DI(h, lo, c, period)),
        (ind.minus_di(h, lo, c, period), talib.MINUS_DI(h, lo, c, period)),
        (ind.plus_di(h, lo, c, 1), talib.PLUS_DI(h, lo, c, 1)),
        (ind.minus_di(h, lo, c, 1), talib.MINUS_DI(h, lo, c, 1)),
        (ind.cci(h, lo, c, period), talib.CCI(h, lo, c, period)),
        (ind.mfi(h, lo, c, v, period), talib.MFI(h, lo, c, v, period)),
        (ind.willr(h, lo, c, period), talib.WILLR(h, lo, c, period)),
        (ind.sar(h, lo), talib.SAR(h, lo)),
        (ind.obv(c, v), talib.OBV(c, v)),
        (ind.ad(h, lo, c, v), talib.AD(h, lo, c, v)),
        (ind.adosc(h, lo, c, v, period, period + 3), talib.ADOSC(h, lo, c, v, period, period + 3)),
        (ind.donchian(h, lo, period), _donchian_reference(bars, period)),
        (ind.keltner(h, lo, c, period, 5, 2.0), _keltner_reference(bars, period, 5, 2.0)),
        (ind.supertrend(h, lo, c, period, 3.0), _supertrend_reference(bars, period, 3.0)),
        (ind.vwap(h, lo, c, v, _sessions(bars)), _vwap_reference(bars)),
        (_pivot_levels(bars, "camarilla"), _pivot_reference(bars, "camarilla")),
    ]
    for ours, reference in pairs:
        assert_matches_talib(ours, reference)
