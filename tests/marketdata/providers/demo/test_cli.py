"""``quantdesk demo load`` and ``quantdesk data backfill`` through the real command line."""

from __future__ import annotations

import re

from typer.testing import CliRunner

from quantdesk.cli import app
from quantdesk.settings import Settings
from tests.conftest import TEST_SECRET


def environment(settings: Settings) -> dict[str, str]:
    env = {
        "QUANTDESK_PROFILE": "test",
        "QUANTDESK_DATABASE_URL": settings.database_url,
        "QUANTDESK_VAR_DIR": str(settings.var_dir),
        "QUANTDESK_SECRET_KEY": TEST_SECRET,
        "QUANTDESK_DEMO_SEED": "424242",
        "QUANTDESK_LOG_LEVEL": "WARNING",
    }
    if settings.redis_url:
        env["QUANTDESK_REDIS_URL"] = settings.redis_url
    return env


def test_demo_load_then_already_loaded(settings: Settings) -> None:
    runner = CliRunner()
    args = [
        "demo", "load", "--anchor", "2026-06-17", "--years", "1", "--minute-sessions", "1",
        "--no-options", "--no-migrate",
    ]  # fmt: skip
    first = runner.invoke(app, args, env=environment(settings))
    assert first.exit_code == 0, first.output
    loaded = re.search(
        r"(\d+) new instruments, (\d+) daily bars, (\d+) 1-minute bars", first.output
    )
    assert loaded is not None, first.output
    # 19 underlyings and 22 futures; one session of minutes for the 19 underlyings and 11
    # near months: SIM (4 underlyings, 1 future) trades round the clock, 1440 minutes.
    assert loaded.group(1) == "41"
    assert int(loaded.group(3)) == 10 * 375 + 5 * 390 + 10 * 375 + 5 * 1440
    second = runner.invoke(app, args, env=environment(settings))
    assert second.exit_code == 0, second.output
    assert "already loaded (seed 424242, anchor 2026-06-17)" in second.output
    # Skipped on the record of the first load, without building the demo market (issue 19).
    assert "nothing to do" in second.output
    assert (settings.var_dir / "demo-loaded.json").exists()


def test_demo_load_skips_only_an_unchanged_master(settings: Settings) -> None:
    runner = CliRunner()
    args = [
        "demo", "load", "--anchor", "2026-06-17", "--years", "1", "--minute-sessions", "1",
        "--no-options", "--no-migrate",
    ]  # fmt: skip
    assert runner.invoke(app, args, env=environment(settings)).exit_code == 0
    # Another request (a different anchor) is not the recorded one: loaded, not skipped.
    later = [*args[:3], "2026-06-18", *args[4:]]
    again = runner.invoke(app, later, env=environment(settings))
    assert again.exit_code == 0, again.output
    assert "nothing to do" not in again.output


def test_data_backfill_from_the_demo_provider(settings: Settings) -> None:
    runner = CliRunner()
    args = [
        "data", "backfill", "--provider", "demo", "--instruments", "NSE:ITC,NYSE:SPY",
        "--from", "2026-06-01", "--to", "2026-06-05", "--timeframe", "1m",
    ]  # fmt: skip
    result = runner.invoke(app, args, env=environment(settings))
    assert result.exit_code == 0, result.output
    assert "NSE:ITC: 1875 bars in 1 chunks" in result.output  # 5 sessions x 375
    assert "NYSE:SPY: 1950 bars in 1 chunks" in result.output  # 5 sessions x 390
    again = runner.invoke(app, args, env=environment(settings))
    assert "NSE:ITC: 1 bars in 1 chunks (resumed at 2026-06-05 09:59)" in again.output
    unknown = runner.invoke(app, [*args[:3], "nope", *args[4:]], env=environment(settings))
    assert unknown.exit_code == 1
    assert "unknown provider 'nope'" in unknown.output
