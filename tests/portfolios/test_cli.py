"""``quantdesk portfolio`` end to end on the test database: the import (a dry run, the
import, a bad file that imports nothing, each problem with its line), and the issue's worked
example through create, add-transaction, holdings, gains, performance, transactions, export
and list, each ``--json`` answer equal to the API's."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner, Result

from quantdesk.cli import app as cli
from quantdesk.settings import Settings
from tests.conftest import TEST_SECRET, UserFactory
from tests.portfolios.test_portfolios_api import BASE, CSV, WORKED, create


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


async def run(*args: str) -> Result:
    return await asyncio.to_thread(CliRunner().invoke, cli, ["portfolio", *args])


def flags(row: dict[str, str]) -> list[str]:
    """A worked-example row as add-transaction's options."""
    return [item for key, value in row.items() for item in (f"--{key}", value)]


async def test_the_worked_example_through_the_cli(
    environment: Settings, client: httpx.AsyncClient, make_user: UserFactory
) -> None:
    user = await make_user()
    result = await run("create", "Long term", "--user", user.email, "--json")
    assert result.exit_code == 0, result.output
    created = json.loads(result.output)
    pid = created["id"]
    assert (created["name"], created["currency"], created["method"]) == ("Long term", "INR", "fifo")
    for row in WORKED:
        result = await run("add-transaction", pid, "--user", user.email, *flags(row), "--json")
        assert result.exit_code == 0, result.output
    # What the API answers is what the CLI prints with --json.
    api = (await client.get(f"{BASE}/{pid}/gains", headers=user.headers)).json()
    result = await run("gains", pid, "--user", user.email, "--json")
    assert json.loads(result.output) == api
    assert api["realized_pnl"] == "1482.50"  # FIFO, the worked example
    result = await run("holdings", pid, "--user", user.email, "--json")
    (holding,) = json.loads(result.output)["items"]
    assert (holding["instrument"], holding["quantity"], holding["cost_basis"]) == (
        "NSE:ACME", "150", "3907.50",
    )  # fmt: skip
    table = (await run("holdings", pid, "--user", user.email)).output
    assert "NSE:ACME" in table
    assert "3907.50" in table
    listed = await run("transactions", pid, "--user", user.email, "--type", "buy", "--json")
    assert [t["quantity"] for t in json.loads(listed.output)["items"]] == ["100", "50", "100"]
    window = ["--from", "2024-01-01", "--to", "2025-03-31"]
    result = await run("performance", pid, "--user", user.email, *window, "--json")
    perf = (
        await client.get(
            f"{BASE}/{pid}/performance",
            params={"from": "2024-01-01", "to": "2025-03-31"},
            headers=user.headers,
        )
    ).json()
    assert json.loads(result.output) == perf
    assert "twr" in (await run("performance", pid, "--user", user.email, *window)).output
    exported = (await run("export", pid, "--user", user.email)).output.strip().splitlines()
    assert len(exported) == 1 + len(WORKED)
    assert [
        p["name"]
        for p in json.loads((await run("list", "--user", user.email, "--json")).output)["items"]
    ] == ["Long term"]


async def test_refusals_are_one_line(
    environment: Settings, client: httpx.AsyncClient, make_user: UserFactory
) -> None:
    user = await make_user()
    pid = (await create(client, user))["id"]
    oversell = {**WORKED[-1], "quantity": "1"}
    result = await run("add-transaction", pid, "--user", user.email, *flags(oversell))
    assert result.exit_code == 1
    assert result.output.count("\n") == 1
    assert "exceeds" in result.output
    result = await run("add-transaction", pid, "--user", user.email,
                       *flags({**WORKED[0], "quantity": "many"}))  # fmt: skip
    assert result.exit_code == 2
    assert "quantity" in result.output
    result = await run("holdings", pid, "--user", "nobody@example.com")
    assert result.exit_code == 1
    assert "no user with e-mail nobody@example.com" in result.output
    other = await make_user()
    result = await run("holdings", pid, "--user", other.email)
    assert result.exit_code == 1  # another user's portfolio is not found, as in the API
