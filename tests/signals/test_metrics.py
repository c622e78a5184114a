"""Out-of-sample metrics by value: the classification scores against scikit-learn (and by
hand), the traded signal's turnover, exposure and cost-adjusted Sharpe worked by hand, and
the cost per unit of turnover from the India charge tables line by line."""

from __future__ import annotations

import datetime as dt
import math
from decimal import Decimal

import numpy as np
import pytest
from sklearn import metrics as sk

from quantdesk.signals.research.metrics import classification, positions, traded
from quantdesk.signals.research.training import TrainSpec, prepare, train_walk_forward
from quantdesk.signals.service import cost_per_turnover
from quantdesk.trading.engine.charges import DEFAULT_CHARGES
from tests.signals.synthetic import predictable

Y = np.array([1.0, 0.0, 1.0, 1.0, 0.0, 0.0])
P = np.array([0.9, 0.6, 0.4, 0.7, 0.2, 0.55])


def test_classification_scores_by_hand_and_as_sklearn() -> None:
    got = classification(Y, P)
    # p > 0.5 guesses up at rows 0, 1, 3, 5: true positives 0 and 3, false positives 1 and
    # 5, one false negative (row 2); rows 0, 3 and 4 are right.
    assert got["hit_rate"] == pytest.approx(3 / 6)
    assert got["precision"] == pytest.approx(2 / 4)
    assert got["recall"] == pytest.approx(2 / 3)
    # The probability given to what happened: 0.9, 0.4, 0.4, 0.7, 0.8, 0.45.
    by_hand = -sum(map(math.log, (0.9, 0.4, 0.4, 0.7, 0.8, 0.45))) / 6
    assert got["log_loss"] == pytest.approx(by_hand, rel=1e-12)
    assert got["brier"] == pytest.approx(float(np.mean((P - Y) ** 2)), rel=1e-12)
    guess = (P > 0.5).astype(float)
    assert got["precision"] == pytest.approx(sk.precision_score(Y, guess))
    assert got["recall"] == pytest.approx(sk.recall_score(Y, guess))
    assert got["log_loss"] == pytest.approx(sk.log_loss(Y, P))


def test_no_up_guess_scores_zero_precision_rather_than_nan() -> None:
    got = classification(np.array([1.0, 0.0]), np.array([0.2, 0.3]))
    assert (got["precision"], got["recall"], got["hit_rate"]) == (0.0, 0.0, 0.5)


def test_training_reports_sklearn_scores_of_its_out_of_sample_predictions() -> None:
    bars = predictable(300, seed=3)
    spec = TrainSpec(n_splits=4, threshold=0.55, allow_short=True, cost_per_turnover=0.001)
    result = train_walk_forward(bars, spec)
    data = prepare(bars, spec)
    y, p = data.y[result.oos_index], result.oos_probability
    m = result.metrics
    guess = (p > 0.5).astype(float)
    assert m["hit_rate"] == pytest.approx(sk.accuracy_score(y, guess), rel=1e-12)
    assert m["precision"] == pytest.approx(sk.precision_score(y, guess), rel=1e-12)
    assert m["recall"] == pytest.approx(sk.recall_score(y, guess), rel=1e-12)
    assert m["log_loss"] == pytest.approx(sk.log_loss(y, p), rel=1e-12)
    assert m["brier"] == pytest.approx(sk.brier_score_loss(y, p), rel=1e-12)
    # The traded signal, recomputed here from its definition in docs/signals.md.
    pos = np.where(p > 0.55, 1.0, np.where(p < 0.45, -1.0, 0.0))
    change = np.abs(np.diff(np.concatenate([[0.0], pos])))
    r = pos * data.next_return[result.oos_index] - 0.001 * change
    assert m["turnover"] == pytest.approx(change.mean(), rel=1e-12)
    assert m["exposure"] == pytest.approx(np.abs(pos).mean(), rel=1e-12)
    assert m["sharpe"] == pytest.approx(r.mean() / r.std(ddof=1) * math.sqrt(252), rel=1e-12)
    assert m["total_return"] == pytest.approx(np.prod(1 + r) - 1, rel=1e-9)


def test_turnover_and_exposure_of_a_small_position_series_by_hand() -> None:
    pos = positions(np.array([0.7, 0.6, 0.5, 0.2, 0.45, 0.8]), 0.55, allow_short=True)
    # 0.5 and 0.45 are inside (0.45, 0.55]: flat (0.45 is not below 1 - 0.55).
    assert pos.tolist() == [1.0, 1.0, 0.0, -1.0, 0.0, 1.0]
    got = traded(pos, np.zeros(6), cost=0.0, periods_per_year=252)
    # |change| from flat before the first bar: 1, 0, 1, 1, 1, 1; in the market 4 of 6 bars.
    assert got["turnover"] == pytest.approx(5 / 6)
    assert got["exposure"] == pytest.approx(4 / 6)
    assert positions(np.array([0.2, 0.7]), 0.55).tolist() == [0.0, 1.0]  # no shorts


def test_costs_lower_the_sharpe_by_the_hand_worked_amount() -> None:
    # In and out on every bar: |change| is 1 each bar, so costs shift every return by the
    # same 0.002 and leave the deviation sqrt(2e-4) alone.  Gross returns 0.03, 0, 0.01, 0:
    # mean 0.01, sample variance (4 + 1 + 0 + 1)e-4 / 3 = 2e-4.
    pos = np.array([1.0, 0.0, 1.0, 0.0])
    next_return = np.array([0.03, -0.05, 0.01, 0.07])
    gross = traded(pos, next_return, cost=0.0, periods_per_year=252)
    net = traded(pos, next_return, cost=0.002, periods_per_year=252)
    assert gross["sharpe"] == pytest.approx(0.01 / math.sqrt(2e-4) * math.sqrt(252), rel=1e-12)
    assert net["sharpe"] == pytest.approx(0.008 / math.sqrt(2e-4) * math.sqrt(252), rel=1e-12)
    assert gross["sharpe"] is not None
    assert net["sharpe"] is not None
    assert gross["sharpe"] - net["sharpe"] == pytest.approx(0.002 * math.sqrt(252 / 2e-4))
    assert net["total_return"] == pytest.approx(1.028 * 0.998 * 1.008 * 0.998 - 1, rel=1e-12)
    assert (net["turnover"], net["exposure"], net["cost_per_turnover"]) == (1.0, 0.5, 0.002)


DAY = dt.date(2025, 6, 2)


def test_cost_per_turnover_intraday_by_hand() -> None:
    # 1,000,500 of capital at 1000 buys 1000 shares (whole units): value 10 lakh each way.
    # Buy: brokerage 0.03% capped at Rs 20 -> 20; NSE transaction 0.00297% 29.70; IPFT
    # Rs 10/crore 1.00; SEBI Rs 10/crore 1.00; stamp 0.003% 30.00; GST 18% of
    # (20 + 29.70 + 1 + 1) = 9.306 -> 9.31: 91.01.  Sell: brokerage 20, STT 0.025% 250.00,
    # transaction 29.70, IPFT 1, SEBI 1, GST 9.31: 311.01.  Per unit of notional traded:
    # (91.01 + 311.01) / (2 x 1,000,000).
    mis = DEFAULT_CHARGES.for_instrument("NSE", "equity", "mis")
    cost = cost_per_turnover(mis, Decimal(1000), Decimal(1_000_500), Decimal(1), DAY)
    assert cost == float(Decimal("402.02") / Decimal(2_000_000))
    assert cost == 0.00020101


def test_cost_per_turnover_delivery_futures_and_edges() -> None:
    # Delivery, dated before the tables begin (charged at their earliest rates): STT 0.1%
    # both ways 1000; transaction 29.70, IPFT 1, SEBI 1, GST 18% of 31.70 = 5.71; stamp
    # 0.015% 150 on the buy: 1187.41 + 1037.41.
    cnc = DEFAULT_CHARGES.for_instrument("NSE", "equity", "cnc")
    early = dt.date(2024, 6, 3)
    assert cost_per_turnover(cnc, Decimal(1000), Decimal(10**6), Decimal(1), early) == float(
        Decimal("2224.82") / Decimal(2_000_000)
    )
    # A future of multiplier 2 at 1000: 500 units, 10 lakh of notional.  Buy: brokerage 20,
    # transaction 0.00173% 17.30, IPFT 1, SEBI 1, stamp 0.002% 20, GST 18% of 39.30 = 7.07:
    # 66.37.  Sell: 20, STT 0.02% 200, 17.30, 1, 1, GST 7.07: 246.37.
    fut = DEFAULT_CHARGES.for_instrument("NSE", "future", "nrml")
    assert cost_per_turnover(fut, Decimal(1000), Decimal(10**6), Decimal(2), DAY) == float(
        Decimal("312.74") / Decimal(2_000_000)
    )
    assert cost_per_turnover(None, Decimal(1000), Decimal(10**6), Decimal(1), DAY) == 0.0
    assert cost_per_turnover(cnc, Decimal(1000), Decimal(999), Decimal(1), DAY) == 0.0
