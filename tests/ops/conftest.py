"""Helpers of the operations tests: the environment a ``quantdesk`` command runs with, a
second empty database, and every table's rows for before/after comparisons."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, inspect, select, table

from quantdesk.app import create_app
from quantdesk.marketdata.instruments.service import InstrumentService
from quantdesk.platform import migrations
from quantdesk.settings import Settings
from tests.conftest import TEST_SECRET, base_settings
from tests.support.factories import TestUser, Users
from tests.support.servers import PostgresServer
from tests.trading.conftest import (  # noqa: F401 - desk and sim_market: fixtures
    Desk,
    assert_ledgers_balance,
    desk,
    sim_instruments,
    sim_market,
)


def cli_env(settings: Settings) -> dict[str, str]:
    return {
        "QUANTDESK_PROFILE": "test",
        "QUANTDESK_DATABASE_URL": settings.database_url,
        "QUANTDESK_REDIS_URL": settings.redis_url or "",
        "QUANTDESK_VAR_DIR": str(settings.var_dir),
        "QUANTDESK_SECRET_KEY": TEST_SECRET,
        "QUANTDESK_LOG_LEVEL": "WARNING",
    }


@pytest.fixture
def empty_settings(
    settings: Settings, pg_server: PostgresServer | None, tmp_path: Path
) -> Iterator[Settings]:
    """Settings for a second, brand-new empty database beside the test's own."""
    if pg_server is None:
        yield base_settings(f"sqlite+aiosqlite:///{tmp_path / 'other.db'}", settings.var_dir)
        return
    name = f"e_{uuid.uuid4().hex[:12]}"
    pg_server.psql(f"CREATE DATABASE {name}")
    yield base_settings(pg_server.url(name), settings.var_dir, settings.redis_url)
    pg_server.psql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def table_rows(settings: Settings) -> dict[str, list[tuple[Any, ...]]]:
    """Every table's rows (alembic_version included), in primary-key order."""
    engine = create_engine(migrations.sync_url(settings))
    try:
        with engine.connect() as connection:
            inspector = inspect(connection)
            found: dict[str, list[tuple[Any, ...]]] = {}
            for name in sorted(inspector.get_table_names()):
                columns = [c["name"] for c in inspector.get_columns(name)]
                keys = inspector.get_pk_constraint(name)["constrained_columns"] or columns
                shape = table(name, *(_column(c) for c in columns))
                query = select(*shape.c).order_by(*(shape.c[k] for k in keys))
                found[name] = [tuple(row) for row in connection.execute(query)]
            return found
    finally:
        engine.dispose()


def _column(name: str) -> Any:
    from sqlalchemy import column

    return column(name)


async def trade_a_little(settings: Settings) -> tuple[TestUser, str]:
    """Users, a session, an account with a deposit, a filled, a cancelled and an open order,
    a halt and its resume: all through the public API."""
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, client=("203.0.113.10", 50000))
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            async with app.state.ctx.database.session(immediate=True) as db:
                await InstrumentService(db).upsert_many(sim_instruments())
            users = Users(app, http)
            trader = await users.logged_in(role="trader")
            admin = await users.logged_in(role="admin")
            r = await http.post("/api/v1/accounts", json={"name": "b"}, headers=trader.headers)
            assert r.status_code == 201, r.text
            desk = Desk(app, http, trader, admin, r.json()["id"])
            r = await http.post(
                desk.url("/deposits"), json={"amount": "2500.50"}, headers=trader.headers
            )
            assert r.status_code == 201, r.text
            await desk.quote("SIM:ALPHA", "99.95", 500, "100.05", 300, "100.00")
            filled = await desk.place(side="buy", quantity="10", type="market")
            resting = await desk.place(side="buy", quantity="5", type="limit", limit_price="99")
            r = await http.delete(desk.url(f"/orders/{resting['id']}"), headers=trader.headers)
            assert r.status_code == 200, r.text
            await desk.place(side="sell", quantity="4", type="limit", limit_price="101")
            assert await desk.fills(filled["id"]) == [("10", "100.05")]
            r = await http.post(
                "/api/v1/admin/trading-halts",
                json={"scope": "exchange", "target": "SIM", "reason": "drill"},
                headers=admin.headers,
            )
            assert r.status_code == 201, r.text
            await http.post(
                f"/api/v1/admin/trading-halts/{r.json()['id']}/resume", headers=admin.headers
            )
            await _portfolio_transactions(http, trader)
            await assert_ledgers_balance(app.state.ctx)
    return trader, desk.account_id


async def _portfolio_transactions(http: httpx.AsyncClient, trader: TestUser) -> None:
    """A portfolio with an account, a buy, a part sale and a dividend."""
    r = await http.post("/api/v1/portfolios", json={"name": "long term"}, headers=trader.headers)
    assert r.status_code == 201, r.text
    portfolio = f"/api/v1/portfolios/{r.json()['id']}"
    r = await http.post(
        f"{portfolio}/accounts", json={"name": "broker", "kind": "broker"}, headers=trader.headers
    )
    assert r.status_code == 201, r.text
    for body in (
        {"type": "buy", "instrument": "SIM:ALPHA", "date": "2026-01-05", "quantity": "10",
         "price": "101.25", "fees": "2.50"},
        {"type": "sell", "instrument": "SIM:ALPHA", "date": "2026-06-01", "quantity": "4",
         "price": "120.00", "fees": "1.10"},
        {"type": "dividend", "instrument": "SIM:ALPHA", "date": "2026-07-15", "amount": "18.00"},
    ):  # fmt: skip
        r = await http.post(f"{portfolio}/transactions", json=body, headers=trader.headers)
        assert r.status_code == 201, r.text
