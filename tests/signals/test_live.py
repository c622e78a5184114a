"""Live signals end to end: quotes on the bus become a closed daily bar (stored), the model's
value for it is published on the stream's ``signals`` channel, and it is exactly what
``GET /api/v1/signals/{model}/{instrument}`` answers for that bar."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from decimal import Decimal

import httpx
import pytest
from fastapi import FastAPI

from quantdesk.marketdata.bars.repository import BarStore
from quantdesk.marketdata.domain import Quote, Timeframe
from quantdesk.marketdata.quotes.service import QuoteService
from quantdesk.platform.context import AppContext
from tests.conftest import UserFactory
from tests.signals.conftest import BARS_PER_INSTRUMENT, wait_for_job
from tests.signals.synthetic import DAY, START
from tests.stream.conftest import Served, open_stream

FIRST_LIVE_DAY = START + BARS_PER_INSTRUMENT * DAY  # the day after the last stored bar


@pytest.fixture
async def served(app: FastAPI) -> AsyncIterator[Served]:
    server = Served(app)
    await server.start()
    yield server
    await server.stop()


def at(day: int, hour: int) -> dt.datetime:
    """``hour`` o'clock UTC on the ``day``-th day after the last stored bar (SIM's session
    for a date runs 00:00-24:00 IST, so these hours fall on that date)."""
    return dt.datetime.fromtimestamp(FIRST_LIVE_DAY + day * DAY + hour * 3600, dt.UTC)


async def test_a_closed_bar_signals_on_the_stream_as_the_api_serves_it(
    app: FastAPI, client: httpx.AsyncClient, make_user: UserFactory, bars_market: list[str],
    served: Served,
) -> None:  # fmt: skip
    ctx: AppContext = app.state.ctx
    trader, other = await make_user(role="trader"), await make_user(role="trader")
    body = {"name": "live", "instruments": ["SIM:ALPHA"], "n_splits": 2, "seed": 1}
    r = await client.post("/api/v1/signals/models", json=body, headers=trader.headers)
    job = await wait_for_job(client, r.json()["id"], trader.headers)
    assert job["status"] == "done", job["error"]
    model_id = job["result"]["models"][0]["model_id"]

    stream = await open_stream(served.url, client, trader)
    ack = await stream.op(op="subscribe", id="s1", channel="signals", model="live",
                          instruments=["sim:alpha"])  # fmt: skip
    assert ack["type"] == "ack", ack
    assert ack["subscriptions"]["signals"] == [{"model": "live", "model_id": model_id,
                                                "version": 1, "timeframe": "1d",
                                                "instruments": ["SIM:ALPHA"]}]  # fmt: skip
    stranger = await open_stream(served.url, client, other)
    refused = await stranger.op(op="subscribe", id="x", channel="signals", model=model_id,
                                instruments=["SIM:ALPHA"])  # fmt: skip
    assert (refused["type"], refused["code"]) == ("error", "forbidden")

    quotes = QuoteService(ctx.cache, ctx.bus)
    ticks = [
        (at(0, 6), "100.00", 100),  # the first tick: its day was not watched whole, partial
        (at(1, 6), "101.05", 50),
        (at(1, 7), "102.40", 80),
        (at(1, 8), "100.95", 95),
        (at(1, 9), "101.50", 120),
        (at(2, 6), "101.55", 10),  # the next session: day 1 closes
    ]
    for ts, last, volume in ticks:
        await quotes.publish([Quote("SIM:ALPHA", Decimal(last), ts, volume=Decimal(volume))])
    frame = await stream.until(lambda f: f["type"] == "signal", within_s=10)
    day_one = FIRST_LIVE_DAY + DAY
    assert (frame["model_id"], frame["instrument"], frame["timeframe"]) == (
        model_id, "SIM:ALPHA", "1d"
    )  # fmt: skip
    assert (frame["t"], frame["ts"]) == (day_one, at(1, 0).isoformat().replace("+00:00", "Z"))

    # The bar is stored as the ticks made it; the partial day 0 is not.
    async with ctx.database.session() as db:
        stored = await BarStore(db).series("SIM:ALPHA", Timeframe.D1, start=at(0, 0))
    assert stored.ts.tolist() == [day_one]
    assert (stored.open, stored.high, stored.low, stored.close, stored.volume) == (
        ["101.05"], ["102.40"], ["100.95"], ["101.50"], ["120"]
    )  # fmt: skip

    r = await client.get("/api/v1/signals/live/SIM:ALPHA", headers=trader.headers)
    served_series = r.json()
    assert served_series["t"][-1] == day_one
    assert frame["probability"] == served_series["values"]["probability"][-1]
    assert frame["signal"] == served_series["values"]["signal"][-1]
    assert 0 < frame["probability"] < 1

    live = app.state.ctx.extensions["live_signals"]
    assert set(live.forming("SIM:ALPHA")) == {Timeframe.D1}  # day 2, being built
    ack = await stream.op(op="unsubscribe", id="u1", channel="signals", model="live")
    assert ack["subscriptions"]["signals"] == []
    assert (live.followers, live.published) == ({}, 1)
    # Followed by nobody: its quotes are no longer subscribed to, and day 2 is dropped (the
    # clock would otherwise close it without the ticks that follow, as if complete).
    assert (live.listening, live.forming("SIM:ALPHA")) == (frozenset(), {})
    await stream.close()
    await stranger.close()
