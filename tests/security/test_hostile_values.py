"""Out-of-range dates and numbers in every parameter are 4xx problems, never a 500.

The outside review found four 500s any signed-in user could trigger (year 9999 in a calendar
status and in provider bars, 2**64 in the UDF history, t = 1e-320 in the Greeks batch). This
walks every GET operation of the OpenAPI document, with the demo market loaded so handlers
go all the way to the data, and puts each hostile value into each date, time and number
parameter in turn; the batch analytics get the hostile numbers in their JSON columns.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import httpx
from fastapi import FastAPI

from quantdesk.marketdata.providers.demo.loader import load_demo
from tests.conftest import UserFactory
from tests.marketdata.providers.demo.conftest import SEED

DATES = ["9999-12-31", "0001-01-01", "2026-02-30"]
TIMES = [
    "9999-12-31T23:59:59Z",
    "0001-01-01T00:00:00Z",
    "0001-01-01T00:00:00+14:00",
    "18446744073709551616",
    "-18446744073709551616",
    "1e400",
]
INTEGERS = ["18446744073709551616", "-9223372036854775809", "-1", "0"]
NUMBERS = ["1e-320", "1e308", "-1e308", "nan", "inf", "-inf", "1e400"]

# A valid value per parameter name, so each request is well-formed but for the one under test.
VALID: dict[str, str] = {
    "underlying": "NIFTY",
    "key": "NSE:RELIANCE",
    "instrument": "NSE:RELIANCE",
    "symbol": "NSE:RELIANCE",
    "exchange": "NSE",
    "name": "demo",
    "resolution": "D",
    "year": "2026",
    "from": "2026-01-05",
    "to": "2026-02-05",
    "q": "REL",
    "keys": "NSE:RELIANCE",
    "user_id": "00000000-0000-0000-0000-000000000000",
}
TIME_VALID = {"from": "2026-01-05T00:00:00Z", "to": "2026-02-05T00:00:00Z"}
UNIX_VALID = {"from": "1767225600", "to": "1769904000"}


def _kind(parameter: dict[str, Any]) -> tuple[set[str], set[str]]:
    schema = parameter.get("schema", {})
    options = schema.get("anyOf", [schema])
    return {o.get("type") for o in options} - {None}, {o.get("format") for o in options} - {None}


def _is_time_bound(parameter: dict[str, Any]) -> bool:
    # The bars endpoints' from/to take a date, an ISO time or Unix seconds: a string whose
    # description says so, so both the date and the time values go in.
    options = parameter.get("schema", {}).get("anyOf", [parameter.get("schema", {})])
    return any("Unix seconds" in str(o.get("description", "")) for o in options)


def _hostile(types: set[str], formats: set[str]) -> list[str]:
    if "date-time" in formats:
        return TIMES
    if "date" in formats:
        return DATES
    if "integer" in types:
        return INTEGERS
    if "number" in types:
        return NUMBERS
    return []


def _valid(name: str, types: set[str], formats: set[str]) -> str:
    if "date-time" in formats:
        return TIME_VALID.get(name, "2026-01-05T00:00:00Z")
    if "integer" in types and name in UNIX_VALID:
        return UNIX_VALID[name]
    return VALID.get(name, "1" if types & {"integer", "number"} else "x")


def _requests(document: dict[str, Any]) -> list[tuple[str, str]]:
    """(operation, url) for every hostile value in every date/number parameter of every GET."""
    found: list[tuple[str, str]] = []
    for template, item in document["paths"].items():
        operation = item.get("get")
        if operation is None:
            continue
        parameters = [p for p in operation.get("parameters", []) if p["in"] in ("query", "path")]
        for target in parameters:
            types, formats = _kind(target)
            if _is_time_bound(target):
                types, formats = types, {"date-time"}
            values = _hostile(types, formats) + (DATES + INTEGERS if _is_time_bound(target) else [])
            for value in values:
                path, query = template, {}
                for parameter in parameters:
                    name = parameter["name"]
                    ptypes, pformats = _kind(parameter)
                    chosen = value if parameter is target else _valid(name, ptypes, pformats)
                    if parameter["in"] == "path":
                        path = path.replace("{" + name + "}", quote(chosen, safe=""))
                    elif parameter is target or parameter.get("required"):
                        query[name] = chosen
                url = path + ("?" + "&".join(f"{k}={quote(v)}" for k, v in query.items()))
                found.append((f"GET {template} {target['name']}={value}", url))
    return found


async def test_no_date_or_number_parameter_can_cause_a_server_error(
    app: FastAPI, client: httpx.AsyncClient, make_user: UserFactory
) -> None:
    await load_demo(app.state.ctx, seed=SEED, daily_years=1, minute_sessions=1, options=True)
    admin = await make_user("admin")
    requests = _requests(app.openapi())
    assert len(requests) > 100
    failures = []
    for label, url in requests:
        response = await client.get(url, headers=admin.headers)
        if response.status_code >= 500:
            failures.append(f"{label}: {response.status_code} {response.text[:160]}")
    assert failures == []


async def test_batch_analytics_take_hostile_numbers_row_by_row(
    client: httpx.AsyncClient, make_user: UserFactory
) -> None:
    viewer = await make_user("viewer")
    for column in ("spot", "strike", "t", "r", "sigma", "q"):
        for value in (1e-320, 1e308, -1e308, 5e-324):
            row = {"kind": "call", "spot": 100, "strike": 100, "t": 0.5, "r": 0.05}
            greeks = await client.post(
                "/api/v1/analytics/options/greeks",
                headers=viewer.headers,
                json={**row, "sigma": 0.2, "q": 0.0, column: value},
            )
            assert greeks.status_code in (200, 422), (column, value, greeks.text)
            if column != "sigma":
                implied = await client.post(
                    "/api/v1/analytics/options/implied-vol",
                    headers=viewer.headers,
                    json={**row, "price": 10, "q": 0.0, column: value},
                )
                assert implied.status_code in (200, 422), (column, value, implied.text)
    tiny = await client.post(
        "/api/v1/analytics/options/greeks",
        headers=viewer.headers,
        json={"kind": "call", "spot": 100, "strike": 100, "t": 1e-320, "r": 0.05, "sigma": 0.2},
    )
    assert tiny.status_code == 200, tiny.text
    assert tiny.json()["delta"] == [0.5]  # at the money, an instant from expiry
