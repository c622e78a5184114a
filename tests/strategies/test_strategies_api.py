"""Strategy analysis over HTTP: templates and explicit legs, hand-checked figures."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import httpx

from tests.conftest import UserFactory

URL = "/api/v1/analytics/strategies/analyze"
TODAY = date(2026, 11, 23)


async def test_iron_condor_template(client: httpx.AsyncClient, make_user: UserFactory) -> None:
    viewer = await make_user("viewer")
    body = {
        "spot": "24500",
        "valuation_date": TODAY.isoformat(),
        "r": 0.065,
        "template": {
            "name": "iron_condor",
            "strikes": {
                "long_put": 23800,
                "short_put": 24000,
                "short_call": 25000,
                "long_call": 25200,
            },
            "expiry": (TODAY + timedelta(days=30)).isoformat(),
            "iv": 0.14,
            "lots": 1,
            "lot_size": 75,
            "entry_prices": ["20", "45", "40", "18"],
        },
    }
    response = await client.post(URL, json=body, headers=viewer.headers)
    assert response.status_code == 200, response.text
    data = response.json()
    # Credit per unit = 45 + 40 - 20 - 18 = 47; x 75 = 3525 max profit.
    assert data["max_profit"] == "3525.00"
    # Max loss = (width 200 - credit 47) x 75 = -11475.
    assert data["max_loss"] == "-11475.00"
    assert data["breakevens"] == ["23953.00", "25047.00"]
    assert data["unlimited_profit"] is False
    assert data["unlimited_loss"] is False
    assert 0 < data["probability_of_profit"] < 1
    assert data["net_premium"] == "-3525.00"
    assert [leg["quantity"] for leg in data["legs"]] == ["1", "-1", "-1", "1"]
    assert len(data["grid"]) == len(data["expiry_pnl"]) == len(data["today_pnl"])


async def test_long_call_legs_unlimited_profit(
    client: httpx.AsyncClient, make_user: UserFactory
) -> None:
    viewer = await make_user("viewer")
    body = {
        "spot": "100",
        "valuation_date": TODAY.isoformat(),
        "legs": [
            {
                "type": "option",
                "kind": "call",
                "strike": "100",
                "iv": 0.25,
                "expiry": (TODAY + timedelta(days=73)).isoformat(),
                "quantity": "2",
                "entry_price": "4.50",
                "lot_size": "100",
            }
        ],
        "horizon_date": (TODAY + timedelta(days=30)).isoformat(),
    }
    data = (await client.post(URL, json=body, headers=viewer.headers)).json()
    assert data["max_profit"] is None
    assert data["unlimited_profit"] is True
    assert data["max_loss"] == "-900.00"
    assert data["breakevens"] == ["104.50"]
    assert data["horizon_pnl"] is not None
    assert Decimal(data["net_premium"]) == Decimal("900.00")
    assert abs(data["net_greeks"]["delta"] - 2 * 100 * 0.55) < 40  # ~ATM call delta ~0.55


async def test_bad_input_is_422(client: httpx.AsyncClient, make_user: UserFactory) -> None:
    viewer = await make_user("viewer")
    both_missing = {"spot": "100"}
    assert (await client.post(URL, json=both_missing, headers=viewer.headers)).status_code == 422
    wrong_strikes = {
        "spot": "100",
        "template": {
            "name": "long_straddle",
            "strikes": {"lower": 90},
            "expiry": "2030-01-01",
            "iv": 0.2,
        },
    }
    response = await client.post(URL, json=wrong_strikes, headers=viewer.headers)
    assert response.status_code == 422
    assert "strike" in response.json()["detail"]
    expired = {
        "spot": "100",
        "valuation_date": TODAY.isoformat(),
        "legs": [{"type": "future", "expiry": "2026-01-01", "quantity": 1, "entry_price": "100"}],
    }
    response = await client.post(URL, json=expired, headers=viewer.headers)
    assert response.status_code == 422
    assert "after the valuation date" in response.json()["detail"]


async def test_payoff_chart_is_svg(client: httpx.AsyncClient, make_user: UserFactory) -> None:
    viewer = await make_user("viewer")
    body = {
        "spot": "100",
        "valuation_date": TODAY.isoformat(),
        "template": {
            "name": "long_straddle", "strikes": {"strike": 100},
            "expiry": (TODAY + timedelta(days=30)).isoformat(), "iv": 0.3,
            "entry_prices": ["3.5", "3.2"],
        },
    }  # fmt: skip
    response = await client.post(
        "/api/v1/analytics/strategies/payoff.svg", json=body, headers=viewer.headers
    )
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/svg+xml"
    svg = response.text
    assert svg.startswith("<svg")
    assert svg.rstrip().endswith("</svg>")
    assert svg.count("<polyline") == 2
    # Breakevens of a straddle bought for 6.70: 93.30 and 106.70, both marked.
    assert ">93.30<" in svg
    assert ">106.70<" in svg
    assert "long straddle" in svg


async def test_quantities_exact_and_prices_at_the_request_precision(
    client: httpx.AsyncClient, make_user: UserFactory
) -> None:
    """Issue 19: 1234567 lots answered as "1.23457e+06" and 8-decimal prices cut to 4."""
    viewer = await make_user("viewer")
    body = {
        "spot": "100",
        "valuation_date": TODAY.isoformat(),
        "legs": [
            {
                "type": "option", "kind": "call", "strike": "100.12345678",
                "expiry": (TODAY + timedelta(days=30)).isoformat(), "iv": 0.25,
                "quantity": "1234567", "lot_size": "1", "entry_price": "2.00000001",
            }
        ],
    }  # fmt: skip
    response = await client.post(URL, json=body, headers=viewer.headers)
    assert response.status_code == 200, response.text
    data = response.json()
    leg = data["legs"][0]
    assert leg["quantity"] == "1234567"
    assert leg["strike"] == "100.12345678"
    assert leg["entry_price"] == "2.00000001"
    assert data["breakevens"] == [f"{Decimal('100.12345678') + Decimal('2.00000001')}"]
    assert all(len(p.split(".")[1]) == 8 for p in data["grid"])
    assert data["net_premium"] == str(Decimal("2.00000001") * 1234567)
