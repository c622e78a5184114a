"""An F&O order above its underlying's freeze limit is placed as child orders (docs/trading.md,
"Slicing"): SIMIDX frozen at 100 units here, lot 50: 250 becomes 100 + 100 + 50."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from quantdesk.settings import Settings
from tests.conftest import base_settings
from tests.trading.conftest import Desk

FUT = "SIM:SIMIDX26DECFUT"


@pytest.fixture
def settings(database_url: str, redis_url: str | None, tmp_path: Path) -> Settings:
    return base_settings(database_url, tmp_path / "var", redis_url).model_copy(
        update={"trading_freeze_limits": {"SIMIDX": Decimal(100)}}
    )


async def test_an_order_above_the_freeze_limit_is_sliced(desk: Desk) -> None:
    await desk.quote(FUT, "99.95", 1000, "100.05", 1000, "100.00")
    plan = await desk.place(instrument=FUT, side="buy", quantity=250, type="market", product="nrml")
    assert plan["order_class"] == "sliced"
    assert [(c["quantity"], c["parent_id"]) for c in plan["legs"]] == [
        ("100", plan["id"]), ("100", plan["id"]), ("50", plan["id"]),
    ]  # fmt: skip
    got = await desk.order(plan["id"])
    assert (got["status"], got["filled_quantity"], got["average_fill_price"]) == (
        "filled", "250", "100.05",
    )  # fmt: skip
    assert [c["status"] for c in got["legs"]] == ["filled"] * 3
    assert len(await desk.fills()) == 3
    (position,) = (await desk.get("/positions"))["items"]
    assert position["quantity"] == "250"
