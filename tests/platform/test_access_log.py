"""The buffered JSON access log: what a line holds, and when lines reach stderr."""

from __future__ import annotations

import asyncio
import json
import re
from datetime import UTC, datetime
from typing import Any

import pytest

from quantdesk.platform.logging import AccessLog, UtcClock

REQUEST: dict[str, Any] = {
    "request_id": "r-1",
    "method": "GET",
    "route": "/api/v1/things/{id}",
    "path": "/api/v1/things/7",
    "status": 200,
    "seconds": 0.0012345,
    "client": "203.0.113.9",
    "user_id": None,
}


def _lines(text: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in text.splitlines()]


async def test_lines_wait_for_the_flush_timer(capsys: pytest.CaptureFixture[str]) -> None:
    # A zero interval: the timer fires on the event loop's next turn, not during the calls.
    log = AccessLog("INFO", json=True, flush_interval_s=0)
    log.write(**REQUEST)
    log.write(**{**REQUEST, "request_id": "r-2", "user_id": "u-9"})
    assert capsys.readouterr().err == ""
    for _ in range(3):
        await asyncio.sleep(0)
    first, second = _lines(capsys.readouterr().err)
    assert first == {
        "event": "request",
        "level": "info",
        "logger": "quantdesk.access",
        "timestamp": first["timestamp"],
        "request_id": "r-1",
        "method": "GET",
        "route": "/api/v1/things/{id}",
        "path": "/api/v1/things/7",
        "status": 200,
        "duration_ms": 1.234,
        "client": "203.0.113.9",
    }
    assert second["request_id"] == "r-2"
    assert second["user_id"] == "u-9"


async def test_a_full_buffer_is_written_at_once(capsys: pytest.CaptureFixture[str]) -> None:
    log = AccessLog(
        "INFO", json=True, flush_interval_s=60, buffer_bytes=800
    )  # a line is about 230 bytes
    for number in range(3):
        log.write(**{**REQUEST, "request_id": f"r-{number}"})
    assert capsys.readouterr().err == ""
    log.write(**{**REQUEST, "request_id": "r-3"})
    assert [line["request_id"] for line in _lines(capsys.readouterr().err)] == [
        "r-0",
        "r-1",
        "r-2",
        "r-3",
    ]
    log.flush()
    assert capsys.readouterr().err == ""


def test_without_an_event_loop_lines_are_written_at_once(
    capsys: pytest.CaptureFixture[str],
) -> None:
    log = AccessLog("INFO", json=True)
    log.write(**REQUEST)
    assert _lines(capsys.readouterr().err)[0]["request_id"] == "r-1"


def test_secrets_in_the_path_are_scrubbed(capsys: pytest.CaptureFixture[str]) -> None:
    log = AccessLog("INFO", json=True)
    log.write(**{**REQUEST, "path": "/api/v1/keys/qd_live_abcdefghijklmnopqrstuvwxyz"})
    (line,) = _lines(capsys.readouterr().err)
    assert "abcdefghijklmnop" not in str(line["path"])


def test_above_info_nothing_is_logged(capsys: pytest.CaptureFixture[str]) -> None:
    log = AccessLog("WARNING", json=True)
    log.write(**REQUEST)
    log.flush()
    assert capsys.readouterr().err == ""


def test_utc_clock_matches_isoformat() -> None:
    clock = UtcClock()
    before = datetime.now(UTC)
    stamp = clock.now()
    after = datetime.now(UTC)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", stamp)
    parsed = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    assert before <= parsed <= after
