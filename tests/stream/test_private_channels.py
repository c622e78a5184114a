"""Private channels over a real socket: order events in sequence, from_seq replay, and one
user never seeing another's events (adversarially: guessing, resuming, racing)."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from tests.stream.conftest import Desk, Served, open_stream, private_events
from tests.support.factories import Users


async def _place(desk: Desk, price: str = "90.00") -> dict[str, Any]:
    return await desk.place(
        side="buy", quantity=1, type="limit", limit_price=price, time_in_force="gtc"
    )


async def test_order_events_in_sequence_and_replayed_from_seq(
    served_either_way: Served, desk: Desk
) -> None:
    served = served_either_way
    client = await open_stream(served.url, desk.client, desk.trader)
    ack = await client.op(op="subscribe", id="c3", channel="orders", account_id=desk.account_id)
    assert ack["type"] == "ack"
    assert ack["subscriptions"]["private"] == [
        {
            "channel": "orders",
            "account_id": desk.account_id,
            "seq": ack["subscriptions"]["private"][0]["seq"],
        }
    ]
    order = await _place(desk)
    r = await desk.client.delete(desk.url(f"/orders/{order['id']}"), headers=desk.trader.headers)
    assert r.status_code == 200, r.text
    canceled = await client.until(lambda f: f.get("event") == "canceled")
    updates = private_events(client.frames, "order_update")
    assert [u["event"] for u in updates] == ["pending_new", "new", "canceled"]
    assert all(u["order"]["id"] == order["id"] for u in updates)
    seqs = [u["seq"] for u in updates]
    assert seqs == sorted(seqs)
    assert len(set(seqs)) == 3
    assert canceled["order"]["status"] == "canceled"
    # Only order updates on this channel, though the account also changed.
    assert {f["type"] for f in private_events(client.frames)} == {"order_update"}

    # A second connection replays from a cursor: the same events, exactly once, in order;
    # adding the account channel on the same connection replays its history too.
    again = await open_stream(served.url, desk.client, desk.trader)
    await again.op(
        op="subscribe", id="c4", channel="orders", account_id=desk.account_id, from_seq=seqs[0]
    )
    await again.until(lambda f: f.get("seq") == seqs[-1])
    assert [f["seq"] for f in private_events(again.frames)] == seqs
    await again.op(
        op="subscribe", id="c5", channel="account", account_id=desk.account_id, from_seq=1
    )
    first_account = await again.until(lambda f: f["type"] == "account")
    assert first_account["seq"] < seqs[-1]
    await client.close()
    await again.close()


async def test_another_users_account_is_refused_like_a_missing_one(
    served: Served, desk: Desk, users: Users
) -> None:
    intruder = await users.logged_in("trader")
    r = await desk.client.post("/api/v1/accounts", json={"name": "mine"}, headers=intruder.headers)
    own_account = r.json()["id"]
    spy = await open_stream(served.url, desk.client, intruder)
    refusals = []
    for n, account in enumerate([desk.account_id, str(uuid.uuid4()), "not-a-uuid"]):
        for channel in ("orders", "fills", "positions", "account"):
            refusals.append(
                await spy.op(
                    op="subscribe",
                    id=f"s{n}{channel}",
                    channel=channel,
                    account_id=account,
                    from_seq=1,
                )
            )
    assert {(f["type"], f["code"], f["message"]) for f in refusals} == {
        ("error", "forbidden", "no such account")
    }
    # resume with a stolen cursor: refused the same way, nothing subscribed
    refused = await spy.op(
        op="resume",
        id="r1",
        cursors=[{"channel": "orders", "account_id": desk.account_id, "from_seq": 1}],
    )
    assert refused["code"] == "forbidden"
    ack = await spy.op(op="subscribe", id="own", channel="orders", account_id=own_account)
    assert [s["account_id"] for s in ack["subscriptions"]["private"]] == [own_account]

    # The victim trades while the intruder listens on every channel of its own account.
    for channel in ("fills", "positions", "account"):
        await spy.op(op="subscribe", id=f"own-{channel}", channel=channel, account_id=own_account)
    victim = await open_stream(served.url, desk.client, desk.trader)
    await victim.op(op="subscribe", id="v", channel="orders", account_id=desk.account_id)
    order = await _place(desk)
    await victim.until(lambda f: f.get("event") == "new")
    await spy.op(op="ping", id="p")  # everything queued before the pong has arrived
    await asyncio.sleep(0.5)  # and the reconcile has run at least once
    await spy.op(op="ping", id="p2")
    assert private_events(spy.frames) == []
    assert all(f.get("account_id") in (None, own_account) for f in spy.frames), spy.frames
    assert all(order["id"] not in str(f) for f in spy.frames)
    await spy.close()
    await victim.close()
