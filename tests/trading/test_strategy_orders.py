"""A strategy template placed as one mleg order (``POST /api/v1/strategies/orders``): the
template's options found in the master, placed all or none, and saved as a strategy whose
legs follow the leg orders' fills."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import time_machine

from quantdesk.marketdata.domain import Exchange, Instrument, InstrumentType, OptionType, Quote
from quantdesk.marketdata.instruments.service import InstrumentService
from quantdesk.marketdata.quotes.service import QuoteService
from tests.trading.conftest import Desk

URL = "/api/v1/strategies/orders"
EXPIRY = dt.date(2026, 12, 29)
# Thursday 3 December 2026, 10:30 IST: NFO is open.
OPEN = dt.datetime(2026, 12, 3, 5, 0, tzinfo=dt.UTC)
# (strike, type, bid, ask) of the NIFTY Dec options quoted here.
BOOK = [
    (25500, OptionType.PUT, "20.00", "20.50"),
    (25800, OptionType.PUT, "45.00", "45.50"),
    (26000, OptionType.CALL, "110.00", "110.50"),
    (26000, OptionType.PUT, "90.00", "90.50"),
    (26200, OptionType.CALL, "40.00", "40.50"),
    (26500, OptionType.CALL, "12.00", "12.50"),
]


def _symbol(strike: int, kind: OptionType) -> str:
    return f"NIFTY26DEC{strike}{'CE' if kind is OptionType.CALL else 'PE'}"


async def _nifty_options(desk: Desk) -> None:
    async with desk.ctx.database.session(immediate=True) as db:
        await InstrumentService(db).upsert_many(
            Instrument(
                Exchange.NFO, _symbol(strike, kind), _symbol(strike, kind),
                InstrumentType.OPTION, "INR", lot_size=Decimal(75), tick_size=Decimal("0.05"),
                underlying="NIFTY", expiry=EXPIRY, strike=Decimal(strike), option_type=kind,
            )
            for strike, kind, _, _ in BOOK
        )  # fmt: skip
    quotes = [
        Quote(
            f"NFO:{_symbol(strike, kind)}", Decimal(bid), dt.datetime.now(dt.UTC),
            bid=Decimal(bid), ask=Decimal(ask), bid_size=Decimal(7500), ask_size=Decimal(7500),
        )
        for strike, kind, bid, ask in BOOK
    ]  # fmt: skip
    await QuoteService(desk.ctx.cache, desk.ctx.bus).publish(quotes)
    await desk.settle()


def _condor(desk: Desk, **extra: Any) -> dict[str, Any]:
    return {
        "account_id": desk.account_id, "template": "iron_condor", "underlying": "NIFTY",
        "expiry": EXPIRY.isoformat(), "lots": 2,
        "strikes": {"long_put": 25500, "short_put": 25800, "short_call": 26200,
                    "long_call": 26500},
        **extra,
    }  # fmt: skip


async def _post(desk: Desk, body: dict[str, Any], expect: int = 201) -> dict[str, Any]:
    r = await desk.client.post(URL, json=body, headers=desk.trader.headers)
    assert r.status_code == expect, r.text
    await desk.settle()
    return dict(r.json())


@time_machine.travel(OPEN, tick=True)
async def test_an_iron_condor_is_one_mleg_order_and_a_saved_strategy(desk: Desk) -> None:
    await _nifty_options(desk)
    placed = await _post(desk, _condor(desk, client_order_id="condor-1", tags=["dec"]))
    order, strategy = placed["order"], placed["strategy"]
    assert (order["order_class"], order["quantity"], order["product"]) == ("mleg", "150", "nrml")
    legs = [(leg["instrument"], leg["side"], leg["ratio"]) for leg in order["legs"]]
    assert legs == [
        ("NFO:NIFTY26DEC25500PE", "buy", 1), ("NFO:NIFTY26DEC25800PE", "sell", 1),
        ("NFO:NIFTY26DEC26200CE", "sell", 1), ("NFO:NIFTY26DEC26500CE", "buy", 1),
    ]  # fmt: skip
    assert strategy["name"] == "iron_condor NIFTY 2026-12-29"
    assert strategy["tags"] == ["dec"]
    assert [(leg["quantity"], leg["order_id"]) for leg in strategy["legs"]] == [
        ("2", order["legs"][0]["id"]), ("-2", order["legs"][1]["id"]),
        ("-2", order["legs"][2]["id"]), ("2", order["legs"][3]["id"]),
    ]  # fmt: skip

    # All four legs filled together, at the ask for the buys and the bid for the sells:
    # a net credit of (45.00 + 40.00 - 20.50 - 12.50) = 52.00 per unit.
    fills = [await desk.fills(leg["id"]) for leg in order["legs"]]
    assert fills == [[("150", "20.50")], [("150", "45.00")], [("150", "40.00")],
                     [("150", "12.50")]]  # fmt: skip
    r = await desk.client.get(f"/api/v1/strategies/{strategy['id']}", headers=desk.trader.headers)
    assert [leg["filled"] for leg in r.json()["legs"]] == ["150"] * 4
    r = await desk.client.get(
        f"/api/v1/strategies/{strategy['id']}/mtm", headers=desk.trader.headers
    )
    assert r.status_code == 200, r.text
    assert len(r.json()["legs"]) == 4

    # A retry with the same client_order_id is the same order and the same strategy.
    again = await _post(desk, _condor(desk, client_order_id="condor-1", tags=["dec"]))
    assert (again["order"]["id"], again["strategy"]["id"]) == (order["id"], strategy["id"])
    r = await desk.client.get("/api/v1/strategies", headers=desk.trader.headers)
    assert len(r.json()["items"]) == 1


@time_machine.travel(OPEN, tick=True)
async def test_a_straddle_and_a_limit_net_price(desk: Desk) -> None:
    await _nifty_options(desk)
    body = {
        "account_id": desk.account_id, "template": "long_straddle", "underlying": "NIFTY",
        "expiry": EXPIRY.isoformat(), "strikes": {"strike": 26000}, "type": "limit",
        "limit_price": "200.00", "name": "event straddle",
    }  # fmt: skip
    placed = await _post(desk, body)
    legs = [(leg["instrument"], leg["side"]) for leg in placed["order"]["legs"]]
    assert legs == [("NFO:NIFTY26DEC26000CE", "buy"), ("NFO:NIFTY26DEC26000PE", "buy")]
    # The net ask is 110.50 + 90.50 = 201.00, above the 200.00 limit: it rests, unfilled.
    assert placed["order"]["status"] == "new"
    assert [leg["filled"] for leg in placed["strategy"]["legs"]] == ["0", "0"]


@time_machine.travel(OPEN, tick=True)
async def test_a_template_is_refused_clearly_and_writes_nothing(desk: Desk) -> None:
    await _nifty_options(desk)
    missing = await _post(desk, _condor(desk, strikes={"long_put": 25000, "short_put": 25800,
                          "short_call": 26200, "long_call": 26500}), expect=404)  # fmt: skip
    assert "leg 0: no NIFTY 2026-12-29 25000 put on NFO" in missing["detail"]
    names = await _post(desk, _condor(desk, strikes={"strike": 26000}), expect=422)
    assert (
        "iron_condor takes strikes ['long_put', 'short_put', 'short_call', 'long_call']"
        in (names["detail"])
    )
    order = await _post(desk, _condor(desk, strikes={"long_put": 25800, "short_put": 25500,
                        "short_call": 26200, "long_call": 26500}), expect=422)  # fmt: skip
    assert "strictly increasing" in order["detail"]
    covered = {
        "account_id": desk.account_id, "template": "covered_call", "underlying": "NIFTY",
        "expiry": EXPIRY.isoformat(), "strikes": {"call_strike": 26200},
    }  # fmt: skip
    held = await _post(desk, covered, expect=422)
    assert "holds the underlying" in held["detail"]
    other = await _post(desk, _condor(desk, account_id="00000000-0000-0000-0000-000000000001"),
                        expect=404)  # fmt: skip
    assert other["type"] == "urn:quantdesk:problem:not-found"
    assert (await desk.get("/orders?status=all"))["items"] == []
    r = await desk.client.get("/api/v1/strategies", headers=desk.trader.headers)
    assert r.json()["items"] == []
