"""Access-token verification against tampering: every forged or stale token is a 401."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi import FastAPI
from pydantic import SecretStr

from quantdesk.platform.context import AppContext
from quantdesk.platform.exceptions import Unauthenticated
from quantdesk.security.authn import verify_access_token
from quantdesk.security.principal import Role
from quantdesk.security.services import security_services
from quantdesk.security.tokens import (
    KeyRing,
    generate_private_key_pem,
    issue_access_token,
    jwk_thumbprint,
    public_key_pem,
)
from quantdesk.settings import ConfigurationError, Settings
from tests.conftest import TestUser, UserFactory


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _claims(app: FastAPI, user: TestUser, **overrides: Any) -> dict[str, Any]:
    ctx: AppContext = app.state.ctx
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": ctx.settings.token_issuer,
        "aud": ctx.settings.jwt_audience,
        "sub": str(user.id),
        "sid": str(user.session_id),
        "jti": uuid.uuid4().hex,
        "iat": now,
        "nbf": now,
        "exp": now + 600,
        "roles": ["admin"],
        "scope": "read trade admin",
    }
    claims.update(overrides)
    return {key: value for key, value in claims.items() if value is not None}


def _sign(app: FastAPI, claims: dict[str, Any], **headers: Any) -> str:
    keys = security_services(app.state.ctx).keys
    header = {"kid": keys.signing.kid, "typ": "at+jwt", **headers}
    return jwt.encode(claims, keys.signing.private_key, algorithm="EdDSA", headers=header)


def _unsigned(claims: dict[str, Any], header: dict[str, Any], signature: bytes = b"") -> str:
    head = _b64(json.dumps(header).encode())
    body = _b64(json.dumps(claims).encode())
    return f"{head}.{body}.{_b64(signature)}"


async def _status(client: httpx.AsyncClient, token: str) -> int:
    response = await client.get("/api/v1/users/me", headers={"Authorization": f"Bearer {token}"})
    if response.status_code == 401:
        assert response.headers["content-type"] == "application/problem+json"
        assert response.headers["www-authenticate"].startswith("Bearer")
    return response.status_code


async def test_a_genuine_token_passes(
    app: FastAPI, client: httpx.AsyncClient, make_user: UserFactory
) -> None:
    user = await make_user("admin")
    assert await _status(client, _sign(app, _claims(app, user))) == 200


Forgery = Callable[[FastAPI, TestUser], str]


def _alg_none(app: FastAPI, user: TestUser) -> str:
    kid = security_services(app.state.ctx).keys.signing.kid
    return _unsigned(_claims(app, user), {"alg": "none", "typ": "at+jwt", "kid": kid})


def _hs256_with_public_key(app: FastAPI, user: TestUser) -> str:
    """The classic confusion: HMAC keyed with the (public) verification key."""
    keys = security_services(app.state.ctx).keys
    public = keys.signing.verification.public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    header = {"alg": "HS256", "typ": "at+jwt", "kid": keys.signing.kid}
    unsigned = _unsigned(_claims(app, user), header).rsplit(".", 1)[0]
    signature = hmac.new(public, unsigned.encode(), hashlib.sha256).digest()
    return f"{unsigned}.{_b64(signature)}"


def _bad_signature(app: FastAPI, user: TestUser) -> str:
    token = _sign(app, _claims(app, user))
    head, body, signature = token.split(".")
    flipped = bytearray(base64.urlsafe_b64decode(signature + "=="))
    flipped[0] ^= 1
    return f"{head}.{body}.{_b64(bytes(flipped))}"


def _tampered_claims(app: FastAPI, user: TestUser) -> str:
    head, _, signature = _sign(app, _claims(app, user, roles=["viewer"])).split(".")
    return f"{head}.{_b64(json.dumps(_claims(app, user)).encode())}.{signature}"


def _foreign_key(app: FastAPI, user: TestUser) -> str:
    stranger = Ed25519PrivateKey.generate()
    kid = security_services(app.state.ctx).keys.signing.kid
    return jwt.encode(
        _claims(app, user), stranger, algorithm="EdDSA", headers={"kid": kid, "typ": "at+jwt"}
    )


def _unknown_kid(app: FastAPI, user: TestUser) -> str:
    stranger = Ed25519PrivateKey.generate()
    return jwt.encode(
        _claims(app, user), stranger, algorithm="EdDSA", headers={"kid": "k-x", "typ": "at+jwt"}
    )


FORGERIES: dict[str, Forgery] = {
    "alg none": _alg_none,
    "HS256 with the public key": _hs256_with_public_key,
    "bad signature": _bad_signature,
    "claims swapped under a valid signature": _tampered_claims,
    "signed by another key under our kid": _foreign_key,
    "unknown kid": _unknown_kid,
    "wrong audience": lambda app, user: _sign(app, _claims(app, user, aud="someone-else")),
    "wrong issuer": lambda app, user: _sign(app, _claims(app, user, iss="https://evil.example")),
    "expired": lambda app, user: _sign(
        app, _claims(app, user, iat=int(time.time()) - 4000, exp=int(time.time()) - 3000)
    ),
    "not yet valid": lambda app, user: _sign(app, _claims(app, user, nbf=int(time.time()) + 600)),
    "no expiry": lambda app, user: _sign(app, _claims(app, user, exp=None)),
    "no session": lambda app, user: _sign(app, _claims(app, user, sid=None)),
    "unknown session": lambda app, user: _sign(app, _claims(app, user, sid=str(uuid.uuid4()))),
    "another user's session": lambda app, user: _sign(
        app, _claims(app, user, sub=str(uuid.uuid4()))
    ),
    "not an access token (typ)": lambda app, user: _sign(app, _claims(app, user), typ="JWT"),
    "garbage": lambda app, user: "eyJhbGciOi.not-a.jwt",
}


@pytest.mark.parametrize("name", sorted(FORGERIES))
async def test_forged_tokens_are_refused(
    name: str, app: FastAPI, client: httpx.AsyncClient, make_user: UserFactory
) -> None:
    user = await make_user("admin")
    token = FORGERIES[name](app, user)
    assert await _status(client, token) == 401, name


async def test_revoked_session_is_refused_although_the_token_is_unexpired(
    app: FastAPI, client: httpx.AsyncClient, make_user: UserFactory
) -> None:
    user = await make_user()
    assert await _status(client, user.access_token) == 200
    await client.post("/api/v1/auth/logout", headers=user.headers)
    assert await _status(client, user.access_token) == 401
    # The plain function the WebSocket endpoint uses says the same.
    with pytest.raises(Unauthenticated):
        await verify_access_token(app.state.ctx, user.access_token)


async def test_scope_claim_cannot_exceed_the_role(app: FastAPI, make_user: UserFactory) -> None:
    user = await make_user("viewer")
    token = _sign(app, _claims(app, user, roles=["viewer"], scope="read trade admin"))
    principal = await verify_access_token(app.state.ctx, token)
    assert principal.role is Role.VIEWER
    assert {scope.value for scope in principal.scopes} == {"read"}


async def test_jwks_publishes_the_verifying_key(
    app: FastAPI, client: httpx.AsyncClient, make_user: UserFactory
) -> None:
    response = await client.get("/.well-known/jwks.json")
    assert response.status_code == 200
    (key,) = response.json()["keys"]
    assert key["kty"] == "OKP"
    assert key["crv"] == "Ed25519"
    assert key["alg"] == "EdDSA"
    assert key["kid"] == jwk_thumbprint({"crv": key["crv"], "kty": key["kty"], "x": key["x"]})
    assert "d" not in key
    # A third party verifies our token with nothing but the JWKS.
    user = await make_user()
    verifier = jwt.PyJWK(key)
    ctx: AppContext = app.state.ctx
    claims = jwt.decode(
        user.access_token,
        verifier.key,
        algorithms=["EdDSA"],
        audience=ctx.settings.jwt_audience,
        issuer=ctx.settings.token_issuer,
    )
    assert claims["sub"] == str(user.id)
    assert set(claims) >= {"iss", "aud", "sub", "sid", "jti", "iat", "exp", "roles", "scope"}
    assert claims["exp"] - claims["iat"] == 900


def test_rfc7638_thumbprint_example() -> None:
    # RFC 7638 section 3.1 example (RSA key) and its published thumbprint.
    n = (
        "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_"
        "BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_"
        "FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI"
        "4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw"
    )
    assert jwk_thumbprint({"e": "AQAB", "kty": "RSA", "n": n}) == (
        "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
    )


def test_rsa_keys_and_rotation(tmp_path: Path) -> None:
    old_pem = generate_private_key_pem("EdDSA")
    new_pem = generate_private_key_pem("RS256")
    retired = tmp_path / "retired.pem"
    retired.write_bytes(public_key_pem(old_pem))
    old_settings = Settings(
        profile="test", var_dir=tmp_path, _env_file=None, jwt_private_key=old_pem.decode()
    )
    new_settings = Settings(
        profile="test",
        var_dir=tmp_path,
        _env_file=None,
        jwt_private_key=new_pem.decode(),
        jwt_retired_public_keys_file=retired,
    )
    old_ring, new_ring = KeyRing.from_settings(old_settings), KeyRing.from_settings(new_settings)
    assert new_ring.signing.algorithm == "RS256"
    assert {key["kid"] for key in new_ring.jwks()["keys"]} == {
        old_ring.signing.kid,
        new_ring.signing.kid,
    }
    # A token signed before the rotation still verifies after it, with the pinned algorithm.
    token = issue_access_token(
        old_ring, old_settings, user_id=uuid.uuid4(), session_id=uuid.uuid4(), role=Role.TRADER
    )
    from quantdesk.security.tokens import ACCESS_TOKEN_TYPE, decode_token

    claims = decode_token(
        new_ring,
        token,
        token_type=ACCESS_TOKEN_TYPE,
        audience=new_settings.jwt_audience,
        issuer=new_settings.token_issuer,
    )
    assert claims["roles"] == ["trader"]


def test_prod_refuses_to_start_without_identity_secrets(tmp_path: Path) -> None:
    settings = Settings(
        profile="prod",
        secret_key="Vq3xN8pL2mRt7YwK9zBc4HdJ6fGs1AeU0oIiPy5ThWn",
        cors_origins=["https://app.example"],
        trusted_hosts=["api.example"],
        database_url="postgresql+asyncpg://u:p@localhost/db",
        _env_file=None,
    )
    with pytest.raises(ConfigurationError) as error:
        settings.check_production()
    message = str(error.value)
    for variable in (
        "QUANTDESK_JWT_PRIVATE_KEY",
        "QUANTDESK_PII_ENCRYPTION_KEYS",
        "QUANTDESK_PII_INDEX_KEY",
    ):
        assert variable in message
    key_file = tmp_path / "jwt.pem"
    key_file.write_bytes(generate_private_key_pem())
    ready = settings.model_copy(
        update={
            "jwt_private_key_file": key_file,
            "pii_encryption_keys": SecretStr("k1:" + _b64(bytes(range(7, 39)))),
            "pii_index_key": SecretStr("m2K9qLx7Vb4Nz8Tc1Rw6Yp3Hd5Gf0Js-Ua_EiOkPlQ"),
        }
    )
    ready.check_production()
    assert KeyRing.from_settings(ready).signing.algorithm == "EdDSA"
