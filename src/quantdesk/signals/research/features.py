"""Features of a bar series: returns, volatility, indicator values and calendar features.

Every feature at bar ``t`` is a function of the bars ``0..t`` only (their close included:
a signal is read when bar ``t`` closes and acts on the next bar).  The indicators come from
:mod:`quantdesk.analytics.indicators`, which are TA-Lib's definitions and recursive from the
past only; returns and rolling statistics are written here with windows that end at ``t``.
``tests/signals/test_features.py`` proves it by cutting and by scrambling the future.

Warm-up rows are NaN (the longest window is ``sma_ratio_50``: 49 bars); training drops
rows with any NaN feature.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from numpy.lib.stride_tricks import sliding_window_view

from quantdesk.analytics import indicators

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

FEATURES: tuple[str, ...] = (
    "ret_1",
    "ret_5",
    "ret_20",
    "vol_20",
    "rsi_14",
    "macd_hist",
    "bb_pctb_20",
    "atr_14",
    "sma_ratio_50",
    "adx_14",
    "volume_z_20",
    "day_of_week",
    "month",
)
"""The default feature set, in column order (``docs/signals.md`` defines each)."""


@dataclass(frozen=True, slots=True, eq=False)
class Bars:
    """One instrument's bars as float64 columns; ``ts`` is the bar open in epoch seconds."""

    ts: IntArray
    open: FloatArray
    high: FloatArray
    low: FloatArray
    close: FloatArray
    volume: FloatArray

    def __len__(self) -> int:
        return int(self.ts.shape[0])

    def head(self, n: int) -> Bars:
        """The first ``n`` bars (a copy)."""
        return Bars(*(np.array(column[:n]) for column in self.columns()))

    def columns(self) -> tuple[npt.NDArray[np.generic], ...]:
        return (self.ts, self.open, self.high, self.low, self.close, self.volume)

    @classmethod
    def of(
        cls,
        ts: npt.ArrayLike,
        open: npt.ArrayLike,
        high: npt.ArrayLike,
        low: npt.ArrayLike,
        close: npt.ArrayLike,
        volume: npt.ArrayLike,
    ) -> Bars:
        def f(values: npt.ArrayLike) -> FloatArray:
            return np.ascontiguousarray(values, dtype=np.float64)

        return cls(np.asarray(ts, dtype=np.int64), f(open), f(high), f(low), f(close), f(volume))


@dataclass(frozen=True, slots=True, eq=False)
class FeatureMatrix:
    names: tuple[str, ...]
    values: FloatArray  # (bars, features)

    def complete_rows(self) -> npt.NDArray[np.bool_]:
        """Rows where every feature is known (past the warm-up)."""
        return np.asarray(np.isfinite(self.values).all(axis=1))


def _lagged_log_return(close: FloatArray, k: int) -> FloatArray:
    out = np.full(close.shape, np.nan)
    if close.shape[0] > k:
        with np.errstate(divide="ignore", invalid="ignore"):
            out[k:] = np.log(close[k:] / close[:-k])
    return out


def _trailing(values: FloatArray, window: int, ddof: int, what: str) -> FloatArray:
    """Mean or sample standard deviation over the ``window`` values ending at each row."""
    out = np.full(values.shape, np.nan)
    if values.shape[0] >= window:
        windows = sliding_window_view(values, window)
        out[window - 1 :] = windows.std(axis=1, ddof=ddof) if what == "std" else windows.mean(1)
    return out


def _calendar(ts: IntArray) -> tuple[FloatArray, FloatArray]:
    days = [dt.datetime.fromtimestamp(int(t), dt.UTC) for t in ts]
    weekday = np.array([d.weekday() for d in days], dtype=np.float64)
    month = np.array([d.month for d in days], dtype=np.float64)
    return weekday, month


def feature_columns(bars: Bars) -> dict[str, FloatArray]:
    close, high, low, volume = bars.close, bars.high, bars.low, bars.volume
    one = _lagged_log_return(close, 1)
    upper, _middle, lower = indicators.bbands(close, 20)
    _macd, _signal, hist = indicators.macd(close)
    with np.errstate(divide="ignore", invalid="ignore"):
        width = upper - lower
        pctb = np.where(width > 0, (close - lower) / np.where(width > 0, width, 1.0), 0.5)
        pctb = np.where(np.isfinite(upper), pctb, np.nan)
        vol_mean = _trailing(volume, 20, 0, "mean")
        vol_std = _trailing(volume, 20, 1, "std")
        volume_z = np.where(vol_std > 0, (volume - vol_mean) / np.where(vol_std > 0, vol_std, 1), 0)
        volume_z = np.where(np.isfinite(vol_mean), volume_z, np.nan)
        columns = {
            "ret_1": one,
            "ret_5": _lagged_log_return(close, 5),
            "ret_20": _lagged_log_return(close, 20),
            "vol_20": _trailing(one, 20, 1, "std"),
            "rsi_14": indicators.rsi(close, 14) / 100.0,
            "macd_hist": hist / close,
            "bb_pctb_20": pctb,
            "atr_14": indicators.atr(high, low, close, 14) / close,
            "sma_ratio_50": close / indicators.sma(close, 50) - 1.0,
            "adx_14": indicators.adx(high, low, close, 14) / 100.0,
            "volume_z_20": volume_z,
        }
    weekday, month = _calendar(bars.ts)
    columns["day_of_week"] = weekday
    columns["month"] = month
    return columns


def build_features(bars: Bars, names: Sequence[str] = FEATURES) -> FeatureMatrix:
    unknown = sorted(set(names) - set(FEATURES))
    if unknown:
        raise ValueError(f"unknown features {unknown}; available: {', '.join(FEATURES)}")
    columns = feature_columns(bars)
    if not names:
        return FeatureMatrix((), np.empty((len(bars), 0)))
    values = np.column_stack([columns[name] for name in names])
    return FeatureMatrix(tuple(names), np.ascontiguousarray(values, dtype=np.float64))
