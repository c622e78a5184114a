"""The kill switch: admins halt new orders (everything, an exchange, an instrument) and
resume; every process refuses within a second; audited; counted in metrics."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from typer.testing import CliRunner

from quantdesk.app import create_app
from quantdesk.cli import app as cli
from quantdesk.marketdata.instruments.service import InstrumentService
from quantdesk.ops.killswitch import (
    CACHE_TTL_S,
    ActiveHalt,
    HaltScope,
    HaltSnapshot,
    TradingHalted,
    ensure_trading_allowed,
    kill_switch,
)
from quantdesk.platform.context import AppContext
from quantdesk.settings import Settings
from tests.conftest import TEST_SECRET, UserFactory
from tests.trading.conftest import Desk, sim_instruments

HALTS = "/api/v1/admin/trading-halts"


def _halt(scope: HaltScope, target: str, minutes: int = 0) -> ActiveHalt:
    at = dt.datetime(2026, 12, 3, 9, minutes, tzinfo=dt.UTC)
    return ActiveHalt(uuid.uuid4(), scope, target, f"{scope} {target}", at)


def test_the_widest_halt_covering_an_instrument_answers() -> None:
    assert HaltSnapshot().blocking("NSE:INFY") is None
    instrument = _halt(HaltScope.INSTRUMENT, "NSE:INFY")
    exchange = _halt(HaltScope.EXCHANGE, "NSE")
    everything = _halt(HaltScope.ALL, "")
    only_instrument = HaltSnapshot.of([instrument])
    assert only_instrument.blocking("NSE:INFY") == instrument
    assert only_instrument.blocking("NSE:TCS") is None
    assert only_instrument.blocking("BSE:INFY") is None
    both = HaltSnapshot.of([instrument, exchange])
    assert both.blocking("NSE:INFY") == exchange
    assert both.blocking("NSE:TCS") == exchange
    assert both.blocking("NYSE:IBM") is None
    assert HaltSnapshot.of([instrument, exchange, everything]).blocking("NYSE:IBM") == everything
    # Two halts of one key (two admins at once): the one standing longest is reported.
    older, newer = _halt(HaltScope.EXCHANGE, "NSE", 1), _halt(HaltScope.EXCHANGE, "NSE", 2)
    assert HaltSnapshot.of([newer, older]).blocking("NSE:X") == older
    assert HaltSnapshot.of([older, newer]).counts() == {
        HaltScope.ALL: 0,
        HaltScope.EXCHANGE: 1,
        HaltScope.INSTRUMENT: 0,
    }
    assert everything.describe() == "new orders are halted for the whole system: all "


@pytest.fixture
async def market(app: FastAPI) -> AppContext:
    ctx: AppContext = app.state.ctx
    async with ctx.database.session(immediate=True) as db:
        await InstrumentService(db).upsert_many(sim_instruments())
    return ctx


async def _refusal(ctx: AppContext, key: str) -> TradingHalted | None:
    try:
        await ensure_trading_allowed(ctx, key)
    except TradingHalted as exc:
        return exc
    return None


async def test_halt_and_resume_each_scope_audited_and_counted(
    market: AppContext, client: httpx.AsyncClient, make_user: UserFactory
) -> None:
    ctx = market
    admin = await make_user(role="admin")
    trader = await make_user(role="trader")
    assert await _refusal(ctx, "SIM:ALPHA") is None

    body = {"scope": "instrument", "target": "sim:alpha", "reason": "bad prints"}
    denied = await client.post(HALTS, json=body, headers=trader.headers)
    assert denied.status_code == 403

    r = await client.post(HALTS, json=body, headers=admin.headers)
    assert r.status_code == 201, r.text
    instrument_halt = r.json()
    assert instrument_halt["target"] == "SIM:ALPHA"
    assert instrument_halt["active"] is True
    assert instrument_halt["halted_by"] == str(admin.id)
    # The same halt again is not a second halt.
    again = await client.post(HALTS, json=body, headers=admin.headers)
    assert again.status_code == 200
    assert again.json()["id"] == instrument_halt["id"]

    refused = await _refusal(ctx, "SIM:ALPHA")
    assert refused is not None
    assert refused.status == 409
    assert refused.detail == "new orders are halted for SIM:ALPHA: bad prints"
    assert refused.extra["scope"] == "instrument"
    assert await _refusal(ctx, "SIM:BETA") is None

    r = await client.post(
        HALTS, json={"scope": "exchange", "target": "SIM", "reason": "feed"}, headers=admin.headers
    )
    assert r.status_code == 201, r.text
    exchange_halt = r.json()
    beta = await _refusal(ctx, "SIM:BETA")
    assert beta is not None
    assert beta.detail == "new orders are halted on exchange SIM: feed"
    assert await _refusal(ctx, "NSE:INFY") is None

    r = await client.post(HALTS, json={"scope": "all", "reason": "incident"}, headers=admin.headers)
    assert r.status_code == 201, r.text
    all_halt = r.json()
    nse = await _refusal(ctx, "NSE:INFY")
    assert nse is not None
    assert nse.extra["scope"] == "all"

    listed = await client.get(HALTS, headers=admin.headers)
    assert [h["scope"] for h in listed.json()["items"]] == ["all", "exchange", "instrument"]
    metrics = (await client.get("/metrics")).text
    assert 'quantdesk_trading_halts_active{scope="exchange"} 1.0' in metrics
    assert 'quantdesk_orders_halted_total{scope="instrument"} 1.0' in metrics
    assert 'quantdesk_orders_halted_total{scope="all"} 1.0' in metrics

    for halt in (all_halt, exchange_halt, instrument_halt):
        r = await client.post(f"{HALTS}/{halt['id']}/resume", headers=admin.headers)
        assert r.status_code == 200, r.text
        assert r.json()["active"] is False
        assert r.json()["resumed_by"] == str(admin.id)
    assert await _refusal(ctx, "SIM:ALPHA") is None
    twice = await client.post(f"{HALTS}/{all_halt['id']}/resume", headers=admin.headers)
    assert twice.status_code == 409
    history = await client.get(HALTS, params={"include_lifted": "true"}, headers=admin.headers)
    assert len(history.json()["items"]) == 3
    assert (await client.get(HALTS, headers=admin.headers)).json()["items"] == []

    events = await client.get(
        "/api/v1/admin/security-events", params={"user_id": str(admin.id)}, headers=admin.headers
    )
    kinds = [e["event_type"] for e in events.json()["items"]]
    assert kinds.count("trading_halted") == 3
    assert kinds.count("trading_resumed") == 3
    # ... and countable by type, like every security event.
    exposition = (await client.get("/metrics")).text
    assert 'quantdesk_security_events_total{type="trading_halted"} 3.0' in exposition
    assert 'quantdesk_security_events_total{type="trading_resumed"} 3.0' in exposition


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"scope": "exchange", "target": "LSE", "reason": "x"}, "target"),
        ({"scope": "instrument", "target": "SIM:NOPE", "reason": "x"}, "target"),
        ({"scope": "all", "target": "SIM", "reason": "x"}, "target"),
        ({"scope": "all", "reason": ""}, None),
    ],
)
async def test_a_halt_that_would_stop_nothing_is_refused(
    market: AppContext,
    client: httpx.AsyncClient,
    make_user: UserFactory,
    body: dict[str, str],
    field: str | None,
) -> None:
    admin = await make_user(role="admin")
    r = await client.post(HALTS, json=body, headers=admin.headers)
    assert r.status_code == 422, r.text
    if field is not None:
        assert r.json()["field"] == field


@pytest.fixture
async def second_process(settings: Settings) -> AsyncIterator[FastAPI]:
    """Another app on the same database (and Redis): what a second server process is."""
    other = create_app(settings)
    async with other.router.lifespan_context(other):
        yield other


async def test_a_halt_reaches_another_process_within_a_second(
    market: AppContext,
    second_process: FastAPI,
    client: httpx.AsyncClient,
    make_user: UserFactory,
) -> None:
    other: AppContext = second_process.state.ctx
    admin = await make_user(role="admin")
    # The other process has a fresh snapshot: no halt.
    assert await _refusal(other, "SIM:ALPHA") is None
    seen = kill_switch(other).generation
    r = await client.post(HALTS, json={"scope": "all", "reason": "drill"}, headers=admin.headers)
    assert r.status_code == 201
    if other.redis is not None:
        # Through Redis pub/sub: the other process drops its snapshot as soon as it hears.
        for _ in range(100):
            if kill_switch(other).generation != seen:
                break
            await asyncio.sleep(0.01)
        assert kill_switch(other).generation != seen
    else:
        # No shared bus (SQLite, one node): the snapshot's age bounds the delay.
        await asyncio.sleep(CACHE_TTL_S)
    assert await _refusal(other, "SIM:ALPHA") is not None
    await client.post(f"{HALTS}/{r.json()['id']}/resume", headers=admin.headers)
    if other.redis is None:
        await asyncio.sleep(CACHE_TTL_S)
    else:
        await asyncio.sleep(0.05)
    assert await _refusal(other, "SIM:ALPHA") is None


def test_halt_and_resume_from_the_command_line(settings: Settings, tmp_path: Path) -> None:
    env = {
        "QUANTDESK_PROFILE": "test",
        "QUANTDESK_DATABASE_URL": settings.database_url,
        "QUANTDESK_REDIS_URL": settings.redis_url or "",
        "QUANTDESK_VAR_DIR": str(tmp_path),
        "QUANTDESK_SECRET_KEY": TEST_SECRET,
    }
    runner = CliRunner()
    both = runner.invoke(cli, ["admin", "halt", "--all", "--exchange", "SIM", "--reason", "x"])
    assert both.exit_code == 2
    halted = runner.invoke(
        cli, ["admin", "halt", "--exchange", "sim", "--reason", "maintenance"], env=env
    )
    assert halted.exit_code == 0, halted.output
    assert "halted: exchange SIM (halt " in halted.output
    listed = runner.invoke(cli, ["admin", "halts"], env=env)
    assert "exchange  SIM" in listed.output
    assert "maintenance" in listed.output
    resumed = runner.invoke(cli, ["admin", "resume", "--exchange", "SIM"], env=env)
    assert resumed.exit_code == 0, resumed.output
    assert "resumed: exchange SIM\n" in resumed.output
    again = runner.invoke(cli, ["admin", "resume", "--exchange", "SIM"], env=env)
    assert again.exit_code == 1
    assert "no halt in force for exchange SIM" in again.output


async def test_an_order_under_a_halt_is_refused_with_its_reason(desk: Desk) -> None:
    order: dict[str, Any] = {"side": "buy", "quantity": "1", "type": "limit", "limit_price": "99"}
    r = await desk.client.post(
        HALTS,
        json={"scope": "instrument", "target": "SIM:ALPHA", "reason": "bad prints"},
        headers=desk.admin.headers,
    )
    assert r.status_code == 201, r.text
    halt_id = r.json()["id"]
    refused = await desk.client.post(
        desk.url("/orders"), json={"instrument": "SIM:ALPHA", **order}, headers=desk.trader.headers
    )
    assert refused.status_code == 409, refused.text
    problem = refused.json()
    assert problem["type"] == "urn:quantdesk:problem:trading-halted"
    assert problem["detail"] == "new orders are halted for SIM:ALPHA: bad prints"
    assert problem["reason"] == "bad prints"
    assert problem["halt_id"] == halt_id
    # Another instrument trades; cancels are never halted.
    beta = await desk.place(instrument="SIM:BETA", **order)
    cancel = await desk.client.delete(
        desk.url(f"/orders/{beta['id']}"), headers=desk.trader.headers
    )
    assert cancel.status_code == 200
    await desk.client.post(f"{HALTS}/{halt_id}/resume", headers=desk.admin.headers)
    await desk.place(instrument="SIM:ALPHA", **order)
