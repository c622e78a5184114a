"""Bad input fails loudly with ValueError; good input of any array-like shape is accepted."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import pytest
import talib

import quantdesk.analytics.indicators as ind
from tests.analytics.indicators.market_data import random_walk

BARS = random_walk(60, seed=21)
H, L, C, V = BARS.high, BARS.low, BARS.close, BARS.volume
# ``Any`` lets the tests pass deliberately wrong argument types.
api: Any = ind


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: ind.atr(H, L[:-1], C), "same length"),
        (lambda: ind.mfi(H, L, C, V[:10]), "volume=10"),
        (lambda: ind.obv(C, V[:-1]), "same length"),
        (lambda: ind.sar(H[:5], L), "same length"),
        (lambda: ind.vwap(H, L, C, V, np.zeros(5, dtype=int)), "session_ids has length 5"),
    ],
)
def test_mismatched_lengths(call: Callable[[], object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        call()


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: ind.sma(C, 0), "timeperiod must be between 1 and 100000, got 0"),
        (lambda: ind.ema(C, -3), "timeperiod must be between 1"),
        (lambda: ind.rsi(C, 1), "timeperiod must be between 2 and 100000, got 1"),
        (lambda: ind.adx(H, L, C, 1), "timeperiod must be between 2"),
        (lambda: ind.cci(H, L, C, 1), "timeperiod must be between 2"),
        (lambda: ind.willr(H, L, C, 1), "timeperiod must be between 2"),
        (lambda: ind.mfi(H, L, C, V, 1), "timeperiod must be between 2"),
        (lambda: ind.bbands(C, 1), "timeperiod must be between 2"),
        (lambda: ind.macd(C, 1, 26, 9), "fastperiod must be between 2"),
        (lambda: ind.macd(C, 12, 26, 0), "signalperiod must be between 1"),
        (lambda: ind.stoch(H, L, C, 0), "fastk_period must be between 1"),
        (lambda: ind.stochrsi(C, 14, 5, 0), "fastd_period must be between 1"),
        (lambda: ind.adosc(H, L, C, V, 1, 10), "fastperiod must be between 2"),
        (lambda: ind.sma(C, 100_001), "timeperiod must be between 1 and 100000, got 100001"),
        (lambda: ind.supertrend(H, L, C, 0), "timeperiod must be between 1"),
        (lambda: ind.keltner(H, L, C, 20, 0), "atr_period must be between 1"),
        (lambda: ind.donchian(H, L, 0), "timeperiod must be between 1"),
    ],
)
def test_periods_out_of_range(call: Callable[[], object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        call()


@pytest.mark.parametrize("period", [2.5, "14", True, None])
def test_periods_must_be_integers(period: object) -> None:
    with pytest.raises(ValueError, match="timeperiod must be an integer"):
        api.rsi(C, period)


def test_numpy_integer_periods_are_accepted() -> None:
    np.testing.assert_array_equal(api.rsi(C, np.int32(9)), ind.rsi(C, 9))


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: api.ma(C, 10, 7), "MAMA"),
        (lambda: api.ma(C, 10, 9), "matype must be between 0 and 8"),
        (lambda: api.bbands(C, 5, 2.0, 2.0, -1), "matype must be between 0 and 8"),
        (lambda: api.stoch(H, L, C, 5, 3, 7), "slowk_matype=7 \\(MAMA\\) is not implemented"),
        (lambda: api.bbands(C, 5, float("nan")), "nbdevup must be finite"),
        (lambda: api.sar(H, L, -0.01), "acceleration must be at least 0"),
        (lambda: api.sar(H, L, 0.02, "0.2"), "maximum must be a real number"),
        (lambda: api.supertrend(H, L, C, 10, -1.0), "multiplier must be at least 0"),
        (lambda: api.t3(C, 5, 1.5), "vfactor must be between 0 and 1"),
        (lambda: api.pivot_points(H, L, C, "demark"), "method must be 'classic'"),
    ],
)
def test_other_bad_parameters(call: Callable[[], object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        call()


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (np.ones((5, 2)), "close must be one-dimensional, got an array of shape \\(5, 2\\)"),
        (3.0, "one-dimensional, got an array of shape \\(\\)"),
        (["a", "b"], "close must be convertible to float64"),
        ([[1.0, 2.0], [3.0]], "close must be convertible to float64"),
    ],
)
def test_series_must_be_one_dimensional_numbers(values: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        api.sma(values, 2)


def test_the_offending_series_is_named() -> None:
    with pytest.raises(ValueError, match="low must be one-dimensional"):
        ind.atr(H, np.ones((60, 1)), C)


@pytest.mark.parametrize(
    ("session_ids", "message"),
    [
        (np.zeros(60), "session_ids must be integers, got dtype float64"),
        (np.zeros((60, 1), dtype=int), "session_ids must be one-dimensional"),
    ],
)
def test_session_ids_must_be_integer_labels(session_ids: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        api.vwap(H, L, C, V, session_ids)


def test_input_shorter_than_the_warm_up_is_all_nan_of_the_same_length() -> None:
    short = C[:10]
    for result in (ind.rsi(short), ind.sma(short), *ind.macd(short), ind.trix(short, 5)):
        assert result.shape == (10,)
        assert np.isnan(result).all()
    assert ind.rsi([]).shape == (0,)


def test_array_likes_are_accepted() -> None:
    expected = ind.rsi(C, 5)
    np.testing.assert_array_equal(ind.rsi(list(C), 5), expected)
    np.testing.assert_array_equal(ind.rsi(tuple(C), 5), expected)
    np.testing.assert_array_equal(ind.rsi(pd.Series(C), 5), expected)
    np.testing.assert_array_equal(
        ind.rsi(C.astype(np.float32).astype(np.float64), 5), ind.rsi(C.astype(np.float32), 5)
    )
    integers = np.arange(1, 41)
    np.testing.assert_array_equal(ind.sma(integers, 4), talib.SMA(integers.astype(float), 4))
    # A strided view is copied to a contiguous array rather than misread.
    strided = np.repeat(C, 2)[::2]
    np.testing.assert_array_equal(ind.ema(strided, 5), ind.ema(C, 5))


def test_inputs_are_not_modified() -> None:
    h, lo, c, v = H.copy(), L.copy(), C.copy(), V.copy()
    ind.bbands(c, 5, 2.0, 1.0, 1)
    ind.stoch(h, lo, c, 5, 3, 3, 3, 6)
    ind.adosc(h, lo, c, v)
    ind.supertrend(h, lo, c)
    for before, after in ((H, h), (L, lo), (C, c), (V, v)):
        np.testing.assert_array_equal(before, after)


def test_outputs_are_float64_arrays_of_the_input_length() -> None:
    results = [
        ind.sma(C),
        *ind.macd(C),
        *ind.bbands(C),
        *ind.stoch(H, L, C),
        ind.obv(C, V),
        *ind.supertrend(H, L, C),
        *ind.keltner(H, L, C),
        *ind.donchian(H, L),
        ind.vwap(H, L, C, V, np.zeros(60, dtype=np.int64)),
        *ind.pivot_points(H, L, C).as_dict().values(),
    ]
    for result in results:
        assert isinstance(result, np.ndarray)
        assert result.dtype == np.float64
        assert result.shape == (60,)
