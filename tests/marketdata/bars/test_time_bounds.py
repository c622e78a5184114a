"""``from``/``to`` of the bars and indicators endpoints (issue 19): a plain date is the
exchange's local day, an ISO time needs a zone, Unix seconds work; one parameter type."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import httpx
import pytest

from quantdesk.marketdata.domain import BarArrays
from tests.conftest import UserFactory
from tests.marketdata.bars.test_indicators_api import stored

__all__ = ["stored"]
IST = ZoneInfo("Asia/Kolkata")
BARS = "/api/v1/market/bars/NSE:RELIANCE"


def _expected(stored: BarArrays) -> list[int]:
    # NSE's local days 2024-01-10 .. 2024-01-12: from 00:00 IST on the 10th to 00:00 IST
    # on the 13th (exclusive); the bars are stamped 00:00 UTC, i.e. 05:30 IST.
    start = dt.datetime(2024, 1, 10, tzinfo=IST).timestamp()
    end = dt.datetime(2024, 1, 13, tzinfo=IST).timestamp()
    return [int(t) for t in stored.ts.tolist() if start <= t < end]


@pytest.mark.parametrize(
    ("start", "end"),
    [
        ("2024-01-10", "2024-01-12"),
        ("2024-01-10T00:00:00+05:30", "2024-01-13T00:00:00+05:30"),
        ("2024-01-09T18:30:00Z", "2024-01-12T18:30:00Z"),
        (
            str(int(dt.datetime(2024, 1, 10, tzinfo=IST).timestamp())),
            str(int(dt.datetime(2024, 1, 13, tzinfo=IST).timestamp())),
        ),
    ],
)
async def test_dates_iso_times_and_unix_seconds(
    client: httpx.AsyncClient, make_user: UserFactory, stored: BarArrays, start: str, end: str
) -> None:
    viewer = await make_user("viewer")
    bars = await client.get(BARS, params={"from": start, "to": end}, headers=viewer.headers)
    assert bars.status_code == 200, bars.text
    assert bars.json()["t"] == _expected(stored) == [1704844800, 1704931200, 1705017600]
    rsi = await client.get(
        "/api/v1/analytics/indicators/rsi",
        params={"instrument": "NSE:RELIANCE", "from": start, "to": end},
        headers=viewer.headers,
    )
    assert rsi.status_code == 200, rsi.text
    assert rsi.json()["t"] == _expected(stored)


@pytest.mark.usefixtures("stored")
async def test_a_time_without_a_zone_is_refused_with_the_accepted_forms(
    client: httpx.AsyncClient, make_user: UserFactory
) -> None:
    viewer = await make_user("viewer")
    naive = await client.get(BARS, params={"from": "2024-01-10T09:15:00"}, headers=viewer.headers)
    assert naive.status_code == 422
    assert "zone" in naive.text
    nonsense = await client.get(BARS, params={"from": "last tuesday"}, headers=viewer.headers)
    assert nonsense.status_code == 422
    assert "Unix seconds" in nonsense.text
