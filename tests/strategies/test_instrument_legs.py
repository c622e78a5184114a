"""Strategy legs by instrument key (issue 19): kind, strike, expiry and lot size from the master.

A leg naming ``NFO:NIFTY26DEC24000CE`` must analyse exactly as the same leg spelled out, and
every way of naming the wrong thing is a problem response that says which leg and why.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from quantdesk.marketdata.domain import Exchange, Instrument, InstrumentType, OptionType
from quantdesk.marketdata.instruments.service import InstrumentService
from quantdesk.strategies.schemas import StrategyResponse
from tests.conftest import UserFactory

URL = "/api/v1/analytics/strategies/analyze"
TODAY = date(2026, 11, 23)
EXPIRY = date(2026, 12, 29)
CALL = "NFO:NIFTY26DEC24000CE"
CALL_HIGHER = "NFO:NIFTY26DEC24500CE"
FUTURE = "NFO:NIFTY26DECFUT"


def nifty_option(strike: int, option: OptionType) -> Instrument:
    right = "CE" if option is OptionType.CALL else "PE"
    return Instrument(
        Exchange.NFO, f"NIFTY26DEC{strike}{right}", f"NIFTY 29 DEC 2026 {strike} {right}",
        InstrumentType.OPTION, "INR", lot_size=Decimal(65), tick_size=Decimal("0.05"),
        underlying="NIFTY", expiry=EXPIRY, strike=Decimal(strike), option_type=option,
    )  # fmt: skip


@pytest.fixture
async def master(app: FastAPI) -> None:
    listed = [
        nifty_option(24000, OptionType.CALL),
        nifty_option(24500, OptionType.CALL),
        Instrument(
            Exchange.NFO, "NIFTY26DECFUT", "NIFTY FUT 29 DEC 2026", InstrumentType.FUTURE, "INR",
            lot_size=Decimal(65), tick_size=Decimal("0.05"), underlying="NIFTY", expiry=EXPIRY,
        ),
        Instrument(
            Exchange.NFO, "BANKNIFTY26DECFUT", "BANKNIFTY FUT", InstrumentType.FUTURE, "INR",
            lot_size=Decimal(30), tick_size=Decimal("0.05"), underlying="BANKNIFTY",
            expiry=EXPIRY,
        ),
        Instrument(Exchange.NSE, "NIFTY 50", "NIFTY 50", InstrumentType.INDEX, "INR"),
    ]  # fmt: skip
    async with app.state.ctx.database.session(immediate=True) as db:
        await InstrumentService(db).upsert_many(listed)


def body(*legs: dict[str, Any]) -> dict[str, Any]:
    return {"spot": "24210.35", "valuation_date": TODAY.isoformat(), "r": 0.065, "legs": list(legs)}


@pytest.mark.usefixtures("master")
async def test_legs_by_key_analyse_as_the_same_legs_spelled_out(
    client: httpx.AsyncClient, make_user: UserFactory
) -> None:
    viewer = await make_user("viewer")
    by_key = body(
        {"instrument": CALL, "quantity": "1", "entry_price": "310.50", "iv": 0.14},
        {"instrument": CALL_HIGHER.lower(), "quantity": "-1", "entry_price": "95.05", "iv": 0.13},
        {"instrument": FUTURE, "quantity": "-1", "entry_price": "24301.10"},
    )
    spelled = body(
        {"type": "option", "kind": "call", "strike": "24000", "expiry": EXPIRY.isoformat(),
         "iv": 0.14, "quantity": "1", "entry_price": "310.50", "lot_size": "65"},
        {"type": "option", "kind": "call", "strike": "24500", "expiry": EXPIRY.isoformat(),
         "iv": 0.13, "quantity": "-1", "entry_price": "95.05", "lot_size": "65"},
        {"type": "future", "expiry": EXPIRY.isoformat(), "quantity": "-1",
         "entry_price": "24301.10", "lot_size": "65"},
    )  # fmt: skip
    response = await client.post(URL, json=by_key, headers=viewer.headers)
    assert response.status_code == 200, response.text
    data = response.json()
    assert StrategyResponse.model_validate(data).model_dump(mode="json") == data
    assert [leg["instrument"] for leg in data["legs"]] == [CALL, CALL_HIGHER, FUTURE]
    assert [leg["type"] for leg in data["legs"]] == ["option", "option", "future"]
    assert [leg["strike"] for leg in data["legs"]] == ["24000.00", "24500.00", None]
    assert {leg["lot_size"] for leg in data["legs"]} == {"65"}
    reference = (await client.post(URL, json=spelled, headers=viewer.headers)).json()
    for leg in data["legs"]:
        leg.pop("instrument")
    for leg in reference["legs"]:
        leg.pop("instrument")
    assert data == reference
    # The same body draws the payoff diagram.
    svg = await client.post(
        "/api/v1/analytics/strategies/payoff.svg", json=by_key, headers=viewer.headers
    )
    assert svg.status_code == 200
    assert svg.text.startswith("<svg")


@pytest.mark.usefixtures("master")
async def test_legs_by_key_mix_with_spelled_out_legs(
    client: httpx.AsyncClient, make_user: UserFactory
) -> None:
    viewer = await make_user("viewer")
    covered = body(
        {"type": "underlying", "quantity": "65", "entry_price": "24210.35"},
        {"instrument": CALL_HIGHER, "quantity": "-1", "entry_price": "95.05", "iv": 0.13},
    )
    response = await client.post(URL, json=covered, headers=viewer.headers)
    assert response.status_code == 200, response.text
    data = response.json()
    assert [leg["instrument"] for leg in data["legs"]] == [None, CALL_HIGHER]
    # Covered call, capped at the strike: (24500 - 24210.35 + 95.05) x 65 = 384.70 x 65.
    assert data["max_profit"] == "25005.50"
    assert data["unlimited_profit"] is False


@pytest.mark.usefixtures("master")
@pytest.mark.parametrize(
    ("leg", "status", "says"),
    [
        ({"instrument": "NFO:NIFTY26DEC99999CE", "quantity": 1, "entry_price": "1", "iv": 0.2},
         404, "no instrument NFO:NIFTY26DEC99999CE"),
        ({"instrument": "NSE:NIFTY 50", "quantity": 1, "entry_price": "1"},
         422, "not an option or a future"),
        ({"instrument": "NIFTY26DEC24000CE", "quantity": 1, "entry_price": "1", "iv": 0.2},
         422, "EXCHANGE:SYMBOL"),
        ({"instrument": CALL, "quantity": 1, "entry_price": "1"}, 422, "implied volatility"),
        ({"instrument": FUTURE, "quantity": 1, "entry_price": "1", "iv": 0.2},
         422, "`iv` is for options"),
        ({"instrument": CALL, "quantity": 1, "entry_price": "1", "iv": 0.2, "lot_size": 75},
         422, "lot_size"),
        ({"quantity": 1, "entry_price": "1"}, 422, "legs.0"),
    ],
)  # fmt: skip
async def test_wrong_instrument_legs_are_problems(
    client: httpx.AsyncClient, make_user: UserFactory, leg: dict[str, Any], status: int, says: str
) -> None:
    viewer = await make_user("viewer")
    response = await client.post(URL, json=body(leg), headers=viewer.headers)
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert says in problem["detail"] or says in str(problem.get("errors"))
    if status == 404:
        assert problem["instrument"] == "NFO:NIFTY26DEC99999CE"
        assert problem["detail"].startswith("legs[0].instrument")


@pytest.mark.usefixtures("master")
async def test_a_leg_needs_a_type_or_an_instrument(
    client: httpx.AsyncClient, make_user: UserFactory
) -> None:
    viewer = await make_user("viewer")
    response = await client.post(
        URL, json=body({"quantity": 1, "entry_price": "1"}), headers=viewer.headers
    )
    assert response.status_code == 422
    [error] = response.json()["errors"]
    assert "`type` (option, future or underlying) or `instrument`" in error["message"]


@pytest.mark.usefixtures("master")
async def test_legs_on_different_underlyings_are_refused(
    client: httpx.AsyncClient, make_user: UserFactory
) -> None:
    viewer = await make_user("viewer")
    mixed = body(
        {"instrument": FUTURE, "quantity": 1, "entry_price": "24300"},
        {"instrument": "NFO:BANKNIFTY26DECFUT", "quantity": -1, "entry_price": "52000"},
    )
    response = await client.post(URL, json=mixed, headers=viewer.headers)
    assert response.status_code == 422
    assert "BANKNIFTY, NIFTY" in response.json()["detail"]
