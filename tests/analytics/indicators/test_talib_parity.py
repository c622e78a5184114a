"""Every TA-Lib-backed indicator against TA-Lib itself.

For each function, several parameter sets and several data sets (random walk, trend, flat
stretches with zero ranges, machine-flat stretches, penny prices, series shorter than the
warm-up and a long series): the NaN positions must be identical and every value within
1e-9 of TA-Lib relative to its magnitude.  On x86-64 with FMA the results are in fact
bit-identical, but the tolerance is the contract, so that is what is asserted.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
import talib as _talib
from hypothesis import given, settings
from hypothesis import strategies as st

import quantdesk.analytics.indicators as ind
from tests.analytics.indicators.market_data import (
    Bars,
    FloatArray,
    flat_segments,
    machine_flat,
    penny,
    random_walk,
    trending,
)

# TA-Lib's stubs type ``matype`` as its MA_Type enum; at run time it takes plain ints.
talib: Any = _talib

RELATIVE_TOLERANCE = 1e-9
MA_TYPES = (0, 1, 2, 3, 4, 5, 6, 8)  # every TA-Lib MAType but MAMA (7)

Result = Any  # one array or a tuple of arrays, as TA-Lib returns them


@dataclass(frozen=True)
class Case:
    id: str
    ours: Callable[[Bars], Result]
    reference: Callable[[Bars], Result]


def _as_arrays(result: Result) -> tuple[FloatArray, ...]:
    return tuple(result) if isinstance(result, tuple | list) else (result,)


def assert_matches_talib(ours: Result, reference: Result) -> None:
    """Same NaN positions; |ours - ref| <= 1e-9 * max(|ref|, typical |ref| of the output)."""
    ours_arrays, reference_arrays = _as_arrays(ours), _as_arrays(reference)
    assert len(ours_arrays) == len(reference_arrays)
    for mine, theirs in zip(ours_arrays, reference_arrays, strict=True):
        assert mine.dtype == np.float64
        assert mine.shape == theirs.shape
        np.testing.assert_array_equal(np.isnan(mine), np.isnan(theirs))
        valid = ~np.isnan(theirs)
        if not valid.any():
            continue
        magnitude = np.abs(theirs[valid])
        # Relative to the value, floored at the output's typical size, so that values
        # crossing zero (MACD, MOM) are not held to an impossible relative precision.
        scale = np.maximum(magnitude, np.median(magnitude))
        error = np.abs(mine[valid] - theirs[valid])
        worst = int(np.argmax(error / np.maximum(scale, np.finfo(float).tiny)))
        assert error[worst] <= RELATIVE_TOLERANCE * scale[worst], (
            f"bar {np.flatnonzero(valid)[worst]}: ours {mine[valid][worst]!r}, "
            f"TA-Lib {theirs[valid][worst]!r}"
        )


def _on_close(function: Callable[..., Result], *args: object) -> Callable[[Bars], Result]:
    return lambda bars: function(bars.close, *args)


def _on_hlc(function: Callable[..., Result], *args: object) -> Callable[[Bars], Result]:
    return lambda bars: function(bars.high, bars.low, bars.close, *args)


def _single_series_cases() -> list[Case]:
    table: list[tuple[str, Callable[..., Result], Callable[..., Result], tuple[int, ...]]] = [
        ("sma", ind.sma, talib.SMA, (1, 2, 9, 30)),
        ("ema", ind.ema, talib.EMA, (1, 2, 9, 30)),
        ("wma", ind.wma, talib.WMA, (1, 2, 9, 30)),
        ("dema", ind.dema, talib.DEMA, (1, 2, 9, 30)),
        ("tema", ind.tema, talib.TEMA, (1, 2, 9, 30)),
        ("trima", ind.trima, talib.TRIMA, (1, 2, 9, 30)),
        ("kama", ind.kama, talib.KAMA, (1, 2, 10, 30)),
        ("rsi", ind.rsi, talib.RSI, (2, 9, 14)),
        ("roc", ind.roc, talib.ROC, (1, 10)),
        ("mom", ind.mom, talib.MOM, (1, 10)),
        ("trix", ind.trix, talib.TRIX, (1, 5, 30)),
    ]
    cases = []
    for name, ours, reference, periods in table:
        for period in periods:
            cases.append(
                Case(f"{name}({period})", _on_close(ours, period), _on_close(reference, period))
            )
    return cases


def _price_bar_cases() -> list[Case]:
    table: list[tuple[str, Callable[..., Result], Callable[..., Result], tuple[int, ...]]] = [
        ("atr", ind.atr, talib.ATR, (1, 5, 14)),
        ("natr", ind.natr, talib.NATR, (1, 5, 14)),
        ("adx", ind.adx, talib.ADX, (2, 5, 14)),
        ("plus_di", ind.plus_di, talib.PLUS_DI, (1, 5, 14)),
        ("minus_di", ind.minus_di, talib.MINUS_DI, (1, 5, 14)),
        ("cci", ind.cci, talib.CCI, (2, 14, 40)),
        ("willr", ind.willr, talib.WILLR, (2, 14, 40)),
    ]
    cases = []
    for name, ours, reference, periods in table:
        for period in periods:
            cases.append(
                Case(f"{name}({period})", _on_hlc(ours, period), _on_hlc(reference, period))
            )
    return cases


def _ma_type_cases() -> list[Case]:
    cases = []
    for t in MA_TYPES:
        cases += [
            Case(f"ma(10,{t})", _on_close(ind.ma, 10, t), _on_close(talib.MA, 10, t)),
            Case(
                f"bbands(10,2,1.5,{t})",
                _on_close(ind.bbands, 10, 2.0, 1.5, t),
                _on_close(talib.BBANDS, 10, 2.0, 1.5, t),
            ),
            Case(
                f"stoch(5,3,{t},4,{t})",
                _on_hlc(ind.stoch, 5, 3, t, 4, t),
                _on_hlc(talib.STOCH, 5, 3, t, 4, t),
            ),
            Case(
                f"stochrsi(14,5,3,{t})",
                _on_close(ind.stochrsi, 14, 5, 3, t),
                _on_close(talib.STOCHRSI, 14, 5, 3, t),
            ),
        ]
    return cases


OTHER_CASES = [
    Case("t3(5)", lambda b: ind.t3(b.close, 5), lambda b: talib.T3(b.close, 5)),
    Case("t3(3,0.5)", lambda b: ind.t3(b.close, 3, 0.5), lambda b: talib.T3(b.close, 3, 0.5)),
    Case("macd", lambda b: ind.macd(b.close), lambda b: talib.MACD(b.close)),
    Case(
        "macd(5,35,5)",
        lambda b: ind.macd(b.close, 5, 35, 5),
        lambda b: talib.MACD(b.close, 5, 35, 5),
    ),
    Case(
        "macd(26,12,1)",  # slow < fast: swapped, as TA-Lib does
        lambda b: ind.macd(b.close, 26, 12, 1),
        lambda b: talib.MACD(b.close, 26, 12, 1),
    ),
    Case("bbands(5)", lambda b: ind.bbands(b.close, 5), lambda b: talib.BBANDS(b.close, 5)),
    Case(
        "bbands(20,1,3)",
        lambda b: ind.bbands(b.close, 20, 1.0, 3.0),
        lambda b: talib.BBANDS(b.close, 20, 1.0, 3.0),
    ),
    Case(
        "trange",
        lambda b: ind.trange(b.high, b.low, b.close),
        lambda b: talib.TRANGE(b.high, b.low, b.close),
    ),
    Case(
        "stoch(14,1,0,1,0)",
        lambda b: ind.stoch(b.high, b.low, b.close, 14, 1, 0, 1, 0),
        lambda b: talib.STOCH(b.high, b.low, b.close, 14, 1, 0, 1, 0),
    ),
    Case(
        "stochrsi(9,9,1,0)",
        lambda b: ind.stochrsi(b.close, 9, 9, 1, 0),
        lambda b: talib.STOCHRSI(b.close, 9, 9, 1, 0),
    ),
    Case(
        "mfi(14)",
        lambda b: ind.mfi(b.high, b.low, b.close, b.volume, 14),
        lambda b: talib.MFI(b.high, b.low, b.close, b.volume, 14),
    ),
    Case(
        "mfi(2)",
        lambda b: ind.mfi(b.high, b.low, b.close, b.volume, 2),
        lambda b: talib.MFI(b.high, b.low, b.close, b.volume, 2),
    ),
    Case("obv", lambda b: ind.obv(b.close, b.volume), lambda b: talib.OBV(b.close, b.volume)),
    Case("sar", lambda b: ind.sar(b.high, b.low), lambda b: talib.SAR(b.high, b.low)),
    Case(
        "sar(0.05,0.3)",
        lambda b: ind.sar(b.high, b.low, 0.05, 0.3),
        lambda b: talib.SAR(b.high, b.low, 0.05, 0.3),
    ),
    Case(
        "sar(0.3,0.1)",  # acceleration above the maximum is lowered to it
        lambda b: ind.sar(b.high, b.low, 0.3, 0.1),
        lambda b: talib.SAR(b.high, b.low, 0.3, 0.1),
    ),
    Case(
        "ad",
        lambda b: ind.ad(b.high, b.low, b.close, b.volume),
        lambda b: talib.AD(b.high, b.low, b.close, b.volume),
    ),
    Case(
        "adosc",
        lambda b: ind.adosc(b.high, b.low, b.close, b.volume),
        lambda b: talib.ADOSC(b.high, b.low, b.close, b.volume),
    ),
    Case(
        "adosc(10,3)",
        lambda b: ind.adosc(b.high, b.low, b.close, b.volume, 10, 3),
        lambda b: talib.ADOSC(b.high, b.low, b.close, b.volume, 10, 3),
    ),
]

CASES = _single_series_cases() + _price_bar_cases() + _ma_type_cases() + OTHER_CASES

DATA_SETS = {
    "random_walk": random_walk(2500, seed=1),
    "trending": trending(2500, seed=2),
    "flat_segments": flat_segments(2500, seed=3),
    "machine_flat": machine_flat(2500, seed=4),
    "penny": penny(2500, seed=5),
}


@pytest.mark.parametrize("data", DATA_SETS.values(), ids=DATA_SETS.keys())
@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_matches_talib(case: Case, data: Bars) -> None:
    assert_matches_talib(case.ours(data), case.reference(data))


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_matches_talib_on_series_around_the_warm_up(case: Case) -> None:
    # Every length from empty to past the longest warm-up here (TRIX(30): 88 bars).
    bars = random_walk(100, seed=6)
    for length in (*range(40), 60, 88, 89, 100):
        assert_matches_talib(case.ours(bars.head(length)), case.reference(bars.head(length)))


LONG = random_walk(200_000, seed=7)
LONG_CASES = [
    case
    for case in CASES
    if case.id
    in {
        "sma(30)",
        "ema(30)",
        "wma(30)",
        "dema(30)",
        "tema(30)",
        "trima(30)",
        "kama(30)",
        "rsi(14)",
        "trix(30)",
        "atr(14)",
        "natr(14)",
        "adx(14)",
        "plus_di(14)",
        "minus_di(14)",
        "cci(14)",
        "willr(14)",
        "macd",
        "bbands(5)",
        "t3(5)",
        "mfi(14)",
        "obv",
        "sar",
        "ad",
        "adosc",
        "trange",
        "roc(10)",
        "mom(10)",
        "stoch(5,3,0,4,0)",
        "stochrsi(14,5,3,0)",
    }
]


@pytest.mark.parametrize("case", LONG_CASES, ids=[case.id for case in LONG_CASES])
def test_matches_talib_on_a_long_series(case: Case) -> None:
    # Running sums and recursions over 200,000 bars: drift would show here.
    assert_matches_talib(case.ours(LONG), case.reference(LONG))


def test_long_cases_cover_every_function() -> None:
    assert len(LONG_CASES) == 29


DEFAULT_CALLS: list[tuple[str, Callable[[Bars], Result], Callable[[Bars], Result]]] = [
    ("sma", lambda b: ind.sma(b.close), lambda b: talib.SMA(b.close)),
    ("ema", lambda b: ind.ema(b.close), lambda b: talib.EMA(b.close)),
    ("wma", lambda b: ind.wma(b.close), lambda b: talib.WMA(b.close)),
    ("dema", lambda b: ind.dema(b.close), lambda b: talib.DEMA(b.close)),
    ("tema", lambda b: ind.tema(b.close), lambda b: talib.TEMA(b.close)),
    ("trima", lambda b: ind.trima(b.close), lambda b: talib.TRIMA(b.close)),
    ("kama", lambda b: ind.kama(b.close), lambda b: talib.KAMA(b.close)),
    ("rsi", lambda b: ind.rsi(b.close), lambda b: talib.RSI(b.close)),
    ("macd", lambda b: ind.macd(b.close), lambda b: talib.MACD(b.close)),
    ("atr", lambda b: ind.atr(b.high, b.low, b.close), lambda b: talib.ATR(b.high, b.low, b.close)),
    (
        "natr",
        lambda b: ind.natr(b.high, b.low, b.close),
        lambda b: talib.NATR(b.high, b.low, b.close),
    ),
    ("adx", lambda b: ind.adx(b.high, b.low, b.close), lambda b: talib.ADX(b.high, b.low, b.close)),
    (
        "plus_di",
        lambda b: ind.plus_di(b.high, b.low, b.close),
        lambda b: talib.PLUS_DI(b.high, b.low, b.close),
    ),
    (
        "minus_di",
        lambda b: ind.minus_di(b.high, b.low, b.close),
        lambda b: talib.MINUS_DI(b.high, b.low, b.close),
    ),
    (
        "stoch",
        lambda b: ind.stoch(b.high, b.low, b.close),
        lambda b: talib.STOCH(b.high, b.low, b.close),
    ),
    ("stochrsi", lambda b: ind.stochrsi(b.close), lambda b: talib.STOCHRSI(b.close)),
    ("cci", lambda b: ind.cci(b.high, b.low, b.close), lambda b: talib.CCI(b.high, b.low, b.close)),
    (
        "mfi",
        lambda b: ind.mfi(b.high, b.low, b.close, b.volume),
        lambda b: talib.MFI(b.high, b.low, b.close, b.volume),
    ),
    ("roc", lambda b: ind.roc(b.close), lambda b: talib.ROC(b.close)),
    ("mom", lambda b: ind.mom(b.close), lambda b: talib.MOM(b.close)),
    (
        "willr",
        lambda b: ind.willr(b.high, b.low, b.close),
        lambda b: talib.WILLR(b.high, b.low, b.close),
    ),
    ("trix", lambda b: ind.trix(b.close), lambda b: talib.TRIX(b.close)),
    ("sar", lambda b: ind.sar(b.high, b.low), lambda b: talib.SAR(b.high, b.low)),
    (
        "adosc",
        lambda b: ind.adosc(b.high, b.low, b.close, b.volume),
        lambda b: talib.ADOSC(b.high, b.low, b.close, b.volume),
    ),
    ("ma", lambda b: ind.ma(b.close), lambda b: talib.MA(b.close)),
    ("t3", lambda b: ind.t3(b.close), lambda b: talib.T3(b.close)),
]


@pytest.mark.parametrize(
    ("ours", "reference"),
    [(ours, reference) for _, ours, reference in DEFAULT_CALLS],
    ids=[name for name, _, _ in DEFAULT_CALLS],
)
def test_defaults_are_talibs(
    ours: Callable[[Bars], Result], reference: Callable[[Bars], Result]
) -> None:
    assert_matches_talib(ours(DATA_SETS["random_walk"]), reference(DATA_SETS["random_walk"]))


def test_bbands_default_period_is_talibs_twenty() -> None:
    # TA-Lib 0.8.1 (the reference) defaults to 20; TA-Lib 0.4/0.6 used 5.
    close = DATA_SETS["random_walk"].close
    assert_matches_talib(ind.bbands(close), talib.BBANDS(close, 20))
    assert_matches_talib(ind.bbands(close), talib.BBANDS(close))


def test_leading_nans_are_skipped_as_talib_does() -> None:
    bars = random_walk(300, seed=8)
    close = bars.close.copy()
    close[:7] = np.nan
    high = bars.high.copy()
    high[:3] = np.nan
    assert_matches_talib(ind.ema(close, 10), talib.EMA(close, 10))
    assert_matches_talib(ind.rsi(close), talib.RSI(close))
    assert_matches_talib(ind.macd(close), talib.MACD(close))
    assert_matches_talib(ind.stochrsi(close), talib.STOCHRSI(close))
    assert_matches_talib(ind.atr(high, bars.low, close), talib.ATR(high, bars.low, close))
    assert_matches_talib(ind.stoch(high, bars.low, close), talib.STOCH(high, bars.low, close))
    assert_matches_talib(ind.ema(ind.rsi(close), 5), talib.EMA(talib.RSI(close), 5))


@settings(max_examples=60, deadline=None)
@given(
    length=st.integers(0, 120),
    seed=st.integers(0, 2**32 - 1),
    period=st.integers(2, 30),
    matype=st.sampled_from(MA_TYPES),
)
def test_matches_talib_on_random_series_and_parameters(
    length: int, seed: int, period: int, matype: int
) -> None:
    bars = random_walk(length, seed)
    h, lo, c, v = bars.high, bars.low, bars.close, bars.volume
    assert_matches_talib(ind.ma(c, period, matype), talib.MA(c, period, matype))
    assert_matches_talib(ind.rsi(c, period), talib.RSI(c, period))
    assert_matches_talib(
        ind.bbands(c, period, 1.5, 2.5, matype), talib.BBANDS(c, period, 1.5, 2.5, matype)
    )
    assert_matches_talib(
        ind.macd(c, period, period + 5, period // 2 + 1),
        talib.MACD(c, period, period + 5, period // 2 + 1),
    )
    assert_matches_talib(
        ind.stoch(h, lo, c, period, 3, matype, 3, matype),
        talib.STOCH(h, lo, c, period, 3, matype, 3, matype),
    )
    assert_matches_talib(
        ind.stochrsi(c, period, 5, 3, matype), talib.STOCHRSI(c, period, 5, 3, matype)
    )
    assert_matches_talib(ind.adx(h, lo, c, period), talib.ADX(h, lo, c, period))
    assert_matches_talib(ind.cci(h, lo, c, period), talib.CCI(h, lo, c, period))
    assert_matches_talib(ind.mfi(h, lo, c, v, period), talib.MFI(h, lo, c, v, period))
    assert_matches_talib(ind.willr(h, lo, c, period), talib.WILLR(h, lo, c, period))
    assert_matches_talib(ind.trix(c, period), talib.TRIX(c, period))
    assert_matches_talib(
        ind.adosc(h, lo, c, v, period, period + 3), talib.ADOSC(h, lo, c, v, period, period + 3)
    )
    assert_matches_talib(ind.sar(h, lo), talib.SAR(h, lo))


def test_worked_example_from_the_docs() -> None:
    # docs/indicators.md, "A worked example".
    close = [
        44.34,
        44.09,
        44.15,
        43.61,
        44.33,
        44.83,
        45.10,
        45.42,
        45.84,
        46.08,
        45.89,
        46.03,
        45.61,
        46.28,
        46.28,
        46.00,
        46.03,
        46.41,
        46.22,
        45.64,
    ]
    # EMA(5): seed (44.34+44.09+44.15+43.61+44.33)/5 = 44.104, then +(44.83-44.104)/3.
    np.testing.assert_allclose(ind.ema(close, 5)[4:6], [44.104, 44.346], rtol=1e-12)
    assert np.isnan(ind.ema(close, 5)[:4]).all()
    # RSI(14): gains 3.34 and losses 1.40 over bars 1-14 -> averages 0.238571 and 0.1;
    # bar 15 loses 0.28 -> 0.221531 against 0.112857.
    gain, loss = 3.34 / 14, 1.40 / 14
    first = 100 * gain / (gain + loss)
    gain, loss = gain * 13 / 14, (loss * 13 + 0.28) / 14
    second = 100 * gain / (gain + loss)
    np.testing.assert_allclose(ind.rsi(close, 14)[14:16], [first, second], rtol=1e-12)
    assert round(first, 2) == 70.46
    assert round(second, 2) == 66.25
