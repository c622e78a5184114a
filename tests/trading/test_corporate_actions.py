"""Corporate actions on paper holdings: recorded by an admin before the ex-date
(``POST /api/v1/instruments/{key}/corporate-actions``), applied once by the matcher's clock
as the ex-date begins (``trading.lifecycle.apply_corporate_actions``)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import time_machine

from quantdesk.marketdata.domain import Exchange, Instrument, InstrumentType, Quote
from quantdesk.marketdata.instruments.service import InstrumentService
from quantdesk.marketdata.quotes.service import QuoteService
from quantdesk.trading.lifecycle import apply_corporate_actions
from tests.trading.conftest import Desk

IST = dt.timezone(dt.timedelta(hours=5, minutes=30))
INFY = "NSE:INFY"
THURSDAY = dt.datetime(2026, 12, 3, 14, 0, tzinfo=IST)


def ist(day: int, hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime(2026, 12, day, hour, minute, tzinfo=IST)


def _url(key: str = INFY) -> str:
    return f"/api/v1/instruments/{key}/corporate-actions"


async def _record(desk: Desk, expect: int = 201, **body: Any) -> dict[str, Any]:
    r = await desk.client.post(_url(), json=body, headers=desk.admin.headers)
    assert r.status_code == expect, r.text
    return dict(r.json())


async def _infy(desk: Desk, bid: str = "1500.00", ask: str = "1500.10") -> None:
    async with desk.ctx.database.session(immediate=True) as db:
        await InstrumentService(db).upsert_many(
            [
                Instrument(
                    Exchange.NSE, "INFY", "Infosys", InstrumentType.EQUITY, "INR",
                    tick_size=Decimal("0.05"),
                )
            ]
        )  # fmt: skip
    quote = Quote(
        INFY, Decimal(bid), dt.datetime.now(dt.UTC), bid=Decimal(bid), ask=Decimal(ask),
        bid_size=Decimal(10_000), ask_size=Decimal(10_000),
    )  # fmt: skip
    await QuoteService(desk.ctx.cache, desk.ctx.bus).publish([quote])
    await desk.settle()


async def _holding(desk: Desk) -> dict[str, Any]:
    (position,) = [p for p in (await desk.get("/positions"))["items"] if p["instrument"] == INFY]
    return dict(position)


def _entries(ledger: dict[str, Any]) -> list[dict[str, Any]]:
    return [e for e in ledger["items"] if e["kind"] == "corporate_action"]


@time_machine.travel(THURSDAY, tick=True)
async def test_a_split_a_bonus_and_a_dividend_reach_the_holding_once(desk: Desk) -> None:
    await _infy(desk)
    await desk.place(instrument=INFY, side="buy", quantity=7, type="market", product="cnc")
    resting = await desk.place(
        instrument=INFY, side="sell", quantity=7, type="limit", limit_price="1600.00",
        time_in_force="gtc", product="cnc",
    )  # fmt: skip
    split = await _record(desk, kind="split", ex_date="2026-12-04", old=1, new=5)
    await _record(desk, kind="bonus", ex_date="2026-12-07", bonus=1, held=2,
                  fraction_price="250.00")  # fmt: skip
    await _record(desk, kind="dividend", ex_date="2026-12-08", per_share="20.00")
    assert (split["instrument"], split["new"]) == (INFY, "5")
    listed = (await desk.client.get(_url(), headers=desk.trader.headers)).json()["items"]
    assert [a["kind"] for a in listed] == ["split", "bonus", "dividend"]

    # Not before the ex-date begins (00:00 IST), then once.
    assert await apply_corporate_actions(desk.ctx, ist(3, 23, 59)) == 0
    assert await apply_corporate_actions(desk.ctx, ist(4, 0, 1)) == 1
    assert await apply_corporate_actions(desk.ctx, ist(4, 0, 2)) == 0
    await desk.settle()
    held = await _holding(desk)
    # 7 bought at 1500.10 (cost 10,500.70) are 35 at 300.02: the cost is kept.
    assert (held["quantity"], held["average_price"]) == ("35", "300.02")
    order = await desk.order(resting["id"])
    assert (order["status"], order["reason"]) == (
        "canceled",
        "canceled for the split (ex-date 2026-12-04)",
    )

    # A 1:2 bonus on 35 entitles 52.5: 52 shares and the half share paid at 250.00.
    assert await apply_corporate_actions(desk.ctx, ist(7, 0, 1)) == 1
    held = await _holding(desk)
    assert held["quantity"] == "52"
    # The half takes 0.5/52.5 of the cost out (100.0067, the ledger's 4 places) and
    # realises 125.00 - 100.0067.
    assert Decimal(held["realised_pnl"]) == Decimal("24.9933")

    before = Decimal((await desk.get())["cash"])
    assert await apply_corporate_actions(desk.ctx, ist(8, 0, 1)) == 1
    assert Decimal((await desk.get())["cash"]) - before == Decimal("1040.00")  # 52 x 20.00
    held = await _holding(desk)
    assert Decimal(held["realised_pnl"]) == Decimal("1064.9933")

    entries = _entries(await desk.get("/ledger?limit=50"))
    memos = sorted(e["memo"] for e in entries)
    assert memos == [
        "35 NSE:INFY: bonus to 52, 0.5 in lieu @ 250.00",
        "52 NSE:INFY: dividend 20.00 per share",
    ]  # the split moves no money: it writes no entry


@time_machine.travel(THURSDAY, tick=True)
async def test_a_holding_traded_on_its_ex_date_is_left_alone(desk: Desk) -> None:
    await _infy(desk)
    await desk.place(instrument=INFY, side="buy", quantity=10, type="market", product="cnc")
    await _record(desk, kind="dividend", ex_date="2026-12-04", per_share="5")
    with time_machine.travel(ist(4, 10, 0), tick=True):
        await _infy(desk)
        await desk.place(instrument=INFY, side="buy", quantity=5, type="market", product="cnc")
        assert await apply_corporate_actions(desk.ctx, dt.datetime.now(dt.UTC)) == 0
    assert (await _holding(desk))["quantity"] == "15"
    assert _entries(await desk.get("/ledger?limit=50")) == []


@time_machine.travel(THURSDAY, tick=True)
async def test_a_corporate_action_is_checked_before_it_is_recorded(desk: Desk) -> None:
    await _infy(desk)
    today = await _record(desk, expect=422, kind="dividend", ex_date="2026-12-03", per_share=5)
    assert "must be after today (2026-12-03)" in today["detail"]
    terms = await _record(desk, expect=422, kind="split", ex_date="2026-12-04", old=1)
    assert "a split takes new, old" in terms["errors"][0]["message"]
    await _record(desk, kind="dividend", ex_date="2026-12-09", per_share=5)
    again = await _record(desk, expect=409, kind="dividend", ex_date="2026-12-09", per_share=6)
    assert "already has a dividend with ex-date 2026-12-09" in again["detail"]
    r = await desk.client.post(
        _url(), json={"kind": "dividend", "ex_date": "2026-12-10", "per_share": 5},
        headers=desk.trader.headers,
    )  # fmt: skip
    assert r.status_code == 403
    r = await desk.client.post(
        _url("NSE:NOSUCH"), json={"kind": "dividend", "ex_date": "2026-12-10", "per_share": 5},
        headers=desk.admin.headers,
    )  # fmt: skip
    assert r.status_code == 404
    listed = (await desk.client.get(_url(), headers=desk.trader.headers)).json()["items"]
    assert [a["per_share"] for a in listed] == ["5"]
