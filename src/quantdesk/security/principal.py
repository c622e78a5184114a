"""Who is calling: roles, scopes and the authenticated principal.

Roles are for people (``viewer`` < ``trader`` < ``admin``); scopes are what a credential may
do (``read``, ``trade``, ``admin``).  A signed-in person holds every scope their role grants;
an API key holds the scopes it was created with, never more than its owner's role grants,
so a key cannot outlive a demotion of its owner.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from enum import StrEnum


class Role(StrEnum):
    VIEWER = "viewer"
    TRADER = "trader"
    ADMIN = "admin"

    @property
    def rank(self) -> int:
        return _ROLE_RANK[self]

    def at_least(self, other: Role) -> bool:
        return self.rank >= other.rank


class Scope(StrEnum):
    READ = "read"
    TRADE = "trade"
    ADMIN = "admin"


_ROLE_RANK = {Role.VIEWER: 0, Role.TRADER: 1, Role.ADMIN: 2}

ROLE_SCOPES: dict[Role, frozenset[Scope]] = {
    Role.VIEWER: frozenset({Scope.READ}),
    Role.TRADER: frozenset({Scope.READ, Scope.TRADE}),
    Role.ADMIN: frozenset({Scope.READ, Scope.TRADE, Scope.ADMIN}),
}

# The scope that stands for a role when an API key calls a role-protected endpoint: a
# ``read``-only key of a trader may not place orders although its owner may.
ROLE_DEFINING_SCOPE = {Role.VIEWER: Scope.READ, Role.TRADER: Scope.TRADE, Role.ADMIN: Scope.ADMIN}


@dataclass(frozen=True, slots=True)
class Principal:
    """The authenticated caller of one request.

    ``session_id`` is set for a person signed in with an access token (also over the
    WebSocket); ``api_key_id`` for a program using an API key.  Exactly one of them is set.
    """

    user_id: uuid.UUID
    role: Role
    scopes: frozenset[Scope] = field(default_factory=frozenset)
    session_id: uuid.UUID | None = None
    api_key_id: uuid.UUID | None = None
    token_id: str | None = None

    @property
    def is_api_key(self) -> bool:
        return self.api_key_id is not None

    @property
    def rate_limit_key(self) -> str:
        """API keys have their own budget, apart from their owner's interactive one."""
        return f"key:{self.api_key_id}" if self.api_key_id else f"user:{self.user_id}"

    def has_scope(self, scope: Scope) -> bool:
        return scope in self.scopes

    def has_role(self, role: Role) -> bool:
        return self.role.at_least(role) and ROLE_DEFINING_SCOPE[role] in self.scopes
