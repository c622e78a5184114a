"""A signal's entries and exits as DAY limit and stop orders off the signal bar's close, on
the engine paper trading runs: fills, elections and non-fills worked by hand, the DAY
validity (the session's close, as paper's placement sets it), and the same through the
API."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import httpx
import pytest
from fastapi import FastAPI

from quantdesk.marketdata.bars.repository import BarStore
from quantdesk.marketdata.domain import Timeframe
from quantdesk.platform.context import AppContext
from quantdesk.signals.research.backtest import (
    BacktestResult,
    Contract,
    Execution,
    PriceBars,
    backtest_targets,
    day_order_ends,
    targets_from_probability,
)
from quantdesk.signals.service import price_bars
from quantdesk.trading.engine.types import Side
from tests.conftest import UserFactory
from tests.signals.conftest import wait_for_job
from tests.signals.synthetic import DAY, START
from tests.signals.test_backtest import BARS, STOCK, TARGETS

CAPITAL = Decimal(10_000)


def _when(epoch: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(epoch, dt.UTC)


def limit(offset: str) -> Execution:
    return Execution("limit", Decimal(offset))


def fills(result: BacktestResult) -> list[tuple[str, Decimal, Decimal, str]]:
    return [(f.side, f.quantity, f.price, f.liquidity) for f in result.fills]


def test_the_limit_price_is_the_close_moved_in_the_orders_favour_on_the_tick() -> None:
    tick = Decimal("0.05")
    assert limit("0").limit_price(Side.BUY, Decimal("100.5"), tick) == Decimal("100.5")
    # 100.5 x (1 - 0.005) = 99.9975: a buy rounds down to 99.95, a sell 101.0025 up to 101.05.
    assert limit("50").limit_price(Side.BUY, Decimal("100.5"), tick) == Decimal("99.95")
    assert limit("50").limit_price(Side.SELL, Decimal("100.5"), tick) == Decimal("101.05")
    # A negative offset crosses the close: a buy up to 101.0025 -> 101.00.
    assert limit("-50").limit_price(Side.BUY, Decimal("100.5"), tick) == Decimal("101")
    with pytest.raises(ValueError, match="within"):
        limit("1001")
    with pytest.raises(ValueError, match="limit orders"):
        Execution("market", Decimal(5))


def stop(offset: str) -> Execution:
    return Execution("stop", Decimal(offset))


def test_the_stop_price_is_the_close_moved_against_the_order_on_the_tick() -> None:
    tick = Decimal("0.05")
    # 100.5 x 1.005 = 101.0025: a buy stop rounds up to 101.05; x 0.995 = 99.9975, a sell
    # stop down to 99.95 (away from the market: never nearer than the offset asks).
    assert stop("50").stop_price(Side.BUY, Decimal("100.5"), tick) == Decimal("101.05")
    assert stop("50").stop_price(Side.SELL, Decimal("100.5"), tick) == Decimal("99.95")
    assert stop("0").stop_price(Side.SELL, Decimal("100.5"), tick) == Decimal("100.5")
    with pytest.raises(ValueError, match="0 or more"):
        stop("-5")


def test_stops_elect_on_the_last_price_and_expire_unelected_by_hand() -> None:
    # Buy stop 101.05 at bar 0's close (100.5 x 1.005, up).  Bar 1 (closed up: open 101,
    # low 100, high 102, close 101.5): the open's last 101 and the low miss it, the high's
    # 102 elects it and it fills as a market order on that quote, at 102 (a taker).
    # Sell stop at bar 2's close 102 x 0.995 = 101.49 -> 101.45: bar 3 (low 102) never
    # trades there, so it expires with bar 3 and is placed again at its close, 103 x 0.995
    # = 102.485 -> 102.45; bar 4's low 102 elects it: sold at 102.
    result = backtest_targets(BARS, TARGETS, STOCK, capital=CAPITAL, execution=stop("50"))
    assert fills(result) == [
        ("buy", Decimal(10), Decimal(102), "taker"),
        ("sell", Decimal(10), Decimal(102), "taker"),
    ]
    assert [f.ts for f in result.fills] == [
        dt.datetime(2025, 1, 7, 16, 0, tzinfo=dt.UTC),  # bar 1's high (2/3 into the bar)
        dt.datetime(2025, 1, 10, 8, 0, tzinfo=dt.UTC),  # bar 4's low (1/3 into it)
    ]
    assert result.expired == 1
    # Cash: 10,000 - 1,020 while long (marked 1,015, 1,020, 1,030), the unelected sell stop
    # reserving nothing; then 8,980 + 1,020.
    assert result.equity == [Decimal(v) for v in (10_000, 9_995, 10_000, 10_010, 10_000)]
    assert result.trades[0]["pnl"] == Decimal(0)


# Gaps: bar 1 opens 3 above bar 0's close, bar 2 opens 2.5 below bar 1's.
GAPS = PriceBars.of_text(
    [BARS.ts[k] for k in range(3)],
    ["100", "103", "101"],
    ["100.5", "104", "101.5"],
    ["99.5", "102.5", "100"],
    ["100", "103.5", "100.5"],
    86_400,
)


def test_a_gap_through_the_stop_fills_at_the_market_not_the_trigger() -> None:
    # Long 10 from bar 0's close, flat from bar 1's: buy stop 100 x 1.01 = 101, elected by
    # bar 1's open of 103 and filled there; sell stop 103.5 x 0.99 = 102.465 -> 102.45,
    # elected by bar 2's open of 101 and filled there: (101 - 103) x 10 = -20.
    targets = [Decimal(10), Decimal(0), Decimal(0)]
    result = backtest_targets(GAPS, targets, STOCK, capital=CAPITAL, execution=stop("100"))
    assert fills(result) == [
        ("buy", Decimal(10), Decimal(103), "taker"),
        ("sell", Decimal(10), Decimal(101), "taker"),
    ]
    assert [f.ts for f in result.fills] == [_when(GAPS.ts[1]), _when(GAPS.ts[2])]
    assert result.trades[0]["pnl"] == Decimal(-20)
    assert result.equity[-1] == CAPITAL - 20


def test_limit_fills_by_hand_on_daily_bars() -> None:
    # The rule of test_backtest.py: long 10 from bar 0's close, flat from bar 2's close.
    # Buy limit at bar 0's close 100.5: bar 1 opens at 101 (above it), then its low 100
    # comes (it closed up: low first) and the resting limit fills at its price, a maker.
    # Sell limit at bar 2's close 102: bar 3 opens at 102.5, through it: filled at the
    # open, a taker (the order waited for that quote, as a market order does).
    result = backtest_targets(BARS, TARGETS, STOCK, capital=CAPITAL, execution=limit("0"))
    assert fills(result) == [
        ("buy", Decimal(10), Decimal("100.5"), "maker"),
        ("sell", Decimal(10), Decimal("102.5"), "taker"),
    ]
    assert result.fills[0].ts == dt.datetime(2025, 1, 7, 8, 0, tzinfo=dt.UTC)  # bar 1's low
    # Cash 10,000 - 1,005 = 8,995 while long: + 1,015, + 1,020; then 8,995 + 1,025.
    assert result.equity == [Decimal(v) for v in (10_000, 10_010, 10_015, 10_020, 10_020)]
    assert result.trades[0]["pnl"] == Decimal(20)  # the market orders' run made 15
    assert result.expired == 0


def test_limits_that_are_not_reached_expire_and_are_replaced_at_the_next_close() -> None:
    # 50 bp below the close: 99.95 at bar 0's close; bar 1's low is 100, so it expires
    # unfilled with bar 1 (valid for the next bar by default) and the buy is placed again
    # at bar 1's close, 101.5 x 0.995 = 100.9925 -> 100.95: bar 2's low is 101.  Then the
    # target is flat: nothing traded, two orders expired.
    result = backtest_targets(BARS, TARGETS, STOCK, capital=CAPITAL, execution=limit("50"))
    assert result.fills == []
    assert result.equity == [CAPITAL] * 5
    assert (result.expired, result.summary()["expired"]) == (2, 2)
    # Free cash at each close: each live order reserves its value (99.95 x 10, then
    # 100.95 x 10) until it expires.
    assert result.cash == [Decimal(v) for v in ("10000", "9000.5", "8990.5", "10000", "10000")]
    # 50 bp through the close: a buy limit of 101.00 fills at bar 1's open of 101.
    crossing = backtest_targets(BARS, TARGETS, STOCK, capital=CAPITAL, execution=limit("-50"))
    assert fills(crossing) == [
        ("buy", Decimal(10), Decimal(101), "taker"),
        ("sell", Decimal(10), Decimal("102.5"), "taker"),  # limit 102 x 0.995 -> 101.50
    ]


HOUR = 3600
T = int(dt.datetime(2025, 1, 6, 3, 45, tzinfo=dt.UTC).timestamp())
# Five hourly bars: a session closing after bar 2, the next one after bar 4.
HOURS = PriceBars.of_text(
    [T + HOUR * k for k in range(5)],
    ["100", "100", "100.5", "99.6", "99.9"],
    ["100.5", "101", "100.6", "100", "100.2"],
    ["99.5", "99.8", "99.4", "99.2", "99.5"],
    ["100", "100.5", "99.6", "99.8", "100"],
    HOUR,
)
CLOSES = [T + 3 * HOUR, T + 5 * HOUR, T + 100 * HOUR]


def test_a_day_order_ends_at_the_session_close_as_paper_places_it() -> None:
    # Placed at a bar's end: the session's close; placed at the close itself (the market
    # shut, an after-market order for paper), the next session's.
    assert day_order_ends(HOURS, CLOSES) == [CLOSES[0], CLOSES[0], CLOSES[1], CLOSES[1],
                                             CLOSES[2]]  # fmt: skip


def test_a_day_limit_lives_through_its_session_by_hand() -> None:
    targets = [Decimal(v) for v in (10, 10, 10, 0, 0)]
    ends = day_order_ends(HOURS, CLOSES)
    result = backtest_targets(HOURS, targets, STOCK, capital=CAPITAL, execution=limit("50"),
                              day_ends=ends)  # fmt: skip
    # Buy limit 100 x 0.995 = 99.50 at bar 0's close, live through the session: bar 1's low
    # 99.8 misses it, bar 2's 99.4 reaches it (the high 100.6 first: it closed down).  The
    # sell at bar 3's close, 99.8 x 1.005 = 100.299 -> 100.30, is missed by bar 4's high
    # 100.2 and expires with the second session: still long.
    assert fills(result) == [("buy", Decimal(10), Decimal("99.5"), "maker")]
    assert result.fills[0].ts == dt.datetime.fromtimestamp(T + 2 * HOUR + 2 * HOUR // 3, dt.UTC)
    assert result.position == [Decimal(v) for v in (0, 0, 10, 10, 10)]
    assert result.expired == 1
    # Valid for one bar only, the first buy would have expired with bar 1 and been placed
    # again at its close, 100.5 x 0.995 -> 99.95: bar 2's low fills that instead.
    one_bar = backtest_targets(HOURS, targets, STOCK, capital=CAPITAL, execution=limit("50"))
    assert fills(one_bar) == [("buy", Decimal(10), Decimal("99.95"), "maker")]
    assert one_bar.expired == 2


async def test_a_signal_backtest_with_limit_orders_through_the_api(
    client: httpx.AsyncClient, make_user: UserFactory, bars_market: list[str], app: FastAPI
) -> None:
    trader = await make_user(role="trader")
    end = dt.datetime.fromtimestamp(START + 220 * DAY, dt.UTC)
    r = await client.post("/api/v1/signals/models", headers=trader.headers,
                          json={"name": "lim", "instruments": ["SIM:ALPHA"], "n_splits": 2,
                                "seed": 3, "end": end.isoformat()})  # fmt: skip
    model_id = (await wait_for_job(client, r.json()["id"], trader.headers))["result"]["models"][0][
        "model_id"
    ]
    request = {"model_id": model_id, "quantity": "10", "capital": "10000", "charges": False,
               "order_type": "limit", "limit_offset_bps": "100"}  # fmt: skip
    r = await client.post("/api/v1/signals/backtests", json=request, headers=trader.headers)
    assert r.status_code == 202, r.text
    job = await wait_for_job(client, r.json()["id"], trader.headers)
    assert job["status"] == "done", job["error"]
    (run,) = job["result"]["runs"]
    assert run["fills"]
    # SIM's sessions are IST days: a DAY order placed at a daily bar's end (00:00 UTC)
    # expires at 18:30 UTC that day, so it is live for the next bar alone.  The same
    # replay by hand, from the run's own bars and signal:
    ctx: AppContext = app.state.ctx
    async with ctx.database.session() as db:
        series = await BarStore(db).series("SIM:ALPHA", Timeframe.D1, start=_when(run["t"][0]),
                                           limit=len(run["t"]))  # fmt: skip
    assert series.ts.tolist() == run["t"]
    bars = price_bars(series, Timeframe.D1)
    targets = targets_from_probability([float("nan") if p is None else p for p in run["signal"]],
                                       Decimal(10))  # fmt: skip
    ends = [t + DAY + 18 * HOUR + 1800 for t in run["t"]]
    replay = backtest_targets(bars, targets, Contract("SIM:ALPHA", Decimal("0.05")),
                              capital=CAPITAL, execution=limit("100"), day_ends=ends)  # fmt: skip
    assert [(f["side"], f["quantity"], f["price"], f["liquidity"]) for f in run["fills"]] == [
        (f.side, format(f.quantity, "f"), format(f.price.normalize(), "f"), f.liquidity)
        for f in replay.fills
    ]
    assert run["account"]["expired"] == replay.expired > 0
    assert Decimal(run["final_equity"]) == replay.equity[-1]
    # Its measures are the risk functions of that equity (test_backtest_measures.py).
    assert run["measures"] == pytest.approx(replay.measures, rel=1e-12)
    for bad in (
        {"order_type": "market", "limit_offset_bps": "5"},
        {"order_type": "stop", "stop_offset_bps": "-5"},
        {"order_type": "limit", "stop_offset_bps": "5"},
        {"order_type": "stop", "limit_offset_bps": "5"},
        {"order_type": "limit", "limit_offset_bps": "2000"},
    ):
        r = await client.post("/api/v1/signals/backtests", json={"model_id": model_id} | bad,
                              headers=trader.headers)  # fmt: skip
        assert r.status_code == 422, bad
    # A saved strategy's schedule takes the same order types: past validation, to the
    # strategy's lookup (test_schedule_orders.py runs one).
    schedule = {"strategy_id": "00000000-0000-4000-8000-000000000000", "order_type": "limit"}
    r = await client.post("/api/v1/signals/backtests", json=schedule, headers=trader.headers)
    assert r.status_code == 404, r.text
