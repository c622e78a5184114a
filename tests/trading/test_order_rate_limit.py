"""Order placement counts against the ``orders`` rate limit: the eleventh order inside the
window is a 429 with Retry-After.  The window is a minute here, so that a slow machine
cannot let the first second pass before the eleventh order arrives."""

from __future__ import annotations

from pathlib import Path

import pytest

from quantdesk.settings import Settings
from tests.conftest import base_settings
from tests.trading.conftest import Desk


@pytest.fixture
def settings(database_url: str, redis_url: str | None, tmp_path: Path) -> Settings:
    return base_settings(database_url, tmp_path / "var", redis_url).model_copy(
        update={"rate_limit_orders": "10/minute"}
    )


async def test_orders_are_rate_limited(desk: Desk) -> None:
    body = {"instrument": "SIM:ALPHA", "side": "buy", "quantity": 1, "type": "limit",
            "limit_price": "90.00"}  # fmt: skip
    statuses = []
    for _ in range(12):
        r = await desk.client.post(desk.url("/orders"), json=body, headers=desk.trader.headers)
        statuses.append(r.status_code)
        if r.status_code == 429:
            assert int(r.headers["Retry-After"]) >= 1
    assert statuses == [201] * 10 + [429] * 2
