"""``/api/v1/stream``: the WebSocket, and the tickets that authenticate it.

The WebSocket route authenticates inside the connection (a ticket as the first frame, or the
dashboard's cookie with an allowed Origin), so it declares its policy by stamping the
endpoint rather than through ``WebSocketUser`` (which reads a token from the URL).
"""

from __future__ import annotations

from fastapi import APIRouter, Request, WebSocket

from quantdesk.platform.context import Context
from quantdesk.platform.db import utcnow
from quantdesk.security.api_keys import API_KEY_PREFIX, parse_lookup
from quantdesk.security.authn import ACCESS_COOKIE
from quantdesk.security.policy import POLICY_ATTRIBUTE, CurrentUser, PolicyKind, PolicySpec
from quantdesk.stream.protocol import CloseCode
from quantdesk.stream.schemas import TicketOut
from quantdesk.stream.service import stream_service
from quantdesk.stream.tickets import StreamIdentity, mint_ticket

router = APIRouter(prefix="/api/v1/stream", tags=["stream"])


@router.post(
    "/tickets",
    status_code=201,
    summary="A single-use ticket (30 s) to authenticate a stream connection",
)
async def create_ticket(request: Request, principal: CurrentUser, ctx: Context) -> TicketOut:
    lookup = None
    if principal.is_api_key:
        header = request.headers.get("authorization", "")
        credential = header.partition(" ")[2].strip() or request.cookies.get(ACCESS_COOKIE, "")
        if credential.startswith(API_KEY_PREFIX):
            lookup = parse_lookup(credential)
    ticket, expires_at = await mint_ticket(
        ctx.cache,
        StreamIdentity(principal, api_key_lookup=lookup),
        ctx.settings.stream_ticket_ttl_s,
        utcnow(),
    )
    return TicketOut(ticket=ticket, expires_at=expires_at)


@router.websocket("")
async def stream(websocket: WebSocket) -> None:
    service = stream_service(websocket.app.state.ctx)
    if service is None or service.stopping:
        await websocket.accept()
        await websocket.close(CloseCode.SERVER_RESTART, "the stream is not running here")
        return
    await service.serve(websocket)


setattr(stream, POLICY_ATTRIBUTE, PolicySpec(PolicyKind.AUTHENTICATED))
