"""The stream's authentication matrix over a real socket: no ticket, late, expired, reused
and forged tickets, API keys, the browser's cookie with and without an allowed Origin, and
revocation mid-stream (logout, a revoked key, a disabled user) closing within seconds."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from websockets.asyncio.client import connect

from quantdesk.settings import Settings
from tests.conftest import base_settings
from tests.stream.conftest import FAST, Client, Served, open_stream, ticket
from tests.support.factories import Users

TTL_S = 0.5


@pytest.fixture
def settings(database_url: str, redis_url: str | None, tmp_path: Path) -> Settings:
    return base_settings(database_url, tmp_path / "var", redis_url).model_copy(
        update={**FAST, "stream_ticket_ttl_s": TTL_S}
    )


async def _refused(
    url: str, *frames: str, **options: object
) -> tuple[int | None, list[str | None]]:
    """Connect, send ``frames`` and read to the close: the close code and the error codes."""
    client = Client(await connect(url, **options))  # type: ignore[arg-type]
    for text in frames:
        await client.ws.send(text)
    code = await client.closed()
    return code, [f.get("code") for f in client.frames if f["type"] == "error"]


async def test_ticket_matrix(served: Served, users: Users) -> None:
    trader = await users.logged_in("trader")
    http = users.client
    url = served.url
    # No ticket: the first frame is something else, or never comes (the timeout is 1 s).
    assert await _refused(url, '{"op": "ping", "id": "x"}') == (4001, ["auth"])
    assert await _refused(url) == (4001, ["auth"])
    assert await _refused(url, "not json") == (4001, ["auth"])
    # Forged, reused and expired tickets.
    forged = '{"op": "auth", "id": "a", "ticket": "qdst_made-up"}'
    assert await _refused(url, forged) == (4001, ["auth"])
    used = await ticket(http, trader.headers)
    first = Client(await connect(url))
    await first.send(op="auth", id="a1", ticket=used)
    ack = await first.recv()
    assert ack["type"] == "ack"
    assert ack["op"] == "auth"
    assert ack["id"] == "a1"
    again = f'{{"op": "auth", "id": "a2", "ticket": "{used}"}}'
    assert await _refused(url, again) == (4001, ["auth"])
    stale = await ticket(http, trader.headers)
    await asyncio.sleep(TTL_S + 0.3)
    late = f'{{"op": "auth", "id": "a3", "ticket": "{stale}"}}'
    assert await _refused(url, late) == (4001, ["auth"])
    # The ticket endpoint itself needs a credential, and a ticket is no credential.
    response = await http.post("/api/v1/stream/tickets")
    assert response.status_code == 401
    response = await http.post(
        "/api/v1/stream/tickets", headers={"Authorization": f"Bearer {used}"}
    )
    assert response.status_code == 401
    await first.close()


async def test_revocation_disconnects_within_seconds(served: Served, users: Users) -> None:
    http = users.client
    trader = await users.logged_in("trader")
    second_session = await users.sign_in(trader)
    key = await users.api_key(trader)
    admin = await users.admin()
    by_session = await open_stream(served.url, http, trader)
    by_other_session = await open_stream(served.url, http, second_session)
    by_key = await open_stream(served.url, http, key.headers)
    response = await http.post("/api/v1/auth/logout", headers=trader.headers)
    assert response.status_code in (200, 204), response.text
    assert await by_session.closed(within_s=3) == 4001
    await by_other_session.op(op="ping", id="still-here")  # another session is unaffected
    response = await http.delete(f"/api/v1/api-keys/{key.id}", headers=second_session.headers)
    assert response.status_code in (200, 204), response.text
    assert await by_key.closed(within_s=3) == 4001
    # Disabling the user revokes every session: the last connection goes too.
    response = await http.patch(
        f"/api/v1/admin/users/{trader.id}", json={"is_active": False}, headers=admin.headers
    )
    assert response.status_code == 200, response.text
    assert await by_other_session.closed(within_s=3) == 4001


async def test_browser_cookie_needs_an_allowed_origin(
    served: Served, users: Users, settings: Settings
) -> None:
    registered = await users.registered("trader")
    login = await users.client.post(
        "/api/v1/auth/login", json={**registered.credentials, "cookie": True}
    )
    assert login.status_code == 200, login.text
    cookie = f"qd_access={login.cookies['qd_access']}"
    evil = {"Cookie": cookie, "Origin": "https://evil.example"}
    assert await _refused(served.url, additional_headers=evil) == (4003, ["forbidden"])
    assert await _refused(served.url, additional_headers={"Cookie": cookie}) == (
        4003,
        ["forbidden"],
    )
    forged = {"Cookie": "qd_access=not.a.jwt", "Origin": settings.public_base_url}
    assert await _refused(served.url, additional_headers=forged) == (4001, ["auth"])
    ours = {"Cookie": cookie, "Origin": settings.public_base_url}
    client = Client(await connect(served.url, additional_headers=ours))
    ack = await client.recv()
    assert ack["type"] == "ack"
    assert ack["op"] == "auth"
    assert (await client.op(op="ping", id="p"))["type"] == "pong"
    await client.close()
