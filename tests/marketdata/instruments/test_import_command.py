"""``quantdesk data import-instruments FILE`` end to end, on the test database."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from typer.testing import CliRunner

from quantdesk.cli import app as cli
from quantdesk.marketdata.instruments.service import InstrumentFilter, InstrumentService
from quantdesk.platform.db import Database
from quantdesk.settings import Settings
from tests.conftest import TEST_SECRET

GOOD = "exchange,symbol,name,type\nNSE,SBIN,State Bank of India,equity\nNSE,ITC,ITC Ltd,equity\n"


@pytest.fixture
def environment(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("QUANTDESK_PROFILE", "test")
    monkeypatch.setenv("QUANTDESK_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("QUANTDESK_SECRET_KEY", TEST_SECRET)
    monkeypatch.setenv("QUANTDESK_VAR_DIR", str(settings.var_dir))
    return settings


def stored_symbols(settings: Settings) -> list[str]:
    async def read() -> list[str]:
        database = Database(settings)
        try:
            async with database.session() as session:
                page = await InstrumentService(session).search(InstrumentFilter(), limit=100)
        finally:
            await database.dispose()
        return [i.symbol for i in page.items]

    return asyncio.run(read())


def test_import_then_reimport(environment: Settings, tmp_path: Path) -> None:
    path = tmp_path / "instruments.csv"
    path.write_text(GOOD)
    first = CliRunner().invoke(cli, ["data", "import-instruments", str(path)])
    assert first.exit_code == 0, first.output
    assert first.output.strip() == (
        "instruments.csv: generic format; 2 inserted, 0 updated, 0 unchanged, "
        "0 skipped (exchanges quantdesk does not list)"
    )
    again = CliRunner().invoke(
        cli, ["data", "import-instruments", str(path), "--format", "generic"]
    )
    assert "0 inserted, 0 updated, 2 unchanged" in again.output
    assert stored_symbols(environment) == ["ITC", "SBIN"]


def test_a_bad_row_imports_nothing(environment: Settings, tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(GOOD + "NSE,TCS,TCS,bond\n")
    result = CliRunner().invoke(cli, ["data", "import-instruments", str(path)])
    assert result.exit_code == 1
    assert "line 4: type 'bond' is not one of" in result.output
    assert "nothing was imported" in result.output
    assert stored_symbols(environment) == []


def test_missing_file_is_a_usage_error(environment: Settings, tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["data", "import-instruments", str(tmp_path / "none.csv")])
    assert result.exit_code == 2


def test_import_reports_progress(tmp_path: Path) -> None:
    from quantdesk.marketdata.instruments.importers import parse_instruments

    # issue 19: 40,000 lines of Kite's dump went by without a sign; the CLI draws these.
    lines = [f"NSE,SYM{i},Company {i},equity" for i in range(2_500)]
    text = "exchange,symbol,name,type\n" + "\n".join(lines) + "\n"
    events: list[tuple[str, int, int | None]] = []
    parsed = parse_instruments(text, progress=lambda *event: events.append(event))
    assert len(parsed.instruments) == 2_500
    assert events[0] == ("parse", 1_000, 2_501)
    assert events[-1] == ("parse", 2_501, 2_501)
    assert [done for _, done, _ in events] == sorted(done for _, done, _ in events)
