"""The outbox's order document (what the stream's order updates carry): exact decimal
strings and UTC times as the API prints them, for the order rows that stretch them."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Any

from quantdesk.trading.models import OrderRow
from quantdesk.trading.service import order_document

AT = dt.datetime(2026, 12, 7, 9, 15, 0, 250_000, tzinfo=dt.UTC)


def _order(**changes: Any) -> OrderRow:
    values: dict[str, Any] = {
        "id": uuid.UUID("00000000-0000-4000-8000-000000000001"),
        "account_id": uuid.UUID("00000000-0000-4000-8000-000000000002"),
        "user_id": uuid.UUID("00000000-0000-4000-8000-000000000003"),
        "client_order_id": None,
        "fingerprint": "f",
        "instrument": "SIM:ALPHA",
        "side": "buy",
        "type": "limit",
        "order_class": "simple",
        "parent_id": None,
        "time_in_force": "gtc",
        "product": "cnc",
        "quantity": Decimal(3),
        "limit_price": Decimal("100.05"),
        "stop_price": None,
        "status": "new",
        "filled_quantity": Decimal(0),
        "filled_value": Decimal(0),
        "triggered": False,
        "reserved": Decimal("300.15"),
        "reserve_price": Decimal("100.05"),
        "after_market": False,
        "active_from": None,
        "expires_at": None,
        "created_at": AT,
        "updated_at": AT,
        "version": 1,
    }
    values.update(changes)
    return OrderRow(**values)


CASES: dict[str, dict[str, Any]] = {
    "resting limit": {},
    "partly filled, a repeating average": {
        "status": "partially_filled",
        "filled_quantity": Decimal(3),
        "filled_value": Decimal("300.10"),  # 100.0333... -> 8 places
        "quantity": Decimal(7),
    },
    "every optional field set": {
        "client_order_id": "mine-1",
        "parent_id": uuid.UUID("00000000-0000-4000-8000-000000000009"),
        "type": "trailing_stop",
        "stop_price": Decimal("99.00"),
        "trail_price": Decimal("1.50"),
        "trail_percent": Decimal("0.5"),
        "hwm": Decimal("101.25"),
        "ratio": 2,
        "triggered": True,
        "after_market": True,
        "active_from": AT + dt.timedelta(hours=20),
        "expires_at": dt.datetime(2026, 12, 8, 10, 0, tzinfo=dt.UTC),
        "reason": "trailed",
    },
    "exponent and negative-zero decimals": {
        "quantity": Decimal("1E+2"),
        "reserved": Decimal("-0.00"),
        "filled_quantity": Decimal("0E-8"),
    },
    "an int where a Decimal belongs, a naive time": {
        "quantity": 5,
        "created_at": dt.datetime(2026, 12, 7, 9, 15),
    },
}


def test_order_document_values() -> None:
    document = order_document(_order(**CASES["partly filled, a repeating average"]))
    assert document["average_fill_price"] == "100.03333333"  # 300.10 / 3, 8 places
    assert document["remaining_quantity"] == "4"
    assert document["kite_status"] == "OPEN"
    assert document["created_at"] == "2026-12-07T09:15:00.250000Z"
    odd = order_document(_order(**CASES["exponent and negative-zero decimals"]))
    assert (odd["quantity"], odd["reserved"]) == ("100", "0.00")
    full = order_document(_order(**CASES["every optional field set"]))
    assert full["parent_id"] == "00000000-0000-4000-8000-000000000009"
    assert (full["trail_price"], full["trail_percent"], full["hwm"]) == ("1.50", "0.5", "101.25")
    assert full["expires_at"] == "2026-12-08T10:00:00Z"
    loose = order_document(_order(**CASES["an int where a Decimal belongs, a naive time"]))
    assert loose["quantity"] == "5"
