"""``quantdesk calendar import``: an exchange's official list, stored, audited, and served
by every app that starts afterwards; a bad file changes nothing."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import func, select
from typer.testing import CliRunner

from quantdesk.app import create_app
from quantdesk.cli import app as cli
from quantdesk.marketdata.calendars.official import install_official_years
from quantdesk.marketdata.models import CalendarDayRow
from quantdesk.platform.context import AppContext
from quantdesk.security.models import SecurityEvent
from quantdesk.settings import Settings
from tests.marketdata.providers.demo.test_cli import environment

OFFICIAL = """date,name,kind,open,close
2027-01-26,Republic Day
2027-03-22,Holi
2027-10-29,Diwali Laxmi Pujan
2027-10-29,Muhurat trading,special,18:00,19:00
"""


async def _served(settings: Settings) -> tuple[dict[str, Any], int, int]:
    """The 2027 NSE holidays as a fresh app serves them, and the stored rows and events."""
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            login = {"email": "cal@example.com", "password": "a long enough passphrase"}
            registered = await http.post("/api/v1/auth/register", json=login)
            assert registered.status_code in (201, 409)  # 409: an earlier app of this test
            token = (await http.post("/api/v1/auth/login", json=login)).json()["access_token"]
            response = await http.get(
                "/api/v1/calendar/NSE/holidays",
                params={"year": 2027},
                headers={"Authorization": f"Bearer {token}"},
            )
            assert response.status_code == 200, response.text
        ctx: AppContext = application.state.ctx
        async with ctx.database.session() as db:
            rows = await db.scalar(select(func.count()).select_from(CalendarDayRow))
            events = await db.scalar(
                select(func.count())
                .select_from(SecurityEvent)
                .where(SecurityEvent.event_type == "calendar_imported")
            )
    return response.json(), int(rows or 0), int(events or 0)


def test_import_replaces_the_provisional_year_for_every_app(
    settings: Settings, tmp_path: Path
) -> None:
    try:
        before, rows, _ = asyncio.run(_served(settings))
        assert before["provisional"] is True
        assert rows == 0
        listing = tmp_path / "nse-2027.csv"
        listing.write_text(OFFICIAL)
        result = CliRunner().invoke(
            cli,
            ["calendar", "import", str(listing), "--exchange", "NSE"],
            env=environment(settings),
        )
        assert result.exit_code == 0, result.output
        assert "NSE 2027: 3 holidays, 1 sessions" in result.output
        again = CliRunner().invoke(
            cli,
            ["calendar", "import", str(listing), "--exchange", "NSE"],
            env=environment(settings),
        )
        assert "(replaced 4 stored days)" in again.output
        after, rows, events = asyncio.run(_served(settings))
        assert after["provisional"] is False
        assert [(h["date"], h["name"], h["provisional"]) for h in after["holidays"]] == [
            ("2027-01-26", "Republic Day", False),
            ("2027-03-22", "Holi", False),
            ("2027-10-29", "Diwali Laxmi Pujan", False),
        ]
        assert rows == 4  # re-importing replaced the year, it did not add to it
        assert events == 2
    finally:
        install_official_years([])


def test_a_bad_file_is_refused_whole_and_stores_nothing(settings: Settings, tmp_path: Path) -> None:
    listing = tmp_path / "bad.csv"
    listing.write_text("date,name\n2027-01-26,Republic Day\n2027-02-30,Nonsense\n")
    result = CliRunner().invoke(
        cli, ["calendar", "import", str(listing), "--exchange", "NSE"], env=environment(settings)
    )
    assert result.exit_code == 2
    assert "line 3: date must be YYYY-MM-DD" in result.output
    assert "nothing was imported" in result.output
    served, rows, events = asyncio.run(_served(settings))
    assert (rows, events) == (0, 0)
    assert served["provisional"] is True
    install_official_years([])
