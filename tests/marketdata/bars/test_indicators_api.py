"""Indicators over stored bars: identical to the pure core (itself checked against TA-Lib)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import httpx
import numpy as np
import pytest
from fastapi import FastAPI

from quantdesk.analytics import indicators as ind
from quantdesk.marketdata.bars.repository import BarStore
from quantdesk.marketdata.domain import BarArrays, Timeframe
from quantdesk.marketdata.instruments.service import InstrumentService
from quantdesk.marketdata.schemas import IndicatorOut
from quantdesk.platform.context import AppContext
from tests.conftest import UserFactory
from tests.marketdata.samples import equity

URL = "/api/v1/analytics/indicators"
DAYS = 400


def daily_bars(days: int = DAYS, seed: int = 3) -> BarArrays:
    rng = np.random.default_rng(seed)
    close = np.round(2500 * np.exp(np.cumsum(rng.normal(0, 0.015, days))), 1)
    open_ = np.round(close * (1 + rng.normal(0, 0.004, days)), 1)
    high = np.round(np.maximum(open_, close) * (1 + rng.uniform(0, 0.01, days)), 1)
    low = np.round(np.minimum(open_, close) * (1 - rng.uniform(0, 0.01, days)), 1)
    first = int(dt.datetime(2024, 1, 1, tzinfo=dt.UTC).timestamp())
    ts = np.arange(days, dtype=np.int64) * 86_400 + first
    volume = rng.integers(100_000, 2_000_000, days).astype(np.float64)
    return BarArrays(ts, open_, high, low, close, volume)


@pytest.fixture
async def stored(app: FastAPI) -> BarArrays:
    ctx: AppContext = app.state.ctx
    bars = daily_bars()
    async with ctx.database.session(immediate=True) as db:
        await InstrumentService(db).upsert_many([equity("RELIANCE", "Reliance Industries")])
        await BarStore(db).bulk_load("NSE:RELIANCE", Timeframe.D1, bars)
    return bars


@pytest.mark.usefixtures("stored")
async def test_rsi_with_warmup_matches_core(
    client: httpx.AsyncClient, make_user: UserFactory, stored: BarArrays
) -> None:
    viewer = await make_user("viewer")
    start = dt.datetime.fromtimestamp(int(stored.ts[300]), dt.UTC).isoformat()
    response = await client.get(
        f"{URL}/rsi",
        params={"instrument": "NSE:RELIANCE", "timeframe": "1d", "from": start, "timeperiod": 10},
        headers=viewer.headers,
    )
    assert response.status_code == 200, response.text
    data = response.json()
    IndicatorOut.model_validate(data)  # the documented schema is the payload's
    assert data["params"] == {"timeperiod": 10}
    assert data["t"] == stored.ts[300:].tolist()
    expected = ind.rsi(stored.close, timeperiod=10)[300:]
    np.testing.assert_allclose(data["values"]["rsi"], expected, rtol=0, atol=1e-9)
    # With warm-up the first requested bar has a value; without it, it would be null.
    assert data["values"]["rsi"][0] is not None


@pytest.mark.usefixtures("stored")
async def test_multi_output_and_no_warmup(
    client: httpx.AsyncClient, make_user: UserFactory, stored: BarArrays
) -> None:
    viewer = await make_user("viewer")
    response = await client.get(
        f"{URL}/bbands",
        params={"instrument": "NSE:RELIANCE", "timeperiod": 20, "nbdevup": "2.5", "warmup": 0},
        headers=viewer.headers,
    )
    data = response.json()
    IndicatorOut.model_validate(data)  # the documented schema is the payload's
    upper, middle, lower = ind.bbands(stored.close, 20, 2.5)
    np.testing.assert_allclose(data["values"]["middle"][19:], middle[19:], atol=1e-9)
    assert set(data["values"]) == {"upper", "middle", "lower"}
    assert data["values"]["upper"][:19] == [None] * 19
    np.testing.assert_allclose(data["values"]["upper"][19:], upper[19:], atol=1e-9)
    np.testing.assert_allclose(data["values"]["lower"][19:], lower[19:], atol=1e-9)


@pytest.mark.usefixtures("stored")
async def test_vwap_anchors_per_session(
    client: httpx.AsyncClient, make_user: UserFactory, stored: BarArrays
) -> None:
    viewer = await make_user("viewer")
    response = await client.get(
        f"{URL}/vwap", params={"instrument": "NSE:RELIANCE", "limit": 5}, headers=viewer.headers
    )
    data = response.json()
    IndicatorOut.model_validate(data)  # the documented schema is the payload's
    # Daily bars: each bar is its own session, so VWAP is the bar's typical price.
    typical = (stored.high + stored.low + stored.close) / 3
    np.testing.assert_allclose(data["values"]["vwap"], typical[-5:], rtol=1e-12)
    assert Decimal(str(data["values"]["vwap"][0])) > 0


@pytest.mark.usefixtures("stored")
async def test_bad_requests(client: httpx.AsyncClient, make_user: UserFactory) -> None:
    viewer = await make_user("viewer")
    base = {"instrument": "NSE:RELIANCE"}
    unknown = await client.get(f"{URL}/nope", params=base, headers=viewer.headers)
    assert unknown.status_code == 404
    wrong_param = await client.get(
        f"{URL}/rsi", params={**base, "period": 3}, headers=viewer.headers
    )
    assert wrong_param.status_code == 422
    assert "timeperiod" in wrong_param.json()["detail"]
    not_a_number = await client.get(
        f"{URL}/rsi", params={**base, "timeperiod": "x"}, headers=viewer.headers
    )
    assert not_a_number.status_code == 422
    too_small = await client.get(
        f"{URL}/rsi", params={**base, "timeperiod": 1}, headers=viewer.headers
    )
    assert too_small.status_code == 422
    missing = await client.get(
        f"{URL}/rsi", params={"instrument": "NSE:NOPE"}, headers=viewer.headers
    )
    assert missing.status_code == 404


async def test_the_list_names_every_indicator_with_its_defaults_and_outputs(
    client: httpx.AsyncClient, make_user: UserFactory
) -> None:
    viewer = await make_user("viewer")
    response = await client.get(URL, headers=viewer.headers)
    assert response.status_code == 200
    listing = {entry["name"]: entry for entry in response.json()}
    assert set(listing) == set(ind.__all__) - {"ma", "PivotLevels"}
    assert listing["bbands"] == {
        "name": "bbands",
        "inputs": ["close"],
        "parameters": [
            {"name": "timeperiod", "default": 20},
            {"name": "nbdevup", "default": 2.0},
            {"name": "nbdevdn", "default": 2.0},
            {"name": "matype", "default": 0},
        ],
        "outputs": ["upper", "middle", "lower"],
    }
    assert listing["pivot_points"]["outputs"] == ["p", "r1", "r2", "r3", "s1", "s2", "s3"]
    assert listing["vwap"]["inputs"] == ["high", "low", "close", "volume"]
    assert listing["rsi"]["outputs"] == ["rsi"]
    unauthenticated = await client.get(URL)
    assert unauthenticated.status_code == 401
