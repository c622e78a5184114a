"""Signed access tokens (JWT), the JWKS document, and opaque refresh tokens.

Access tokens are JWTs (RFC 9068 profile, ``typ: at+jwt``) signed with Ed25519 (EdDSA) or
RSA (RS256), whichever key is configured; the ``kid`` header is the key's RFC 7638
thumbprint and ``/.well-known/jwks.json`` publishes every key still accepted, so keys can
rotate without invalidating tokens in flight.

Verification never trusts the token's own ``alg``: the key is found by ``kid`` and the one
algorithm that key is for is the only one accepted, which rules out ``alg: none``, HS256 signed
with the public key, and every other algorithm-confusion trick.  ``iss``, ``aud``, ``exp``,
``nbf`` and ``typ`` are checked; ``security.authn.verify_access_token`` then also requires
that the session the token belongs to is not revoked (``security.sessions``, cached; in
Redis when configured).

An Ed25519 verification costs about 0.15 ms, more than everything else an authenticated
read does, and a client sends the same access token with every request for its 15 minutes.
So each ``KeyRing`` remembers the access tokens it has verified (``VerifiedAccessTokens``):
the same token string is accepted again without a second signature check until its own
``exp`` (plus the leeway ``jwt.decode`` allows), never longer.  Nothing a revocation changes
is remembered: the session check still runs on every request.  Only tokens that passed
every check are kept (a flood of forged tokens gains nothing and is rate limited per
address anyway), by SHA-256 digest rather than the token itself, and at most
``VerifiedAccessTokens.MAX_ENTRIES`` of them.

Refresh tokens are not JWTs: 256 random bits, stored only as a SHA-256 hash (a fast hash is
right for a random secret of that size), rotated on every use (``users.auth``).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
import time
import uuid
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey, RSAPublicKey
from jwt.algorithms import OKPAlgorithm, RSAAlgorithm

from quantdesk.platform.exceptions import Unauthenticated
from quantdesk.security.principal import ROLE_SCOPES, Principal, Role, Scope
from quantdesk.settings import ConfigurationError, Profile, Settings

ACCESS_TOKEN_TYPE = "at+jwt"  # noqa: S105  # nosec B105 - a media type, not a secret
MFA_CHALLENGE_TYPE = "mfa-challenge+jwt"
REFRESH_TOKEN_PREFIX = "qd_rt_"  # noqa: S105  # nosec B105 - a prefix, not a secret
# Clock skew tolerated between the processes that sign and verify.
LEEWAY_S = 30
MIN_RSA_BITS = 2048
DEV_KEY_FILE = "jwt-signing-key.pem"

PrivateKey = Ed25519PrivateKey | RSAPrivateKey
PublicKey = Ed25519PublicKey | RSAPublicKey


@dataclass(frozen=True, slots=True)
class VerificationKey:
    kid: str
    algorithm: str
    public_key: PublicKey
    jwk: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class SigningKey:
    verification: VerificationKey
    private_key: PrivateKey

    @property
    def kid(self) -> str:
        return self.verification.kid

    @property
    def algorithm(self) -> str:
        return self.verification.algorithm


class VerifiedAccessTokens:
    """Access tokens already verified by this process, until they expire (module docstring).

    Keyed by the SHA-256 digest of the token with the audience and issuer it was checked
    for; the oldest entry goes first when full.  A key ring is built once per app, so a
    signing key removed from the configuration (a leak) takes its tokens with it at the
    restart that removes it.
    """

    MAX_ENTRIES = 10_000

    def __init__(self, max_entries: int = MAX_ENTRIES) -> None:
        self._entries: OrderedDict[tuple[bytes, str, str], tuple[float, Principal]] = OrderedDict()
        self._max = max_entries

    @staticmethod
    def _key(token: str, audience: str, issuer: str) -> tuple[bytes, str, str]:
        return hashlib.sha256(token.encode()).digest(), audience, issuer

    def get(self, token: str, *, audience: str, issuer: str) -> Principal | None:
        key = self._key(token, audience, issuer)
        entry = self._entries.get(key)
        if entry is None:
            return None
        valid_until, principal = entry
        if time.time() >= valid_until:
            self._entries.pop(key, None)
            return None
        return principal

    def remember(
        self, token: str, principal: Principal, *, expires_at: float, audience: str, issuer: str
    ) -> None:
        # PyJWT accepts a token while now < exp + leeway; so does this memo, not a second more.
        self._entries[self._key(token, audience, issuer)] = (expires_at + LEEWAY_S, principal)
        while len(self._entries) > self._max:
            self._entries.popitem(last=False)

    def __len__(self) -> int:
        return len(self._entries)


class KeyRing:
    """The current signing key plus retired public keys that still verify."""

    def __init__(self, signing: SigningKey, retired: list[VerificationKey] | None = None) -> None:
        self.signing = signing
        self.verifying: dict[str, VerificationKey] = {signing.kid: signing.verification}
        for key in retired or []:
            self.verifying.setdefault(key.kid, key)
        self.verified_access = VerifiedAccessTokens()

    @classmethod
    def from_settings(cls, settings: Settings) -> KeyRing:
        signing = signing_key_from_pem(_signing_key_pem(settings))
        retired: list[VerificationKey] = []
        if settings.jwt_retired_public_keys_file is not None:
            bundle = settings.jwt_retired_public_keys_file.read_bytes()
            retired = [verification_key_from_pem(block) for block in split_pem_bundle(bundle)]
        return cls(signing, retired)

    def jwks(self) -> dict[str, list[dict[str, str]]]:
        return {"keys": [dict(key.jwk) for key in self.verifying.values()]}


def _signing_key_pem(settings: Settings) -> bytes:
    if settings.jwt_private_key is not None:
        return settings.jwt_private_key.get_secret_value().encode()
    if settings.jwt_private_key_file is not None:
        return settings.jwt_private_key_file.read_bytes()
    if settings.profile is Profile.PROD:
        raise ConfigurationError(
            "QUANTDESK_JWT_PRIVATE_KEY or QUANTDESK_JWT_PRIVATE_KEY_FILE is required in prod"
        )
    return _dev_signing_key(settings.var_dir / "keys" / DEV_KEY_FILE)


def _dev_signing_key(path: Path) -> bytes:
    """Generate an Ed25519 key once (dev/test) and keep it, readable by the owner only."""
    if path.exists():
        return path.read_bytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    pem = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    try:
        # O_EXCL: two workers starting together agree on whichever key was written first.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_bytes()
    with os.fdopen(fd, "wb") as handle:
        handle.write(pem)
    return pem


def split_pem_bundle(bundle: bytes) -> list[bytes]:
    marker = b"-----BEGIN "
    return [marker + part for part in bundle.split(marker)[1:] if part.strip()]


def generate_private_key_pem(algorithm: str = "EdDSA") -> bytes:
    """A new PKCS#8 PEM signing key (``quantdesk admin generate-keys``)."""
    key: PrivateKey
    if algorithm == "EdDSA":
        key = Ed25519PrivateKey.generate()
    elif algorithm == "RS256":
        from cryptography.hazmat.primitives.asymmetric import rsa

        key = rsa.generate_private_key(public_exponent=65537, key_size=3072)
    else:
        raise ValueError(f"unsupported algorithm {algorithm}")
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def public_key_pem(private_pem: bytes) -> bytes:
    """The public half of a signing key, for the retired-keys bundle when rotating."""
    return signing_key_from_pem(private_pem).verification.public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def signing_key_from_pem(pem: bytes) -> SigningKey:
    try:
        private = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError) as exc:
        raise ConfigurationError(f"the JWT signing key is not a PEM private key: {exc}") from None
    if not isinstance(private, Ed25519PrivateKey | RSAPrivateKey):
        raise ConfigurationError("the JWT signing key must be Ed25519 or RSA")
    return SigningKey(_verification_key(private.public_key()), private)


def verification_key_from_pem(pem: bytes) -> VerificationKey:
    public = serialization.load_pem_public_key(pem)
    if not isinstance(public, Ed25519PublicKey | RSAPublicKey):
        raise ConfigurationError("retired JWT keys must be Ed25519 or RSA public keys")
    return _verification_key(public)


def _verification_key(public: PublicKey) -> VerificationKey:
    if isinstance(public, Ed25519PublicKey):
        algorithm = "EdDSA"
        jwk: dict[str, Any] = OKPAlgorithm.to_jwk(public, as_dict=True)
        thumbprint_members = ("crv", "kty", "x")
    else:
        if public.key_size < MIN_RSA_BITS:
            raise ConfigurationError(f"RSA signing keys need at least {MIN_RSA_BITS} bits")
        algorithm = "RS256"
        jwk = RSAAlgorithm.to_jwk(public, as_dict=True)
        thumbprint_members = ("e", "kty", "n")
    kid = jwk_thumbprint({name: str(jwk[name]) for name in thumbprint_members})
    published = {name: str(jwk[name]) for name in thumbprint_members}
    published.update({"kid": kid, "alg": algorithm, "use": "sig"})
    return VerificationKey(kid, algorithm, public, published)


def jwk_thumbprint(required_members: Mapping[str, str]) -> str:
    """RFC 7638: SHA-256 over the required members in lexicographic order, no whitespace."""
    canonical = json.dumps(dict(sorted(required_members.items())), separators=(",", ":"))
    digest = hashlib.sha256(canonical.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


# -- issuing -------------------------------------------------------------------------------


def issue_access_token(
    keys: KeyRing,
    settings: Settings,
    *,
    user_id: uuid.UUID,
    session_id: uuid.UUID,
    role: Role,
    now: float | None = None,
) -> str:
    issued = int(now if now is not None else time.time())
    claims = {
        "iss": settings.token_issuer,
        "aud": settings.jwt_audience,
        "sub": str(user_id),
        "sid": str(session_id),
        "jti": uuid.uuid4().hex,
        "iat": issued,
        "nbf": issued,
        "exp": issued + settings.access_token_ttl_s,
        "roles": [role.value],
        "scope": " ".join(sorted(scope.value for scope in ROLE_SCOPES[role])),
    }
    return _sign(keys, claims, ACCESS_TOKEN_TYPE)


def issue_mfa_challenge(
    keys: KeyRing, settings: Settings, *, user_id: uuid.UUID, cookie_mode: bool
) -> str:
    """A short-lived proof that the password was right; only ``/auth/login/mfa`` accepts it."""
    issued = int(time.time())
    claims = {
        "iss": settings.token_issuer,
        "aud": mfa_audience(settings),
        "sub": str(user_id),
        "jti": uuid.uuid4().hex,
        "iat": issued,
        "nbf": issued,
        "exp": issued + settings.mfa_challenge_ttl_s,
        "cookie": cookie_mode,
    }
    return _sign(keys, claims, MFA_CHALLENGE_TYPE)


def mfa_audience(settings: Settings) -> str:
    return f"{settings.jwt_audience}:mfa-challenge"


def _sign(keys: KeyRing, claims: dict[str, Any], token_type: str) -> str:
    headers = {"kid": keys.signing.kid, "typ": token_type}
    return jwt.encode(
        claims, keys.signing.private_key, algorithm=keys.signing.algorithm, headers=headers
    )


# -- verifying -----------------------------------------------------------------------------


def decode_token(
    keys: KeyRing, token: str, *, token_type: str, audience: str, issuer: str
) -> dict[str, Any]:
    """Verified claims, or ``Unauthenticated`` (one vague message: no oracle for attackers)."""
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError:
        raise invalid_token() from None
    kid = header.get("kid")
    key = keys.verifying.get(kid) if isinstance(kid, str) else None
    if key is None or header.get("typ") != token_type:
        raise invalid_token()
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            key.public_key,
            algorithms=[key.algorithm],
            audience=audience,
            issuer=issuer,
            leeway=LEEWAY_S,
            options={
                "require": ["iss", "aud", "sub", "jti", "iat", "nbf", "exp"],
                "strict_aud": True,
            },
        )
    except jwt.PyJWTError:
        raise invalid_token() from None
    return claims


def invalid_token() -> Unauthenticated:
    error = Unauthenticated("the token is invalid or expired")
    error.headers["WWW-Authenticate"] = 'Bearer realm="quantdesk", error="invalid_token"'
    return error


def principal_from_claims(claims: Mapping[str, Any]) -> Principal:
    try:
        user_id = uuid.UUID(str(claims["sub"]))
        session_id = uuid.UUID(str(claims["sid"]))
        roles = claims["roles"]
        role = Role(roles[0])
        granted = {Scope(name) for name in str(claims.get("scope", "")).split()}
    except (KeyError, ValueError, TypeError, IndexError):
        raise invalid_token() from None
    # A token never carries more than its role grants, whatever its scope claim says.
    scopes = frozenset(granted) & ROLE_SCOPES[role]
    return Principal(user_id, role, scopes, session_id=session_id, token_id=str(claims["jti"]))


# -- refresh tokens ------------------------------------------------------------------------


def new_refresh_token() -> str:
    return REFRESH_TOKEN_PREFIX + secrets.token_urlsafe(32)


def hash_secret_token(token: str) -> str:
    """SHA-256 hex of a high-entropy random token (refresh tokens, API keys)."""
    return hashlib.sha256(token.encode()).hexdigest()
