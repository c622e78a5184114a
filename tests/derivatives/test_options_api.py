"""Batch Greeks and implied volatility over HTTP: values, shapes, nulls for bad rows, limits."""

from __future__ import annotations

import math
from typing import Any

import httpx
import numpy as np
import QuantLib as ql

from quantdesk.analytics.options import greeks
from tests.conftest import UserFactory

URL = "/api/v1/analytics/options"


def quantlib_call(
    spot: float, strike: float, t: float, r: float, q: float, vol: float
) -> ql.BlackCalculator:
    forward = spot * math.exp((r - q) * t)
    discount = math.exp(-r * t)
    payoff = ql.PlainVanillaPayoff(ql.Option.Call, strike)
    return ql.BlackCalculator(payoff, forward, vol * math.sqrt(t), discount)


async def test_greeks_batch_matches_quantlib_and_the_core(
    client: httpx.AsyncClient, make_user: UserFactory
) -> None:
    viewer = await make_user("viewer")
    body: dict[str, Any] = {
        "kind": ["call", "put", "call"],
        "spot": [100, "100", 24500],
        "strike": [100, 95, 25000],
        "t": [0.5, 0.25, 7 / 365],
        "r": 0.05,
        "q": [0.02, 0.0, 0.0],
        "sigma": [0.2, 0.3, 0.13],
    }
    response = await client.post(f"{URL}/greeks", json=body, headers=viewer.headers)
    assert response.status_code == 200, response.text
    data = response.json()
    assert data["rows"] == 3
    reference = quantlib_call(100, 100, 0.5, 0.05, 0.02, 0.2)
    assert float(data["price"][0]) == round(reference.value(), 6)
    assert math.isclose(data["gamma"][0], reference.gamma(100), abs_tol=1e-10)
    core = greeks(
        body["kind"], [100, 100, 24500], body["strike"], body["t"], 0.05, body["sigma"], body["q"]
    )
    np.testing.assert_allclose(data["delta"], core.delta, rtol=0, atol=1e-12)
    np.testing.assert_allclose(data["theta_per_day"], core.theta / 365, rtol=1e-12)
    np.testing.assert_allclose(data["vega_per_point"], core.vega / 100, rtol=1e-12)


async def test_black76_and_invalid_rows_are_null(
    client: httpx.AsyncClient, make_user: UserFactory
) -> None:
    viewer = await make_user("viewer")
    body = {
        "model": "black76",
        "kind": "call",
        "spot": [24600, -1],
        "strike": 24500,
        "t": 0.1,
        "r": 0.065,
        "sigma": 0.14,
    }
    data = (await client.post(f"{URL}/greeks", json=body, headers=viewer.headers)).json()
    assert data["price"][1] is None
    assert data["delta"][1] is None
    expected = greeks("call", 24600, 24500, 0.1, 0.065, 0.14, model="black76")
    assert float(data["price"][0]) == round(float(expected.price), 6)


async def test_implied_vol_round_trip_with_reasons(
    client: httpx.AsyncClient, make_user: UserFactory
) -> None:
    viewer = await make_user("viewer")
    true_vols = [0.12, 0.35, 0.8]
    priced = greeks(
        ["call", "put", "call"], 100.0, [90.0, 100.0, 140.0], [0.1, 1.0, 2.0], 0.03, true_vols
    )
    prices = [*priced.price.tolist(), 0.01]  # the last one is below intrinsic (deep ITM call)
    body = {
        "price": prices,
        "kind": ["call", "put", "call", "call"],
        "spot": 100,
        "strike": [90, 100, 140, 50],
        "t": [0.1, 1.0, 2.0, 1.0],
        "r": 0.03,
    }
    response = await client.post(f"{URL}/implied-vol", json=body, headers=viewer.headers)
    assert response.status_code == 200, response.text
    data = response.json()
    np.testing.assert_allclose(data["iv"][:3], true_vols, atol=1e-10)
    assert data["reason"] == ["ok", "ok", "ok", "below_intrinsic"]
    assert data["iv"][3] is None


async def test_mismatched_columns_and_limits_are_422(
    client: httpx.AsyncClient, make_user: UserFactory
) -> None:
    viewer = await make_user("viewer")
    bad = {"kind": "call", "spot": [1, 2], "strike": [1, 2, 3], "t": 1, "sigma": 0.2}
    response = await client.post(f"{URL}/greeks", json=bad, headers=viewer.headers)
    assert response.status_code == 422
    assert "spot=2" in response.json()["detail"]
    unknown = {"kind": "straddle", "spot": 1, "strike": 1, "t": 1, "sigma": 0.2}
    assert (
        await client.post(f"{URL}/greeks", json=unknown, headers=viewer.headers)
    ).status_code == 422


async def test_requires_authentication(client: httpx.AsyncClient) -> None:
    body = {"kind": "call", "spot": 100, "strike": 100, "t": 1, "sigma": 0.2}
    response = await client.post(f"{URL}/greeks", json=body)
    assert response.status_code == 401


async def test_full_100k_batch_passes_the_body_limit(
    client: httpx.AsyncClient, make_user: UserFactory
) -> None:
    viewer = await make_user("viewer")
    rng = np.random.default_rng(7)
    rows = 100_000
    strikes = np.round(rng.uniform(80, 120, rows), 2)
    body = {
        "kind": "call",
        "spot": 100,
        "strike": strikes.tolist(),
        "t": 0.5,
        "r": 0.01,
        "sigma": 0.25,
    }
    response = await client.post(f"{URL}/greeks", json=body, headers=viewer.headers)
    assert response.status_code == 200, response.text[:300]
    data = response.json()
    assert data["rows"] == rows
    expected = greeks("call", 100.0, strikes, 0.5, 0.01, 0.25)
    np.testing.assert_allclose(data["delta"], expected.delta, atol=1e-12)
    too_many = {**body, "strike": [*body["strike"], 100.0]}
    response = await client.post(f"{URL}/greeks", json=too_many, headers=viewer.headers)
    assert response.status_code == 422
    assert "at most 100000 rows" in response.json()["detail"]


async def test_worthless_options_price_zero_without_a_sign(
    client: httpx.AsyncClient, make_user: UserFactory
) -> None:
    """Issue 19: a far out-of-the-money put whose model price underflows to a tiny negative
    (put-call parity rounding) answered "-0.000000"."""
    viewer = await make_user("viewer")
    body = {"kind": "put", "spot": [100, 100], "strike": [1, 50], "t": 0.01, "r": 0.05,
            "sigma": 0.1}  # fmt: skip
    data = (await client.post(f"{URL}/greeks", json=body, headers=viewer.headers)).json()
    assert data["price"] == ["0.000000", "0.000000"]
