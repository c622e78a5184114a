"""No feature uses the future: cut the series or scramble what comes after a bar, and every
feature up to that bar stays bit for bit the same.  Values checked against TA-Lib/NumPy."""

from __future__ import annotations

import numpy as np
import pytest
import talib

from quantdesk.signals.research.features import FEATURES, Bars, build_features
from tests.signals.synthetic import random_walk

BARS = random_walk(400, seed=3)


def _scramble_after(bars: Bars, t: int, seed: int) -> Bars:
    """The same bars up to ``t``, a different (still valid) future after it."""
    future = random_walk(len(bars) - t - 1, seed=seed)
    scale = bars.close[t] / 100.0
    columns = [np.array(c) for c in bars.columns()]
    for k, name in enumerate(("open", "high", "low", "close"), start=1):
        columns[k][t + 1 :] = getattr(future, name) * scale
    columns[5][t + 1 :] = future.volume * 7
    return Bars(*columns)


@pytest.mark.parametrize("t", [60, 61, 150, 398])
def test_no_feature_looks_ahead(t: int) -> None:
    full = build_features(BARS).values
    cut = build_features(BARS.head(t + 1)).values
    scrambled = build_features(_scramble_after(BARS, t, seed=t)).values
    np.testing.assert_array_equal(cut, full[: t + 1])
    np.testing.assert_array_equal(scrambled[: t + 1], full[: t + 1])
    # ...and the future does move them afterwards (the scramble is not a no-op).
    assert not np.array_equal(scrambled[t + 1 :], full[t + 1 :], equal_nan=True)


def test_feature_values_are_the_references() -> None:
    matrix = build_features(BARS)
    col = {name: matrix.values[:, k] for k, name in enumerate(matrix.names)}
    close = BARS.close
    np.testing.assert_allclose(col["rsi_14"], talib.RSI(close, 14) / 100, rtol=1e-12,
                               equal_nan=True)  # fmt: skip
    np.testing.assert_allclose(col["atr_14"], talib.ATR(BARS.high, BARS.low, close, 14) / close,
                               rtol=1e-12, equal_nan=True)  # fmt: skip
    np.testing.assert_allclose(col["sma_ratio_50"], close / talib.SMA(close, 50) - 1,
                               rtol=1e-12, equal_nan=True)  # fmt: skip
    t = 100
    logs = np.log(close[1:] / close[:-1])
    assert col["ret_5"][t] == pytest.approx(np.log(close[t] / close[t - 5]), rel=1e-12)
    assert col["vol_20"][t] == pytest.approx(np.std(logs[t - 20 : t], ddof=1), rel=1e-12)
    assert col["day_of_week"][0] == 2  # 2020-01-01 was a Wednesday
    assert matrix.complete_rows().argmax() == 49  # the 50-bar SMA's warm-up
    assert matrix.names == FEATURES


def test_unknown_features_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown features"):
        build_features(BARS, ["ret_1", "crystal_ball"])
