"""The status channel: trading halts and resumptions (the kill switch), for every user, with
the halts in force as a snapshot on subscribe."""

from __future__ import annotations

import httpx

from tests.stream.conftest import Served, open_stream
from tests.support.factories import Users

HALTS = "/api/v1/admin/trading-halts"


async def test_halts_and_resumptions_reach_every_status_follower(
    served: Served, users: Users, client: httpx.AsyncClient
) -> None:
    admin = await users.admin()
    viewer = await users.logged_in("viewer")
    http = client
    standing = await http.post(
        HALTS,
        json={"scope": "exchange", "target": "SIM", "reason": "drill"},
        headers=admin.headers,
    )
    assert standing.status_code == 201, standing.text

    stream = await open_stream(served.url, http, viewer)
    ack = await stream.op(op="subscribe", id="s1", channel="status")
    assert ack["type"] == "ack"
    assert ack["subscriptions"]["status"] is True
    snapshot = await stream.until(lambda f: f["type"] == "trading_status")
    assert snapshot["halts"] == [
        {
            "halt_id": standing.json()["id"],
            "scope": "exchange",
            "target": "SIM",
            "reason": "drill",
            "at": snapshot["halts"][0]["at"],
        }
    ]
    assert snapshot["halts"][0]["at"].endswith("Z")

    # A new halt, then its lifting: both arrive, in order, with the halt's id.
    made = await http.post(
        HALTS, json={"scope": "all", "reason": "incident 42"}, headers=admin.headers
    )
    assert made.status_code == 201, made.text
    halted = await stream.until(lambda f: f["type"] == "trading_halt")
    assert halted == {
        "type": "trading_halt",
        "event": "halted",
        "halt_id": made.json()["id"],
        "scope": "all",
        "target": None,
        "reason": "incident 42",
        "at": halted["at"],
    }
    lifted = await http.post(f"{HALTS}/{made.json()['id']}/resume", headers=admin.headers)
    assert lifted.status_code == 200, lifted.text
    resumed = await stream.until(lambda f: f["type"] == "trading_halt" and f["event"] == "resumed")
    assert resumed["halt_id"] == made.json()["id"]
    assert resumed["at"] >= halted["at"]

    # Unsubscribed: no more status frames.
    ack = await stream.op(op="unsubscribe", id="s2", channel="status")
    assert ack["subscriptions"]["status"] is False
    await http.post(f"{HALTS}/{standing.json()['id']}/resume", headers=admin.headers)
    pong = await stream.op(op="ping", id="p1")
    assert pong["type"] == "pong"
    assert [f for f in stream.frames if f.get("event") == "resumed"] == [resumed]
    await stream.close()


async def test_status_takes_no_instruments_or_account(
    served: Served, users: Users, client: httpx.AsyncClient
) -> None:
    viewer = await users.logged_in("viewer")
    stream = await open_stream(served.url, client, viewer)
    refused = await stream.op(op="subscribe", id="s1", channel="status", instruments=["SIM:ALPHA"])
    assert refused["type"] == "error"
    assert refused["code"] == "syntax"
    assert "status takes no instruments" in refused["message"]
    await stream.close()
