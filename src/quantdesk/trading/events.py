"""Trading events: each order transition and each change of a fill, position or account is
written to the outbox (``trading_events``) in the transaction that made it, numbered in
the account's strictly increasing sequence, for the stream to deliver.

Order transitions are also kept per order (``order_events``, the ``/events`` listing), with
the same sequence number.  After commit, ``trading.orders`` on the bus tells the matcher
about new, modified and canceled orders; the stream will read the outbox (it is the truth).
One message per unit of work, a JSON array of that work's orders in the order they changed:
a placement batch of 50 orders used to be 50 publishes (50 Redis round trips) between its
commit and its callers' answers.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import orjson
from sqlalchemy.ext.asyncio import AsyncSession

from quantdesk.platform.bus import Bus
from quantdesk.platform.db import after_commit
from quantdesk.trading.models import OrderEventRow, OrderRow, TradingAccount, TradingEvent
from quantdesk.trading.writes import RowSink, new_row

MATCHER_CHANNEL = "trading.orders"
_MATCHER_MESSAGES = "quantdesk_matcher_messages"  # this unit of work's, in session.info


def _next_seq(account: TradingAccount) -> int:
    account.event_seq += 1
    return account.event_seq


def emit(
    db: RowSink, account: TradingAccount, kind: str, payload: dict[str, Any], at: dt.datetime
) -> int:
    """Write one outbox event of ``account``; returns its sequence number."""
    seq = _next_seq(account)
    new_row(
        db,
        TradingEvent,
        account_id=account.id,
        user_id=account.user_id,
        seq=seq,
        type=kind,
        payload=orjson.dumps(payload).decode(),
        created_at=at,
    )
    return seq


def record_transition(
    db: RowSink,
    account: TradingAccount,
    order: OrderRow,
    kind: str,
    at: dt.datetime,
    *,
    reason: str | None = None,
    execution_id: str | None = None,
    order_document: dict[str, Any],
) -> None:
    """An order transition: its ``order_events`` row and its outbox ``order_update``."""
    seq = emit(
        db,
        account,
        "order_update",
        {"event": kind, "reason": reason, "execution_id": execution_id, "order": order_document},
        at,
    )
    new_row(
        db,
        OrderEventRow,
        order_id=order.id,
        account_id=account.id,
        seq=seq,
        kind=kind,
        status=order.status,
        reason=reason,
        execution_id=execution_id,
        at=at,
    )


def _text(value: object | None) -> str | None:
    return None if value is None else str(value)


def notify_matcher(
    db: AsyncSession, bus: Bus, order: OrderRow, op: str, account: TradingAccount
) -> None:
    """Tell the matcher, once this unit of work has committed, that ``order`` changed (in
    one message with every other order this unit of work changed).

    The message carries the order as committed (what the engine needs), so the matcher
    does not read it back: that read cost as much event-loop time as the placement."""
    pending: list[dict[str, Any]] | None = db.info.get(_MATCHER_MESSAGES)
    if pending is None:
        pending = db.info[_MATCHER_MESSAGES] = []
        batch = pending  # the closure keeps this list, not the name (mypy: not None)

        async def send() -> None:
            await bus.publish(MATCHER_CHANNEL, orjson.dumps(batch))

        after_commit(db, send)
    pending.append(
        {
            "op": op,
            "order_id": str(order.id),
            "instrument": order.instrument,
            "order": {
                "account_id": str(order.account_id),
                "side": order.side,
                "type": order.type,
                "time_in_force": order.time_in_force,
                "quantity": str(order.quantity),
                "limit_price": None if order.limit_price is None else str(order.limit_price),
                "stop_price": None if order.stop_price is None else str(order.stop_price),
                "order_class": order.order_class,
                "parent_id": None if order.parent_id is None else str(order.parent_id),
                "trail_price": _text(order.trail_price),
                "trail_percent": _text(order.trail_percent),
                "hwm": _text(order.hwm),
                "filled_quantity": str(order.filled_quantity),
                "triggered": order.triggered,
                "status": order.status,
                "version": order.version,
                "created_at": order.created_at.isoformat(),
                "active_from": None if order.active_from is None else order.active_from.isoformat(),
                "expires_at": None if order.expires_at is None else order.expires_at.isoformat(),
                "fill_model": account.fill_model,
                "fill_seed": account.fill_seed,
            },
        }
    )
