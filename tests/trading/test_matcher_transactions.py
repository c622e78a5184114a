"""The matcher's transaction per account and tick: several fills of one account in one
tick, and a fill the account cannot pay for (its transaction undone and done again with
the order canceled)."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from typing import Any

from sqlalchemy import event

from tests.trading.conftest import Desk

KEY = "SIM:ALPHA"


async def test_one_quote_fills_two_orders_of_one_account_into_one_new_position(
    desk: Desk,
) -> None:
    # Both fills in one transaction, the position opened by the first: the second must find
    # it (a second new row for the same position would fail the whole transaction).
    first = await desk.place(side="buy", quantity=100, type="limit", limit_price="100.00")
    second = await desk.place(side="buy", quantity=50, type="limit", limit_price="99.90")
    assert await desk.fills() == []
    await desk.quote(KEY, "99.80", 1000, "99.85", 1000, "99.85")
    # Resting orders trade at their own limits (issue 11, case 4).
    assert await desk.fills(first["id"]) == [("100", "100.00")]
    assert await desk.fills(second["id"]) == [("50", "99.90")]
    assert (await desk.order(first["id"]))["status"] == "filled"
    assert (await desk.order(second["id"]))["status"] == "filled"
    positions = (await desk.get("/positions"))["items"]
    assert [(p["instrument"], p["quantity"]) for p in positions] == [(KEY, "150")]
    # Average cost by hand: (100 x 100.00 + 50 x 99.90) / 150 = 14,995 / 150, to 8 places.
    assert positions[0]["average_price"] == "99.96666667"


async def test_a_fill_beyond_the_cash_cancels_its_order_and_stores_nothing_of_it(
    desk: Desk,
) -> None:
    r = await desk.client.post(
        "/api/v1/accounts", json={"starting_cash": "12000"}, headers=desk.trader.headers
    )
    assert r.status_code == 201, r.text
    small = replace(desk, account_id=r.json()["id"])
    # Reserved at the stop plus the 10% price band: 101.00 x 1.1 x 100 = 11,110.
    stop = await small.place(side="buy", quantity=100, type="stop", stop_price="101.00")
    assert Decimal((await small.get())["reserved"]) > Decimal("11000")
    # The market gaps to 150: 100 at the ask would cost 15,000, more than the 12,000.
    await small.quote(KEY, "149.95", 500, "150.00", 500, "150.00")
    got = await small.order(stop["id"])
    assert got["status"] == "canceled"
    assert got["filled_quantity"] == "0"
    assert "cash below zero" in got["reason"]
    assert await small.fills() == []
    account = await small.get()
    assert Decimal(account["cash"]) == Decimal("12000")
    assert Decimal(account["reserved"]) == 0
    # The matcher goes on matching this account.
    after = await small.place(side="buy", quantity=10, type="limit", limit_price="150.00")
    assert await small.fills(after["id"]) == [("10", "150.00")]


async def test_a_fills_reads_are_the_account_lock_and_one_query(desk: Desk) -> None:
    """Storing a match reads the account (locked) and, in one query, its orders (locked),
    their positions and whether any of its fills is stored already; then it only writes."""
    held = await desk.place(side="buy", quantity=40, type="limit", limit_price="100.00")
    await desk.quote(KEY, "99.90", 500, "99.95", 500, "99.95")  # opens the position
    resting = await desk.place(side="buy", quantity=10, type="limit", limit_price="99.00")
    engine = desk.ctx.database.engine.sync_engine
    statements: list[str] = []

    def record(*args: Any) -> None:
        statements.append(" ".join(str(args[2]).split()))

    event.listen(engine, "before_cursor_execute", record)
    try:
        await desk.quote(KEY, "98.90", 500, "98.95", 500, "98.95")
    finally:
        event.remove(engine, "before_cursor_execute", record)
    trading = ("trading_accounts", "orders", "fills", "positions")
    reads = [s for s in statements if s.startswith("SELECT") and any(t in s for t in trading)]
    assert len(reads) == 2, reads
    assert reads[0].startswith("SELECT trading_accounts.id")
    assert "FROM orders LEFT OUTER JOIN positions" in reads[1]
    assert "FROM fills WHERE fills.execution_id IN" in reads[1]
    # What it read was enough: the fill booked onto the position the first one opened.
    assert await desk.fills(resting["id"]) == [("10", "99.00")]
    assert await desk.fills(held["id"]) == [("40", "100.00")]
    positions = (await desk.get("/positions"))["items"]
    assert [(p["instrument"], p["quantity"]) for p in positions] == [(KEY, "50")]
    # (40 x 100.00 + 10 x 99.00) / 50 = 4,990 / 50
    assert positions[0]["average_price"] == "99.8"
