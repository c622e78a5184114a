"""Limits and hostile frames: connections per user, instruments per connection, the
operation rate, malformed and oversized frames (an error each, never a crash or a close)."""

from __future__ import annotations

from pathlib import Path

import pytest
from websockets.asyncio.client import connect

from quantdesk.settings import Settings
from tests.conftest import base_settings
from tests.stream.conftest import FAST, Client, Served, open_stream, ticket
from tests.support.factories import Users


@pytest.fixture
def settings(database_url: str, redis_url: str | None, tmp_path: Path) -> Settings:
    return base_settings(database_url, tmp_path / "var", redis_url).model_copy(
        update={
            **FAST,
            "stream_max_instruments": 5,
            "stream_max_frame_bytes": 1024,
            "stream_subscribe_rate": "6/minute",
        }
    )


async def test_connection_and_instrument_limits(served: Served, users: Users) -> None:
    trader = await users.logged_in("trader")
    http = users.client
    clients = [await open_stream(served.url, http, trader) for _ in range(3)]
    extra = Client(await connect(served.url))
    await extra.send(op="auth", id="a4", ticket=await ticket(http, trader.headers))
    assert await extra.closed() == 4029
    assert [f["code"] for f in extra.frames if f["type"] == "error"] == ["limits"]
    # Another user is not affected, and a closed connection frees its slot.
    await (await open_stream(served.url, http, await users.logged_in("trader"))).close()
    await clients.pop().close()
    clients.append(await open_stream(served.url, http, trader))

    ticks = clients[0]
    keys = [f"SIM:S{n}" for n in range(6)]
    ack = await ticks.op(op="subscribe", id="t1", channel="ticks", mode="ltp", instruments=keys[:4])
    assert sorted(ack["subscriptions"]["ticks"]["ltp"]) == keys[:4]
    refused = await ticks.op(op="subscribe", id="t2", channel="ticks", instruments=keys[3:])
    assert refused["code"] == "limits"
    # The same instruments again, in another mode: a change of mode, not a new instrument.
    ack = await ticks.op(
        op="subscribe", id="t3", channel="ticks", mode="full", instruments=keys[:5]
    )
    assert sorted(ack["subscriptions"]["ticks"]["full"]) == keys[:5]
    assert ack["subscriptions"]["ticks"]["ltp"] == []
    ack = await ticks.op(op="unsubscribe", id="t4", channel="ticks", instruments=keys[:2])
    assert sorted(ack["subscriptions"]["ticks"]["full"]) == keys[2:5]
    for client in clients:
        await client.close()


async def test_malformed_frames_get_errors_and_the_connection_lives(
    served: Served, users: Users
) -> None:
    client = await open_stream(served.url, users.client, await users.logged_in("trader"))
    hostile: list[str | bytes] = [
        "not json",
        "[1, 2, 3]",
        '"a string"',
        "{}",
        '{"op": "dance", "id": "d"}',
        '{"op": "subscribe", "id": "x1", "channel": "ticks", "instruments": ["NOPE:ABC"]}',
        '{"op": "subscribe", "id": "x2", "channel": "ticks", "instruments": ["no-colon"]}',
        '{"op": "subscribe", "id": "x3", "channel": "ticks"}',
        '{"op": "subscribe", "id": "x4", "channel": "orders"}',
        '{"op": "subscribe", "id": "x5", "channel": "orders", "account_id": "a", "from_seq": 0}',
        '{"op": "subscribe", "id": "x6", "channel": "weather", "instruments": []}',
        '{"op": "ping", "id": "x7", "extra": true}',
        '{"op": "resume", "id": "x8", "cursors": []}',
        '{"op": "auth", "id": "x9", "ticket": "qdst_again"}',
        b"\x00\xff binary garbage",
        '{"op": "ping", "id": "' + "x" * 2000 + '"}',
        '{"op": "ping", "id": ' + "[" * 400 + "]" * 400 + "}",  # deep, not long
    ]
    for text in hostile:
        await client.ws.send(text)
    pong = await client.op(op="ping", id="alive")
    assert pong["type"] == "pong"
    errors = [f for f in client.frames if f["type"] == "error"]
    assert len(errors) == len(hostile)
    codes = [f["code"] for f in errors]
    assert codes.count("limits") == 1  # the frame over 1024 bytes
    assert set(codes) == {"syntax", "limits"}
    # Each error names the operation it answers, when the frame had a readable id.
    echoed = {f["id"] for f in errors if f["id"]}
    assert {"d", "x1", "x2", "x3", "x4", "x5", "x6", "x7", "x8", "x9"} <= echoed

    # The operation rate (6 a minute here): the 7th subscription operation is refused.
    answers = [
        await client.op(op="subscribe", id=f"r{n}", channel="ticks", instruments=["SIM:R"])
        for n in range(7)
    ]
    assert [a["type"] for a in answers] == ["ack"] * 6 + ["error"]
    assert answers[-1]["code"] == "rate"
    await client.close()
