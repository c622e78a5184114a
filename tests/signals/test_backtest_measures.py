"""A backtest's risk measures by value: those of its equity curve's bar-to-bar returns, by
hand on a short series and equal to the risk issue's pure functions
(``quantdesk.analytics.risk``) on a longer one."""

from __future__ import annotations

import math
from decimal import Decimal

import numpy as np
import pytest

from quantdesk.analytics.returns import annual_return
from quantdesk.analytics.risk.measures import max_drawdown, sharpe, sortino, volatility
from quantdesk.analytics.risk.var import historical_cvar, historical_var
from quantdesk.signals.research.backtest import PriceBars, backtest_targets, risk_measures
from tests.signals.synthetic import DAY, START, random_walk
from tests.signals.test_backtest import BARS, STOCK


def test_measures_of_a_losing_short_by_hand() -> None:
    # Short 10 from bar 1's open (101) to bar 3's open (102.5), marked at the closes:
    # equity 10,000, 9,995, 9,990, 9,985, 9,985.
    targets = [Decimal(v) for v in (-10, -10, 0, 0, 0)]
    result = backtest_targets(BARS, targets, STOCK, capital=Decimal(10_000))
    assert result.equity == [Decimal(v) for v in (10_000, 9_995, 9_990, 9_985, 9_985)]
    r = [-5 / 10_000, -5 / 9_995, -5 / 9_990, 0.0]
    m = result.measures
    assert m["total_return"] == pytest.approx(-0.0015, rel=1e-12)
    assert m["max_drawdown"] == pytest.approx(0.0015, rel=1e-12)  # from the start, the peak
    mean, std = sum(r) / 4, float(np.std(r, ddof=1))
    assert m["sharpe"] == pytest.approx(mean / std * math.sqrt(252), rel=1e-12)
    assert m["volatility"] == pytest.approx(std * math.sqrt(252), rel=1e-12)
    # Sortino: mean x 252 over the root-mean-square shortfall below 0, annualised.
    downside = math.sqrt(sum(x * x for x in r) / 4) * math.sqrt(252)
    assert m["sortino"] == pytest.approx(mean * 252 / downside, rel=1e-12)
    # 95% historical VaR: the 5th percentile of the four returns, interpolated 0.15 of the
    # way from the worst (-5/9990) to the next (-5/9995); CVaR: the worst one alone.
    worst, next_worst = -5 / 9_990, -5 / 9_995
    assert m["var_95"] == pytest.approx(-(worst + 0.15 * (next_worst - worst)), rel=1e-12)
    assert m["cvar_95"] == pytest.approx(5 / 9_990, rel=1e-12)


def test_measures_are_the_risk_functions_of_the_equity_returns() -> None:
    walk = random_walk(300, seed=17)
    o, h, lo, c = ([f"{round(v / 0.05) * 0.05:.2f}" for v in column]
                   for column in (walk.open, walk.high, walk.low, walk.close))  # fmt: skip
    bars = PriceBars.of_text((START + DAY * np.arange(300)).tolist(), o, h, lo, c, DAY)
    # A rule that trades often: long after an up close, short after a down one.
    targets = [Decimal(0)] + [
        Decimal(10 if bars.close[i] > bars.close[i - 1] else -10) for i in range(1, 300)
    ]
    result = backtest_targets(bars, targets, STOCK, capital=Decimal(100_000))
    assert len(result.fills) > 50
    equity = np.array([float(e) for e in result.equity])
    returns = equity[1:] / equity[:-1] - 1
    expected = {
        "total_return": equity[-1] / equity[0] - 1,
        "annual_return": annual_return(returns, 252.0),
        "volatility": volatility(returns, 252.0),
        "sharpe": sharpe(returns, periods_per_year=252.0),
        "sortino": sortino(returns, periods_per_year=252.0),
        "max_drawdown": max_drawdown(returns),
        "var_95": historical_var(returns, 0.95),
        "cvar_95": historical_cvar(returns, 0.95),
    }
    assert result.measures == pytest.approx({k: float(v) for k, v in expected.items()},
                                            rel=1e-12)  # fmt: skip
    assert (result.measures["max_drawdown"] or 0) > 0
    # Intraday annualisation: the same equity at 75 bars a session.
    hourly = risk_measures(result.equity, 252.0 * 75)
    assert hourly["sharpe"] == pytest.approx(float(expected["sharpe"]) * math.sqrt(75), rel=1e-12)
    assert risk_measures(result.equity[:2], 252.0) == {"total_return": None}
