"""Charges through the API: each fill pays the exchange's schedule, itemised on the fill and
posted to the fees book, and ``POST /api/v1/trading/charges`` answers what an order will
cost before it is placed.  The figures are worked by hand in tests/trading/engine/
test_charges.py (SIM is charged as NSE); here they must come out of the API unchanged."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import time_machine

from quantdesk.marketdata.domain import Exchange, Instrument, InstrumentType, OptionType
from quantdesk.marketdata.instruments.service import InstrumentService
from quantdesk.settings import Settings
from tests.conftest import base_settings
from tests.trading.conftest import Desk


@pytest.fixture
def settings(database_url: str, redis_url: str | None, tmp_path: Path) -> Settings:
    return base_settings(database_url, tmp_path / "var", redis_url).model_copy(
        update={"trading_charges": "exchange"}
    )


async def _preview(desk: Desk, **body: Any) -> dict[str, Any]:
    r = await desk.client.post("/api/v1/trading/charges", json=body, headers=desk.trader.headers)
    assert r.status_code == 200, r.text
    return dict(r.json())


async def test_a_delivery_round_trip_pays_the_schedule_on_each_fill(desk: Desk) -> None:
    await desk.quote("SIM:ALPHA", "1249.95", 500, "1250.00", 500, "1250.00")
    preview = await _preview(desk, instrument="SIM:ALPHA", side="buy", quantity=100)
    # Priced at the last price, 1,250.00: STT 125.00, transaction 3.71, IPFT 0.13, SEBI 0.13,
    # stamp duty 18.75, GST 0.71 = 148.43 (the engine test's delivery buy).
    assert preview["value"] == "125000"
    assert preview["charges"] == {
        "stt": "125", "exchange": "3.71", "ipft": "0.13", "sebi": "0.13",
        "stamp_duty": "18.75", "gst": "0.71",
    }  # fmt: skip
    assert preview["total"] == "148.43"
    await desk.place(side="buy", quantity=100, type="market")
    await desk.quote("SIM:ALPHA", "1300.00", 500, "1300.05", 500, "1300.00")
    await desk.place(side="sell", quantity=100, type="market")
    fills = list(reversed((await desk.get("/fills"))["items"]))
    assert [(f["side"], f["price"], f["fee"]) for f in fills] == [
        ("buy", "1250.00", "148.43"),
        ("sell", "1300.00", "134.86"),  # STT 130.00, transaction 3.86, 0.13, 0.13, GST 0.74
    ]
    assert fills[0]["charges"] == preview["charges"]
    assert "stamp_duty" not in fills[1]["charges"]  # stamp duty is paid by the buyer
    account = await desk.get()
    assert account["fees"] == "283.29"
    assert account["realised_pnl"] == "5000"
    # 1,00,00,000 - 1,25,000 - 148.43 + 1,30,000 - 134.86
    assert account["cash"] == "10004716.71"
    ledger = (await desk.get("/ledger"))["items"]
    fee_entries = [e for e in ledger if e["kind"] == "fee"]
    assert len(fee_entries) == 2


async def test_an_intraday_round_trip_pays_brokerage_once_per_order(desk: Desk) -> None:
    await desk.quote("SIM:ALPHA", "999.95", 1000, "1000.00", 1000, "1000.00")
    await desk.place(side="buy", quantity=400, type="market", product="mis")
    await desk.quote("SIM:ALPHA", "1100.00", 1000, "1100.05", 1000, "1100.00")
    await desk.place(side="sell", quantity=400, type="market", product="mis")
    fees = [f["fee"] for f in reversed((await desk.get("/fills"))["items"])]
    # Zerodha's calculator default (engine test): 50.56 on the buy, 150.06 on the sell.
    assert fees == ["50.56", "150.06"]


@time_machine.travel(dt.datetime(2026, 12, 3, 5, 0, tzinfo=dt.UTC), tick=True)
async def test_previews_for_nifty_options_futures_and_a_us_sell(desk: Desk) -> None:
    async with desk.ctx.database.session(immediate=True) as db:
        await InstrumentService(db).upsert_many(
            [
                Instrument(
                    Exchange.NFO, "NIFTY26DEC26000CE", "NIFTY 26000 CE", InstrumentType.OPTION,
                    "INR", lot_size=Decimal(65), tick_size=Decimal("0.05"), underlying="NIFTY",
                    expiry=dt.date(2026, 12, 29), strike=Decimal(26000),
                    option_type=OptionType.CALL,
                ),
                Instrument(
                    Exchange.NFO, "NIFTY26DECFUT", "NIFTY Dec future", InstrumentType.FUTURE,
                    "INR", lot_size=Decimal(65), tick_size=Decimal("0.10"), underlying="NIFTY",
                    expiry=dt.date(2026, 12, 29),
                ),
                Instrument(Exchange.NASDAQ, "AAPL", "Apple", InstrumentType.EQUITY, "USD"),
            ]
        )  # fmt: skip
    option = "NFO:NIFTY26DEC26000CE"
    buy = await _preview(desk, instrument=option, side="buy", quantity=65, price="120.50",
                         product="nrml")  # fmt: skip
    sell = await _preview(desk, instrument=option, side="sell", quantity=65, price="135.25",
                          product="nrml")  # fmt: skip
    assert (buy["total"], sell["total"]) == ("27.12", "40.48")
    assert sell["charges"]["stt"] == "13.19"  # 0.15% of the premium since 2026-04-01
    future = "NFO:NIFTY26DECFUT"
    buy = await _preview(desk, instrument=future, side="buy", quantity=65, price="26100",
                         product="nrml")  # fmt: skip
    sell = await _preview(desk, instrument=future, side="sell", quantity=65, price="26250.50",
                          product="nrml")  # fmt: skip
    assert (buy["total"], sell["total"]) == ("96.18", "915.61")
    us = await _preview(desk, instrument="NASDAQ:AAPL", side="sell", quantity=500, price="230.15")
    assert us["charges"] == {"sec_fee": "2.38", "taf": "0.1"}
    assert us["day"] == "2026-12-03"
    # Not a whole number of lots: refused as an order would be.
    r = await desk.client.post(
        "/api/v1/trading/charges",
        json={"instrument": future, "side": "buy", "quantity": 30, "price": "26100"},
        headers=desk.trader.headers,
    )
    assert r.status_code == 422
    assert r.json()["type"].endswith("quantity-not-lot-multiple")
