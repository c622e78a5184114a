"""Out-of-sample metrics of a signal: classification scores, the signal traded after costs,
and naive baselines to beat.

* ``hit_rate`` (accuracy of ``p > 0.5``), ``precision`` and ``recall`` of the "up" class,
  ``log_loss`` and ``brier`` of the probabilities (scikit-learn's definitions).
* The signal traded: position ``+1`` when ``p > threshold``, ``-1`` when shorts are
  allowed and ``p < 1 - threshold``, else flat, held from the close of the bar it is read
  at to the next close: ``r[t] = pos[t] * (close[t+1] / close[t] - 1) - cost * |pos[t] -
  pos[t-1]|`` where ``cost`` is the charges of trading one unit of notional (from the
  trading engine's charge tables).  ``sharpe`` is :func:`quantdesk.analytics.risk.sharpe`
  of ``r`` (annualised with the timeframe's periods per year), ``turnover`` the mean of
  ``|pos[t] - pos[t-1]|`` per bar, ``exposure`` the share of bars in the market.
* Baselines: ``always_up`` (predict up on every bar: its hit rate is the share of up
  labels), ``train_majority`` (each fold predicts its training set's majority class: the
  best a model that ignores the features can do without peeking), and buy and hold.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import numpy.typing as npt

from quantdesk.analytics.returns import wealth_index
from quantdesk.analytics.risk.measures import max_drawdown, sharpe

FloatArray = npt.NDArray[np.float64]


def _number(value: Any) -> float | None:
    number = float(value)
    return number if math.isfinite(number) else None


def classification(y: FloatArray, p: FloatArray) -> dict[str, float | None]:
    from sklearn.metrics import (
        accuracy_score,
        brier_score_loss,
        log_loss,
        precision_score,
        recall_score,
    )

    guess = (p > 0.5).astype(np.float64)
    return {
        "hit_rate": _number(accuracy_score(y, guess)),
        "precision": _number(precision_score(y, guess, zero_division=0.0)),
        "recall": _number(recall_score(y, guess, zero_division=0.0)),
        "log_loss": _number(log_loss(y, np.clip(p, 1e-15, 1 - 1e-15), labels=[0.0, 1.0])),
        "brier": _number(brier_score_loss(y, p)),
    }


def positions(p: FloatArray, threshold: float = 0.5, allow_short: bool = False) -> FloatArray:
    pos = np.where(p > threshold, 1.0, 0.0)
    if allow_short:
        pos = np.where(p < 1.0 - threshold, -1.0, pos)
    return pos


def traded(
    pos: FloatArray, next_return: FloatArray, cost: float, periods_per_year: float
) -> dict[str, float | None]:
    change = np.abs(np.diff(pos, prepend=0.0))
    returns = pos * next_return - cost * change
    return {
        "sharpe": _number(sharpe(returns, periods_per_year=periods_per_year)),
        "total_return": _number(wealth_index(returns)[-1] - 1.0) if returns.size else None,
        "max_drawdown": _number(max_drawdown(returns)) if returns.size else None,
        "turnover": _number(change.mean()) if change.size else None,
        "exposure": _number(np.abs(pos).mean()) if pos.size else None,
        "cost_per_turnover": cost,
    }
