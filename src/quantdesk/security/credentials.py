"""What the security mechanisms need to know about stored credentials, as a Protocol.

``security`` verifies API keys and checks that an access token's session is still live, but
the rows behind them (keys, sessions, their owners) belong to the accounts package.  This
Protocol is the seam: ``users.credentials`` implements it, the app factory hands the
implementation to ``install_security``, and nothing under ``security`` imports ``users``.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import asdict, dataclass
from typing import Any, Protocol

from quantdesk.security.principal import Role


@dataclass(frozen=True, slots=True)
class ApiKeyRecord:
    """One API key as verification sees it, with its owner's current role and status."""

    id: uuid.UUID
    user_id: uuid.UUID
    secret_hash: str
    scopes: str
    expires_at: float | None
    revoked: bool
    last_used_at: float | None
    role: Role
    owner_active: bool

    def to_json(self) -> dict[str, Any]:
        document = asdict(self)
        document.update(id=str(self.id), user_id=str(self.user_id), role=self.role.value)
        return document

    @classmethod
    def from_json(cls, document: dict[str, Any]) -> ApiKeyRecord:
        return cls(
            id=uuid.UUID(str(document["id"])),
            user_id=uuid.UUID(str(document["user_id"])),
            secret_hash=str(document["secret_hash"]),
            scopes=str(document["scopes"]),
            expires_at=document["expires_at"],
            revoked=bool(document["revoked"]),
            last_used_at=document["last_used_at"],
            role=Role(str(document["role"])),
            owner_active=bool(document["owner_active"]),
        )


@dataclass(frozen=True, slots=True)
class SessionRecord:
    """A sign-in session: whose it is and whether it still authenticates."""

    user_id: uuid.UUID
    active: bool


class CredentialStore(Protocol):
    async def api_key(self, lookup: str) -> ApiKeyRecord | None:
        """The key whose public lookup part is ``lookup``, or None."""
        ...

    async def touch_api_key(self, key_id: uuid.UUID, at: dt.datetime) -> None:
        """Record that the key was used at ``at`` (its own short unit of work)."""
        ...

    async def session(self, session_id: uuid.UUID, *, now: dt.datetime) -> SessionRecord | None:
        """The session, live when neither revoked nor expired at ``now``; None if unknown."""
        ...
