"""``quantdesk portfolio import`` end to end on the test database: a dry run, the import,
and a bad file that imports nothing (each problem with its line)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner, Result

from quantdesk.cli import app as cli
from quantdesk.settings import Settings
from tests.conftest import TEST_SECRET, UserFactory
from tests.portfolios.test_portfolios_api import BASE, CSV, create


@pytest.fixture
def environment(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("QUANTDESK_PROFILE", "test")
    monkeypatch.setenv("QUANTDESK_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("QUANTDESK_SECRET_KEY", TEST_SECRET)
    monkeypatch.setenv("QUANTDESK_VAR_DIR", str(settings.var_dir))
    return settings


async def invoke(*args: str) -> Result:
    # The command runs its own event loop: in a thread, beside the test's.
    return await asyncio.to_thread(CliRunner().invoke, cli, ["portfolio", "import", *args])


async def test_import_command(
    environment: Settings, client: httpx.AsyncClient, make_user: UserFactory, tmp_path: Path
) -> None:
    user = await make_user()
    pid = (await create(client, user))["id"]
    path = tmp_path / "trades.csv"
    path.write_text(CSV)
    common = [str(path), "--user", user.email, "--portfolio", pid]
    result = await invoke(*common, "--dry-run")
    assert result.exit_code == 0, result.output
    assert "4 lines, would create 4 transactions" in result.output
    result = await invoke(*common)
    assert "4 lines, created 4 transactions, skipped 0 duplicates" in result.output
    holdings = (await client.get(f"{BASE}/{pid}/holdings", headers=user.headers)).json()
    assert holdings["items"][0]["quantity"] == "120"
    path.write_text(CSV + "2024-07-01,sell,NSE:ACME,many,1,,,Broker\n")
    result = await invoke(*common)
    assert result.exit_code == 1
    assert "line 6: not a number" in result.output
