"""Synthetic bar series for the signals tests: seeded, i.i.d. returns unless told."""

from __future__ import annotations

import numpy as np

from quantdesk.signals.research.features import Bars

DAY = 86_400
START = 1_577_836_800  # 2020-01-01T00:00Z


def random_walk(n: int, seed: int = 0, drift: float = 0.0, vol: float = 0.01) -> Bars:
    rng = np.random.default_rng(seed)
    returns = rng.normal(drift, vol, n)
    close = 100.0 * np.exp(np.cumsum(returns))
    open_ = np.concatenate([[100.0], close[:-1]]) * (1 + rng.normal(0, vol / 5, n))
    high = np.maximum(open_, close) * (1 + np.abs(rng.normal(0, vol / 2, n)))
    low = np.minimum(open_, close) * (1 - np.abs(rng.normal(0, vol / 2, n)))
    volume = rng.integers(1_000, 5_000, n).astype(np.float64)
    return Bars.of(START + DAY * np.arange(n), open_, high, low, close, volume)


def predictable(n: int, seed: int = 0) -> Bars:
    """Returns that follow the previous one's sign (strong momentum): a model must find it."""
    rng = np.random.default_rng(seed)
    returns = np.empty(n)
    returns[0] = 0.01
    for t in range(1, n):
        returns[t] = (
            0.8
            * abs(rng.normal(0, 0.01))
            * np.sign(returns[t - 1])
            * (1 if rng.random() < 0.8 else -1)
        )
    close = 100.0 * np.exp(np.cumsum(returns))
    open_ = np.concatenate([[100.0], close[:-1]])
    high, low = np.maximum(open_, close) * 1.001, np.minimum(open_, close) * 0.999
    return Bars.of(START + DAY * np.arange(n), open_, high, low, close, np.full(n, 1000.0))
