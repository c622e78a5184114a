"""The bar-to-quote replay (``backtest_targets``, maximum quote age zero) fills as paper
trading does: the same bars' quotes fed to paper sessions through the API, with each order
placed when the replay places it (after the signal bar's close quote has gone stale), give
the same fills at the same prices, for market and for DAY limit orders.

Paper's stale-quote age is a setting (30 s by default); here it is 50 ms, and the test
waits past it before each order, as the replay's clock has moved past the close quote when
it places one: so paper's order too waits for the next bar's open."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from quantdesk.settings import Settings
from quantdesk.signals.research.backtest import (
    Contract,
    Execution,
    backtest_targets,
    bar_quotes,
)
from quantdesk.trading.engine.positions import tidy
from tests.conftest import base_settings
from tests.signals.test_backtest import BARS, TARGETS
from tests.trading.conftest import TICK, Desk

KEY = "SIM:ALPHA"
QUOTE_AGE_S = 0.05
SIZE = 10_000_000  # the replay's sizes are unlimited
CAPITAL = Decimal(10_000_000)  # a paper account's default: one crore


@pytest.fixture
def settings(database_url: str, redis_url: str | None, tmp_path: Path) -> Settings:
    base = base_settings(database_url, tmp_path / "var", redis_url)
    return base.model_copy(update={"trading_max_quote_age_s": QUOTE_AGE_S})


def _text(value: Decimal | None) -> str:
    assert value is not None  # bar quotes carry every price
    return format(tidy(value), "f")


async def test_the_replay_fills_as_paper_sessions_fed_its_quotes(desk: Desk) -> None:
    contract = Contract(KEY, TICK)
    limit = Execution("limit")
    market_run = backtest_targets(BARS, TARGETS, contract, capital=CAPITAL, half_spread_ticks=1)
    limit_run = backtest_targets(BARS, TARGETS, contract, capital=CAPITAL, half_spread_ticks=1,
                                 execution=limit)  # fmt: skip

    r = await desk.client.post("/api/v1/accounts", json={"name": "limits"},
                               headers=desk.trader.headers)  # fmt: skip
    assert r.status_code == 201, r.text
    limits_url = f"/api/v1/accounts/{r.json()['id']}"

    async def place_limit(side: str, price: Decimal) -> None:
        body = {"instrument": KEY, "side": side, "quantity": 10, "type": "limit",
                "limit_price": _text(price), "time_in_force": "day"}  # fmt: skip
        r = await desk.client.post(f"{limits_url}/orders", json=body, headers=desk.trader.headers)
        assert r.status_code == 201, r.text

    held = Decimal(0)
    for i in range(len(BARS)):
        # A bar's quotes in order (the bus keeps it), then the matcher let catch up.
        for q in bar_quotes(BARS, i, KEY, TICK, half_spread_ticks=1):
            body = {"key": KEY, "bid": _text(q.bid), "bid_size": SIZE, "ask": _text(q.ask),
                    "ask_size": SIZE, "last": _text(q.last or q.bid)}  # fmt: skip
            r = await desk.client.post("/api/v1/admin/demo/quotes", json=body,
                                       headers=desk.admin.headers)  # fmt: skip
            assert r.status_code == 200, r.text
        await desk.settle()
        change = TARGETS[i] - held
        if change == 0:
            continue
        held = TARGETS[i]
        await asyncio.sleep(2 * QUOTE_AGE_S)  # the close quote is stale now
        side = "buy" if change > 0 else "sell"
        await desk.place(side=side, quantity=int(abs(change)), type="market",
                         time_in_force="day")  # fmt: skip
        await place_limit(side, BARS.close[i])  # the replay's limit: the close, offset 0

    def replayed(run: Any) -> list[tuple[str, str]]:
        return [(_text(f.quantity), _text(f.price)) for f in run.fills]

    assert await desk.fills() == replayed(market_run)
    r = await desk.client.get(f"{limits_url}/fills", headers=desk.trader.headers)
    paper_limits = [(f["quantity"], f["price"]) for f in reversed(r.json()["items"])]
    assert paper_limits == replayed(limit_run)
    # ...and by hand, with one tick either side of each bar price.  Market: bought at bar
    # 1's open ask 101.05, sold at bar 3's open bid 102.45.  Limit: the buy at 100.5 rests
    # above bar 1's open ask and fills at its price when bar 1's low (ask 100.05) comes; the
    # sell at 102 is through at bar 3's open bid, 102.45.
    assert replayed(market_run) == [("10", "101.05"), ("10", "102.45")]
    assert replayed(limit_run) == [("10", "100.5"), ("10", "102.45")]
    assert [f.liquidity for f in limit_run.fills] == ["maker", "taker"]
    account = await desk.get("")
    assert Decimal(account["cash"]) == market_run.cash[-1]
