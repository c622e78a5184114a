"""API shapes of identity: registration, login, tokens, sessions, MFA, API keys, admin."""

from __future__ import annotations

import datetime as dt
import re
import uuid
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from quantdesk.platform.pagination import Page
from quantdesk.security.principal import Role, Scope

# Deliberately simple (RFC 5321 lengths, one "@", a dot in the domain): the address is
# only an identifier here, nothing is ever sent to it.
_EMAIL = re.compile(r"^[^\s@]{1,64}@[^\s@]+\.[^\s@]+$")


def _valid_email(value: str) -> str:
    value = value.strip()
    if len(value) > 254 or not _EMAIL.match(value):
        raise ValueError("not a valid e-mail address")
    return value


Email = Annotated[str, Field(max_length=320), AfterValidator(_valid_email)]
# Longer than the policy's 128 so that the policy, not the schema, explains a refusal.
Password = Annotated[str, Field(min_length=1, max_length=1024)]
OneTimeCode = Annotated[str, Field(min_length=6, max_length=32)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RegisterRequest(_Strict):
    email: Email
    password: Password


class LoginRequest(_Strict):
    email: Annotated[str, Field(max_length=320)]
    password: Password
    cookie: bool = Field(
        default=False,
        description="Browser sign-in: tokens go into HttpOnly cookies, not the body.",
    )


class MfaLoginRequest(_Strict):
    challenge_token: Annotated[str, Field(max_length=4096)]
    code: OneTimeCode


class RefreshRequest(_Strict):
    refresh_token: Annotated[str | None, Field(max_length=256)] = None


class TokenPair(BaseModel):
    token_type: Literal["bearer"] = "bearer"  # noqa: S105 - OAuth 2 token type
    access_token: str
    expires_in: int
    refresh_token: str
    refresh_expires_in: int
    session_id: uuid.UUID


class CookieSession(BaseModel):
    token_type: Literal["cookie"] = "cookie"  # noqa: S105 - a token type name
    expires_in: int
    csrf_token: str
    session_id: uuid.UUID


class MfaChallenge(BaseModel):
    mfa_required: Literal[True] = True
    challenge_token: str
    expires_in: int


class UserOut(BaseModel):
    id: uuid.UUID
    email: str
    role: Role
    is_active: bool
    mfa_enabled: bool
    created_at: dt.datetime


class SessionOut(BaseModel):
    id: uuid.UUID
    created_at: dt.datetime
    last_used_at: dt.datetime
    expires_at: dt.datetime
    ip: str | None
    user_agent: str | None
    mfa: bool
    current: bool


class PasswordChange(_Strict):
    current_password: Password
    new_password: Password
    code: OneTimeCode | None = None


class ReauthRequest(_Strict):
    password: Password
    code: OneTimeCode | None = None


class CodeRequest(_Strict):
    code: OneTimeCode


class TotpEnrolment(BaseModel):
    secret: str
    otpauth_uri: str
    qr_svg: str
    qr_png: str = Field(description="data: URI of a PNG image of the QR code")


class RecoveryCodes(BaseModel):
    recovery_codes: list[str]


class ApiKeyCreate(_Strict):
    name: Annotated[str, Field(min_length=1, max_length=100)]
    scopes: Annotated[list[Scope], Field(min_length=1, max_length=3)]
    expires_at: dt.datetime | None = None


class ApiKeyOut(BaseModel):
    id: uuid.UUID
    name: str
    prefix: str
    scopes: list[Scope]
    created_at: dt.datetime
    expires_at: dt.datetime | None
    last_used_at: dt.datetime | None
    revoked_at: dt.datetime | None


class ApiKeyCreated(ApiKeyOut):
    key: str = Field(description="The whole key. Shown once; store it now.")


class AdminUserOut(UserOut):
    last_login_at: dt.datetime | None
    locked_until: dt.datetime | None
    erased: bool


class AdminUserUpdate(_Strict):
    role: Role | None = None
    is_active: bool | None = None


class SecurityEventOut(BaseModel):
    id: int
    occurred_at: dt.datetime
    event_type: str
    user_id: uuid.UUID | None
    ip: str | None
    user_agent: str | None
    request_id: str | None
    details: dict[str, Any] | None


class UserPage(Page[AdminUserOut]):
    pass


class SecurityEventPage(Page[SecurityEventOut]):
    pass


class PersonalDataExport(BaseModel):
    exported_at: dt.datetime
    user: UserOut
    sessions: list[SessionOut]
    api_keys: list[ApiKeyOut]
    security_events: list[SecurityEventOut]


class Jwks(BaseModel):
    keys: list[dict[str, str]]
