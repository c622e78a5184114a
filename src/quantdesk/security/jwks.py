"""``/.well-known/jwks.json``: the public keys that verify our access tokens (RFC 7517)."""

from __future__ import annotations

from fastapi import APIRouter

from quantdesk.platform.context import Context
from quantdesk.platform.responses import FastJSONResponse
from quantdesk.security.policy import Public
from quantdesk.security.services import security_services

router = APIRouter(tags=["auth"], dependencies=[Public])


@router.get(
    "/.well-known/jwks.json",
    summary="JSON Web Key Set of the token signing keys",
    response_class=FastJSONResponse,
)
async def jwks(ctx: Context) -> FastJSONResponse:
    # Short public caching: verifiers pick up a rotated key within minutes.
    return FastJSONResponse(
        security_services(ctx).keys.jwks(), headers={"Cache-Control": "public, max-age=300"}
    )
