"""The README's "Try it" flow with the clock at 2027-01-15: past the calendar packages'
NSE data, on a provisional year (the defects issue: it broke on 2027-01-01)."""

from __future__ import annotations

import datetime as dt

import httpx
import time_machine
from fastapi import FastAPI

from quantdesk.derivatives.schemas import ChainOut
from quantdesk.marketdata.providers.demo.loader import load_demo
from tests.marketdata.providers.demo.conftest import SEED

# 10:30 IST on a Friday: the market is open.
FROZEN = dt.datetime(2027, 1, 15, 5, 0, tzinfo=dt.UTC)


async def test_readme_flow_on_2027_01_15(app: FastAPI, client: httpx.AsyncClient) -> None:
    with time_machine.travel(FROZEN, tick=True):
        report = await load_demo(
            app.state.ctx, seed=SEED, daily_years=1, minute_sessions=1, options=True
        )
        assert report.anchor == FROZEN.date()
        assert report.clamped_calendars == []
        login = {"email": "me@example.com", "password": "a long enough passphrase"}
        assert (await client.post("/api/v1/auth/register", json=login)).status_code == 201
        token = (await client.post("/api/v1/auth/login", json=login)).json()["access_token"]
        auth = {"Authorization": f"Bearer {token}"}

        chain = await client.get("/api/v1/analytics/chain/NIFTY", headers=auth)
        assert chain.status_code == 200, chain.text
        body = chain.json()
        ChainOut.model_validate(body)  # the documented schema is the payload's
        assert body["expiry"] == "2027-01-19"  # the first weekly after the anchor
        spot = float(body["spot"])
        assert abs(float(body["max_pain"]) - spot) <= 0.02 * spot
        assert 0.7 < body["pcr_oi"] < 1.5

        expiries = await client.get(
            "/api/v1/calendar/NFO/expiries",
            params={"underlying": "NIFTY", "from": "2027-01-15", "to": "2027-01-31"},
            headers=auth,
        )
        assert expiries.status_code == 200, expiries.text
        assert expiries.json()["expiries"] == [
            {"date": "2027-01-19", "kind": "weekly", "provisional": True},
            {"date": "2027-01-25", "kind": "monthly", "provisional": True},  # Republic Day
        ]
        status = await client.get("/api/v1/calendar/NSE/status", headers=auth)
        assert status.status_code == 200, status.text
        assert status.json()["is_open"] is True
        assert status.json()["session"]["provisional"] is True
