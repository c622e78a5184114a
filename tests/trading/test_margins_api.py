"""F&O margin through the API (docs/trading.md, "Margin"): a hedge releases the naked leg's
margin down to the group's worst payout, GET .../margins shows it, and an order the free
cash cannot carry is refused with the numbers.  Index 20,000, lot 50, the 15% short-option
rate (5% floor), no charges:

* short 50 x 20000 CE at 200: naked 50 x (200 + max(15% x 20,000 - 0, 5% x 20,000)) = 160,000;
* with a long 50 x 20200 CE: the group's worst payout at expiry is 50 x 200 = 10,000.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from quantdesk.marketdata.domain import Exchange, Instrument, InstrumentType, OptionType
from quantdesk.marketdata.instruments.service import InstrumentService
from tests.trading.conftest import Desk

ATM, OTM = "SIM:SIMIDX26DEC20000CE", "SIM:SIMIDX26DEC20200CE"


def call(strike: int) -> Instrument:
    return Instrument(
        Exchange.SIM, f"SIMIDX26DEC{strike}CE", f"SIMIDX {strike} CE", InstrumentType.OPTION,
        "INR", lot_size=Decimal(50), tick_size=Decimal("0.05"), underlying="SIMIDX",
        expiry=dt.date(2099, 12, 31), strike=Decimal(strike), option_type=OptionType.CALL,
    )  # fmt: skip


async def options(desk: Desk) -> None:
    index = Instrument(Exchange.SIM, "SIMIDX", "SIM index", InstrumentType.INDEX, "INR")
    async with desk.ctx.database.session(immediate=True) as db:
        await InstrumentService(db).upsert_many([index, call(20000), call(20200)])
    await desk.quote("SIM:SIMIDX", "20000.00", 1, "20000.00", 1, "20000.00")
    await desk.quote(ATM, "200.00", 500, "200.10", 500, "200.00")
    await desk.quote(OTM, "119.95", 500, "120.05", 500, "120.00")


def sell(key: str) -> dict[str, Any]:
    return {"instrument": key, "side": "sell", "quantity": 50, "type": "market",
            "product": "nrml"}  # fmt: skip


async def test_a_hedge_blocks_the_worst_payout_and_margins_show_it(desk: Desk) -> None:
    await options(desk)
    await desk.place(**sell(ATM))  # 50 @ 200.00
    margins = await desk.get("/margins")
    assert (margins["used"], margins["required"]) == ("160000", "160000")
    assert margins["groups"][0]["hedged"] is False
    await desk.place(**dict(sell(OTM), side="buy"))  # 50 @ 120.05: a call spread
    margins = await desk.get("/margins")
    assert (margins["used"], margins["required"]) == ("10000", "10000")
    (group,) = margins["groups"]
    assert (group["naked"], group["worst_payout"], group["hedged"]) == ("160000", "10000", True)
    by_key = {
        p["instrument"]: (p["naked"], p["required"], p["blocked"]) for p in margins["positions"]
    }
    assert by_key == {ATM: ("160000", "10000", "10000"), OTM: ("0", "0", "0")}
    account = await desk.get()
    # 1,00,00,000 + 10,000 premium received - 6,002.50 paid - 10,000 blocked
    assert (account["margin_used"], account["cash"]) == ("10000", "9993997.5")


async def test_an_order_beyond_the_free_cash_is_refused_with_the_numbers(desk: Desk) -> None:
    r = await desk.client.post(
        "/api/v1/accounts", json={"starting_cash": "50000"}, headers=desk.trader.headers
    )
    desk.account_id = r.json()["id"]
    await options(desk)
    problem = await desk.place(expect=422, **sell(ATM))
    assert problem["type"].endswith("insufficient-margin")
    # 160,000 of margin less the 10,000 premium received
    assert (problem["required"], problem["available"], problem["shortfall"]) == (
        "150000", "50000", "100000",
    )  # fmt: skip
    assert (problem["margin_before"], problem["margin_after"], problem["premium"]) == (
        "0", "160000", "-10000",
    )  # fmt: skip


async def test_a_modified_option_order_is_reserved_by_the_margin_model(desk: Desk) -> None:
    """A short call covered by a held long call reserves nothing (its credit exceeds the
    spread's worst payout), placed or modified; the percentage rule would block 160,000."""
    await options(desk)
    await desk.place(**dict(sell(OTM), side="buy"))  # long 50 x 20200 CE @ 120.05
    resting = await desk.place(**dict(sell(ATM), type="limit", limit_price="210.00"))
    assert resting["status"] == "new"
    assert (await desk.get())["reserved"] == "0"
    r = await desk.client.patch(
        desk.url(f"/orders/{resting['id']}"), json={"limit_price": "212.00"},
        headers=desk.trader.headers,
    )  # fmt: skip
    assert r.status_code == 200, r.text
    assert (await desk.get())["reserved"] == "0"
    # Grown far beyond the hedge, the modification needs the naked margin: refused beyond
    # the free cash with the model's numbers (the long call alone blocks nothing).
    naked = await desk.place(**dict(sell(ATM), type="limit", limit_price="210.00"))
    r = await desk.client.patch(
        desk.url(f"/orders/{naked['id']}"), json={"quantity": 50_000},
        headers=desk.trader.headers,
    )  # fmt: skip
    assert r.status_code == 422, r.text
    assert r.json()["type"].endswith("insufficient-margin")
    assert (r.json()["margin_before"], r.json()["premium"]) == ("0", "-10500000")
