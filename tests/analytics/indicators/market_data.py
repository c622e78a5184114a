"""Synthetic OHLCV series for the indicator tests.

Every generator returns sensible bars (``high >= max(open, close)``, ``low <= min(open,
close)``, ``volume > 0``) from a seeded geometric random walk, then shapes them into the
cases where indicators tend to disagree: strong trends, flat stretches with zero ranges,
"machine-flat" stretches that move only in the last bits, penny-scale prices and series
too short for the warm-up.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Bars:
    open: FloatArray
    high: FloatArray
    low: FloatArray
    close: FloatArray
    volume: FloatArray

    def __len__(self) -> int:
        return len(self.close)

    def head(self, n: int) -> Bars:
        return Bars(self.open[:n], self.high[:n], self.low[:n], self.close[:n], self.volume[:n])


def random_walk(n: int, seed: int, drift: float = 0.0, volatility: float = 0.015) -> Bars:
    """GBM closes from 100, opens near the previous close, wicks beyond both."""
    rng = np.random.default_rng(seed)
    close = 100.0 * np.exp(np.cumsum(rng.normal(drift, volatility, n)))
    previous = np.concatenate(([100.0], close[:-1]))
    open_ = previous * np.exp(rng.normal(0.0, volatility / 5, n))
    high = np.maximum(open_, close) * np.exp(np.abs(rng.normal(0.0, volatility / 2, n)))
    low = np.minimum(open_, close) * np.exp(-np.abs(rng.normal(0.0, volatility / 2, n)))
    volume = np.round(rng.lognormal(12.0, 0.6, n)) + 1.0
    return Bars(open_, high, low, close, volume)


def trending(n: int, seed: int) -> Bars:
    """A steady up-trend (about +0.4% a bar) with ordinary noise."""
    return random_walk(n, seed, drift=0.004, volatility=0.01)


def flat_segments(n: int, seed: int) -> Bars:
    """A random walk with stretches where open = high = low = close (zero ranges)."""
    bars = random_walk(n, seed)
    rng = np.random.default_rng(seed + 1)
    o, h, lo, c = bars.open.copy(), bars.high.copy(), bars.low.copy(), bars.close.copy()
    for begin in range(40, n, 350):
        end = min(n, begin + int(rng.integers(5, 250)))
        for series in (o, h, lo, c):
            series[begin:end] = c[begin]
    return Bars(o, h, lo, c, bars.volume)


def machine_flat(n: int, seed: int) -> Bars:
    """Stretches that move only by ~1e-14 relative, some bars without volume."""
    bars = random_walk(n, seed)
    rng = np.random.default_rng(seed + 2)
    o, h, lo, c = bars.open.copy(), bars.high.copy(), bars.low.copy(), bars.close.copy()
    v = bars.volume.copy()
    for begin in range(30, n, 300):
        end = min(n, begin + 150)
        level = c[begin]
        for series in (o, h, lo, c):
            series[begin:end] = level * (1.0 + rng.normal(0.0, 1e-14, end - begin))
        h[begin:end] = np.maximum.reduce([h[begin:end], o[begin:end], c[begin:end]])
        lo[begin:end] = np.minimum.reduce([lo[begin:end], o[begin:end], c[begin:end]])
        v[begin:end:3] = 0.0
    return Bars(o, h, lo, c, v)


def penny(n: int, seed: int) -> Bars:
    """Flat segments at a price scale of 1e-4 (fixed thresholds would misfire here)."""
    bars = flat_segments(n, seed)
    return Bars(bars.open * 1e-6, bars.high * 1e-6, bars.low * 1e-6, bars.close * 1e-6, bars.volume)
