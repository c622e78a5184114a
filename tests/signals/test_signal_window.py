"""``GET /api/v1/signals/{model}/{instrument}``: which bars ``from``/``to`` select (a plain
date is the exchange's local day, an ISO time with an offset is that instant, ``to``
exclusive), and a timeframe other than the model's own (the daily model applied as it is
to hourly bars resampled from stored minutes), each against a reference computed here."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import httpx
import numpy as np
import pytest

from quantdesk.marketdata.bars.repository import BarStore
from quantdesk.marketdata.domain import BarArrays, Timeframe
from quantdesk.platform.context import AppContext
from quantdesk.signals.models import SignalModelRow
from quantdesk.signals.research import artifacts
from quantdesk.signals.research.features import Bars
from quantdesk.signals.research.training import predict
from quantdesk.signals.service import WARMUP_BARS
from tests.conftest import TestUser, UserFactory
from tests.signals.conftest import wait_for_job
from tests.signals.synthetic import DAY, START, random_walk

KEY = "SIM:ALPHA"
IST = dt.timezone(dt.timedelta(hours=5, minutes=30))
# Minute bars over five IST days from local midnight 2021-05-30 (18:30 UTC the day before).
MINUTES_FROM = int(dt.datetime(2021, 5, 30, tzinfo=IST).timestamp())
MINUTES = 5 * 1440


@pytest.fixture
async def trained(
    client: httpx.AsyncClient, make_user: UserFactory, bars_market: list[str], app: Any
) -> tuple[TestUser, dict[str, Any], AppContext]:
    ctx: AppContext = app.state.ctx
    walk = random_walk(MINUTES, seed=41, vol=0.001)
    ts = MINUTES_FROM + 60 * np.arange(MINUTES, dtype=np.int64)
    o, h, lo, c = (np.round(v, 2) for v in (walk.open, walk.high, walk.low, walk.close))
    async with ctx.database.session(immediate=True) as db:
        await BarStore(db).bulk_load(KEY, Timeframe.M1, BarArrays(ts, o, h, lo, c, walk.volume))
    trader = await make_user(role="trader")
    body = {"name": "window", "instruments": [KEY], "n_splits": 2, "seed": 1,
            "end": dt.datetime.fromtimestamp(START + 200 * DAY, dt.UTC).isoformat()}  # fmt: skip
    r = await client.post("/api/v1/signals/models", json=body, headers=trader.headers)
    job = await wait_for_job(client, r.json()["id"], trader.headers)
    assert job["status"] == "done", job["error"]
    r = await client.get(f"/api/v1/signals/models/{job['result']['models'][0]['model_id']}",
                         headers=trader.headers)  # fmt: skip
    return trader, r.json(), ctx


async def _reference(ctx: AppContext, model: dict[str, Any], bars: Bars, first: int,
                     stop: int) -> list[float]:  # fmt: skip
    """P(up) of bars ``first..stop-1`` predicted over them and the 60 bars before."""
    async with ctx.database.session() as db:
        row = await db.get(SignalModelRow, uuid.UUID(model["id"]))
        assert row is not None
        loaded = artifacts.load_model(row.artifact, row.artifact_digest)
    begin = first - WARMUP_BARS
    window = Bars(*(np.array(c[begin:stop]) for c in bars.columns()))
    values: list[float] = predict(loaded, window, model["features"])[WARMUP_BARS:].tolist()
    return values


async def _daily(ctx: AppContext) -> Bars:
    async with ctx.database.session() as db:
        series = await BarStore(db).series(KEY, Timeframe.D1, limit=10_000)
    a = series.arrays()
    return Bars(a.ts.astype(np.int64), a.open, a.high, a.low, a.close, a.volume)


async def test_from_and_to_as_local_dates_and_as_times_with_an_offset(
    client: httpx.AsyncClient, trained: tuple[TestUser, dict[str, Any], AppContext]
) -> None:
    trader, model, ctx = trained
    url = f"/api/v1/signals/{model['id']}/{KEY}"
    daily = await _daily(ctx)
    day = {int(t): k for k, t in enumerate(daily.ts)}
    # The daily bars open at 00:00 UTC, 05:30 on the exchange's (IST) clock.
    mar1 = int(dt.datetime(2020, 3, 1, tzinfo=dt.UTC).timestamp())

    # Local dates: from the start of 1 March IST to the end of 10 March IST: ten bars.
    r = await client.get(url, params={"from": "2020-03-01", "to": "2020-03-10"},
                         headers=trader.headers)  # fmt: skip
    assert r.status_code == 200, r.text
    series = r.json()
    assert series["t"] == [mar1 + k * DAY for k in range(10)]
    expected = await _reference(ctx, model, daily, day[mar1], day[mar1] + 10)
    assert series["values"]["probability"] == expected
    assert series["values"]["signal"] == [1.0 if p > 0.5 else 0.0 for p in expected]

    # Times with an offset are instants, `to` exclusive: 05:30+05:30 is the bar's open.
    r = await client.get(
        url,
        params={"from": "2020-03-01T05:30:00+05:30", "to": "2020-03-10T05:30:00+05:30"},
        headers=trader.headers,
    )
    assert r.json()["t"] == [mar1 + k * DAY for k in range(9)]
    # One second after a bar's open leaves that bar out of `from`.
    r = await client.get(url, params={"from": "2020-03-01T05:30:01+05:30", "to": "2020-03-04"},
                         headers=trader.headers)  # fmt: skip
    assert r.json()["t"] == [mar1 + DAY, mar1 + 2 * DAY, mar1 + 3 * DAY]
    # Unix seconds too; the warm-up is the 60 bars before the window's first, whatever
    # bound selected it.
    r = await client.get(url, params={"from": str(mar1 + 2 * DAY), "to": str(mar1 + 3 * DAY)},
                         headers=trader.headers)  # fmt: skip
    one = r.json()
    assert one["t"] == [mar1 + 2 * DAY]
    assert one["values"]["probability"] == await _reference(
        ctx, model, daily, day[mar1] + 2, day[mar1] + 3
    )

    # A window with no bars is an empty series, not an error.
    r = await client.get(url, params={"from": "2019-01-01", "to": "2019-02-01"},
                         headers=trader.headers)  # fmt: skip
    assert (r.status_code, r.json()["t"], r.json()["values"]) == (
        200, [], {"probability": [], "signal": []},
    )  # fmt: skip
    for params, words in (
        ({"from": "2020-03-01T05:30:00"}, "timezone"),
        ({"from": "2020-03-05", "to": "2020-03-01"}, "before"),
    ):
        r = await client.get(url, params=params, headers=trader.headers)
        assert r.status_code == 422, params
        assert r.headers["content-type"] == "application/problem+json"
        assert words in r.json()["detail"]


async def test_another_timeframe_applies_the_model_to_its_bars(
    client: httpx.AsyncClient, trained: tuple[TestUser, dict[str, Any], AppContext]
) -> None:
    trader, model, ctx = trained
    assert model["timeframe"] == "1d"
    r = await client.get(f"/api/v1/signals/{model['id']}/{KEY}",
                         params={"timeframe": "1h", "from": "2021-06-02", "to": "2021-06-03"},
                         headers=trader.headers)  # fmt: skip
    assert r.status_code == 200, r.text
    series = r.json()
    assert series["timeframe"] == "1h"
    # Hourly bars of SIM's round-the-clock session start at its local midnight: on the
    # half hour in UTC.  Two local days: 48 of them.
    june2 = int(dt.datetime(2021, 6, 2, tzinfo=IST).timestamp())
    assert series["t"] == [june2 + 3600 * k for k in range(48)]

    # The hours built here from the stored minutes (open first, high max, low min, close
    # last, volume summed), then the daily model's P(up) over them.
    async with ctx.database.session() as db:
        minutes = (await BarStore(db).series(KEY, Timeframe.M1, limit=MINUTES)).arrays()
    hour = (minutes.ts.astype(np.int64) - MINUTES_FROM) // 3600
    starts = np.flatnonzero(np.diff(hour, prepend=-1))
    ends = np.append(starts[1:], hour.size)
    hourly = Bars.of(
        MINUTES_FROM + 3600 * hour[starts],
        minutes.open[starts],
        [minutes.high[a:b].max() for a, b in zip(starts, ends, strict=True)],
        [minutes.low[a:b].min() for a, b in zip(starts, ends, strict=True)],
        minutes.close[ends - 1],
        [minutes.volume[a:b].sum() for a, b in zip(starts, ends, strict=True)],
    )
    first = int(np.searchsorted(hourly.ts, june2))
    expected = await _reference(ctx, model, hourly, first, first + 48)
    assert series["values"]["probability"] == pytest.approx(expected, rel=1e-12, abs=1e-15)
    assert all(p is not None for p in series["values"]["probability"])
