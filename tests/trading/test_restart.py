"""A restart loses and duplicates nothing: triggered stops stay triggered, GTC orders stay
open, and a tick delivered again after the restart does not fill twice."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal

import httpx
from typer.testing import CliRunner

from quantdesk.app import create_app
from quantdesk.cli import app as cli
from quantdesk.marketdata.domain import Quote
from quantdesk.marketdata.instruments.service import InstrumentService
from quantdesk.marketdata.quotes.service import QuoteService
from quantdesk.settings import Settings
from tests.marketdata.providers.demo.test_cli import environment
from tests.support.factories import Users
from tests.trading.conftest import Desk, assert_ledgers_balance, sim_instruments


@asynccontextmanager
async def running(settings: Settings) -> AsyncIterator[tuple[object, httpx.AsyncClient]]:
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application, client=("203.0.113.10", 50000))
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            yield application, c


async def _new_desk(application: object, client: httpx.AsyncClient) -> Desk:
    """The SIM instruments, a trader with an account, and an admin, on a fresh app."""
    ctx = application.state.ctx  # type: ignore[attr-defined]
    async with ctx.database.session(immediate=True) as db:
        await InstrumentService(db).upsert_many(sim_instruments())
    users = Users(application, client)  # type: ignore[arg-type]
    trader, admin = await users.logged_in("trader"), await users.logged_in("admin")
    r = await client.post("/api/v1/accounts", json={}, headers=trader.headers)
    return Desk(application, client, trader, admin, r.json()["id"])  # type: ignore[arg-type]


async def test_restart_keeps_triggers_gtc_orders_and_fills_exactly_once(
    settings: Settings,
) -> None:
    async with running(settings) as (application, client):
        desk = await _new_desk(application, client)
        ctx, trader, admin = desk.ctx, desk.trader, desk.admin
        await desk.quote("SIM:ALPHA", "99.95", 500, "100.05", 300, "100.00")
        await desk.quote("SIM:BETA", "100.80", 500, "101.50", 300, "100.90")
        stop = await desk.place(
            instrument="SIM:BETA", side="buy", quantity=100, type="stop_limit",
            stop_price="101.00",
            limit_price="101.20", time_in_force="gtc",
        )  # fmt: skip
        await desk.trade("SIM:BETA", "101.05", 10)
        assert (await desk.order(stop["id"]))["triggered"] is True
        resting = await desk.place(
            side="buy", quantity=1000, type="limit", limit_price="100.00", time_in_force="gtc"
        )
        # A quote with a known id fills 300 of the resting order.
        again = Quote(
            "SIM:ALPHA", Decimal("99.95"), dt.datetime.now(dt.UTC), bid=Decimal("99.90"),
            ask=Decimal("99.95"), bid_size=Decimal(500), ask_size=Decimal(300),
            source_id="replayed-quote-1",
        )  # fmt: skip
        await QuoteService(ctx.cache, ctx.bus).publish([again])
        await desk.settle()
        assert await desk.fills(resting["id"]) == [("300", "100.00")]
        assert await desk.fills(stop["id"]) == []
    async with running(settings) as (application, client):
        ctx = application.state.ctx  # type: ignore[attr-defined]
        desk = Desk(application, client, trader, admin, desk.account_id)  # type: ignore[arg-type]
        await desk.settle()
        assert (await desk.order(stop["id"]))["triggered"] is True
        assert (await desk.order(resting["id"]))["status"] == "partially_filled"
        # The same tick delivered again (a replay after the restart): not a second fill.
        await QuoteService(ctx.cache, ctx.bus).publish([again])
        await desk.settle()
        assert await desk.fills(resting["id"]) == [("300", "100.00")]
        # Fresh ticks trade both: the triggered stop-limit at its limit, the GTC order's rest.
        await desk.quote("SIM:BETA", "101.10", 500, "101.15", 300, "101.10")
        assert await desk.fills(stop["id"]) == [("100", "101.20")]
        await desk.quote("SIM:ALPHA", "99.90", 500, "99.95", 2000, "99.95")
        assert await desk.fills(resting["id"]) == [("300", "100.00"), ("700", "100.00")]
        await assert_ledgers_balance(ctx)
    verify = ["admin", "verify-ledger"]
    result = await asyncio.to_thread(CliRunner().invoke, cli, verify, env=environment(settings))
    assert result.exit_code == 0, result.output
    assert "ledger ok" in result.output


async def test_restart_keeps_groups_and_trailing_stops(settings: Settings) -> None:
    async with running(settings) as (application, client):
        desk = await _new_desk(application, client)
        ctx, trader, admin = desk.ctx, desk.trader, desk.admin
        await desk.quote("SIM:ALPHA", "99.95", 500, "100.05", 300, "100.00")
        await desk.quote("SIM:BETA", "99.95", 500, "100.05", 300, "100.00")
        await desk.place(side="buy", quantity=100, type="market")
        trailing = await desk.place(
            side="sell", quantity=100, type="trailing_stop", trail_percent="1",
            time_in_force="gtc",
        )  # fmt: skip
        await desk.quote("SIM:ALPHA", "104.95", 500, "105.05", 300, "105.00")
        entry = await desk.place(
            instrument="SIM:BETA", side="buy", quantity=100, type="limit", limit_price="100.00",
            time_in_force="gtc", order_class="bracket", take_profit={"limit_price": "101.00"},
            stop_loss={"stop_price": "99.00"},
        )  # fmt: skip
        tp, sl = entry["legs"]
        await desk.trade("SIM:BETA", "100.00", 40)  # the exits work for 40
    async with running(settings) as (application, client):
        ctx = application.state.ctx  # type: ignore[attr-defined]
        desk = Desk(application, client, trader, admin, desk.account_id)  # type: ignore[arg-type]
        await desk.settle()
        # Restored with its mark: a lower last price does not loosen the stop (from 104.50
        # it would start again at 103.45), and 103.90 elects it.
        await desk.quote("SIM:ALPHA", "104.45", 500, "104.55", 300, "104.50")
        assert (await desk.order(trailing["id"]))["stop_price"] == "103.95"
        await desk.quote("SIM:ALPHA", "103.85", 500, "103.95", 300, "103.90")
        assert await desk.fills(trailing["id"]) == [("100", "103.85")]
        # The bracket's exits came back active for the 40 filled, no more.
        assert (await desk.order(sl["id"]))["status"] == "new"
        await desk.trade("SIM:BETA", "101.00", 100)
        assert await desk.fills(tp["id"]) == [("40", "101.00")]
        assert (await desk.order(sl["id"]))["quantity"] == "60"
        await assert_ledgers_balance(ctx)


async def test_restart_keeps_a_resting_mleg_order_and_fills_it_once(settings: Settings) -> None:
    from tests.trading.test_margins_api import ATM, OTM, options

    async with running(settings) as (application, client):
        desk = await _new_desk(application, client)
        ctx, trader, admin = desk.ctx, desk.trader, desk.admin
        await options(desk)  # 20000 CE 200.00/200.10, 20200 CE 119.95/120.05
        # A call spread for a debit of at most 75: the quotes ask 200.10 - 119.95 = 80.15.
        spread = await desk.place(
            order_class="mleg", quantity=50, type="limit", limit_price="75.00",
            time_in_force="gtc", product="nrml", instrument=None,
            legs=[{"instrument": ATM, "side": "buy", "ratio": 1},
                  {"instrument": OTM, "side": "sell", "ratio": 1}],
        )  # fmt: skip
        assert spread["status"] == "new"
    async with running(settings) as (application, client):
        ctx = application.state.ctx  # type: ignore[attr-defined]
        desk = Desk(application, client, trader, admin, desk.account_id)  # type: ignore[arg-type]
        await desk.settle()
        assert (await desk.order(spread["id"]))["status"] == "new"
        # Without Redis the quote cache is the process's own and starts empty: the near leg
        # is quoted again (unchanged) before the far leg's move.
        await desk.quote(ATM, "200.00", 500, "200.10", 500, "200.00")
        # The far leg's bid rises: 200.10 - 125.10 = 75.00 reaches the limit.
        await desk.quote(OTM, "125.10", 500, "125.20", 500, "125.15")
        legs = (await desk.order(spread["id"]))["legs"]
        assert [await desk.fills(leg["id"]) for leg in legs] == [
            [("50", "200.10")], [("50", "125.10")],
        ]  # fmt: skip
        # The same quote again (a replay): nothing fills twice.
        await desk.quote(OTM, "125.10", 500, "125.20", 500, "125.15")
        assert len(await desk.fills()) == 2
        assert (await desk.order(spread["id"]))["status"] == "filled"
        await assert_ledgers_balance(ctx)
