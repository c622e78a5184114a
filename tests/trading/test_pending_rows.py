"""``PendingRows`` (trading/writes.py), through which placements and matches write their new
rows, stores what it was given: each journal entry with its own postings (entries given as
objects and as values, interleaved), and events in the order they were given."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal

import pytest
from sqlalchemy import select

from quantdesk.trading.models import LedgerEntry, LedgerPosting, TradingAccount, TradingEvent
from quantdesk.trading.writes import PendingRows
from tests.trading.conftest import Desk


@pytest.mark.parametrize("entries", [1, 5, 40])
async def test_entries_keep_their_postings_and_events_their_order(desk: Desk, entries: int) -> None:
    account_id = uuid.UUID(desk.account_id)
    tag = uuid.uuid4().hex[:8]
    now = dt.datetime.now(dt.UTC)
    pending = PendingRows()
    objects: list[LedgerEntry] = []
    async with desk.ctx.database.session(immediate=True) as db:
        account = await db.get(TradingAccount, account_id)
        assert account is not None
        for n in range(entries):
            # Each entry moves n + 1 within the cash book: balanced, and the cached balances
            # still equal the journal (the fixture checks the ledger after the test).
            amount = Decimal(n + 1)
            lines = [{"account_id": account_id, "book": "cash", "amount": amount},
                     {"account_id": account_id, "book": "cash", "amount": -amount}]  # fmt: skip
            memo = f"{tag}-{n}"
            head = {"account_id": account_id, "kind": "deposit", "reference": tag, "memo": memo}
            if n % 2:  # given as values, as placements give them
                pending.entry({**head, "created_at": now}, lines)
            else:  # given as objects, as the rest of the ledger builds them
                entry = LedgerEntry(**head, created_at=now)
                entry.postings = [LedgerPosting(**line) for line in lines]
                pending.add(entry)
                objects.append(entry)
        for seq in range(3):
            pending.insert(
                TradingEvent,
                {"account_id": account_id, "user_id": account.user_id, "seq": 10_000 + seq,
                 "type": tag, "payload": "{}", "created_at": now},
            )  # fmt: skip
        await pending.write(db)
        assert not pending  # forgotten once written
    async with desk.ctx.database.session() as db:
        stored = (
            await db.execute(
                select(LedgerEntry.id, LedgerEntry.memo, LedgerPosting.amount)
                .join(LedgerPosting, LedgerPosting.entry_id == LedgerEntry.id)
                .where(LedgerEntry.reference == tag)
                .order_by(LedgerEntry.id, LedgerPosting.amount)
            )
        ).all()
        events = (
            await db.execute(
                select(TradingEvent.seq).where(TradingEvent.type == tag).order_by(TradingEvent.id)
            )
        ).scalars()
        assert list(events) == [10_000, 10_001, 10_002]  # ids ascend with the given order
    expected = []
    for n in range(entries):
        expected += [(f"{tag}-{n}", Decimal(-(n + 1))), (f"{tag}-{n}", Decimal(n + 1))]
    assert [(memo, amount) for _, memo, amount in stored] == expected
    by_memo = {memo: entry_id for entry_id, memo, _ in stored}
    for n, entry in zip(range(0, entries, 2), objects, strict=True):
        assert entry.id == by_memo[f"{tag}-{n}"]  # the objects learn their ids
        assert {posting.entry_id for posting in entry.postings} == {entry.id}
