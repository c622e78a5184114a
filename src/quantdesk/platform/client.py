"""Who is asking: the client facts a use case needs, without the web framework.

Services take a ``ClientInfo`` instead of a Starlette request, so the CLI, background tasks
and tests call the same service functions as the routers (``ClientInfo.none()`` when no
network client is involved). The HTTP layer builds one per request with ``ClientInfo.of``.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the type only: services that import ClientInfo stay free of the web
    from starlette.requests import HTTPConnection

MAX_USER_AGENT = 256


@dataclass(frozen=True, slots=True)
class ClientInfo:
    """The address, user agent, request id and path of one request.

    ``notes`` is the request's own scratch space (Starlette's scope state when built from a
    request): a service leaves there what the HTTP layer turns into response headers, such
    as the tightest rate-limit decision.
    """

    ip: str | None = None
    user_agent: str | None = None
    request_id: str | None = None
    path: str | None = None
    notes: MutableMapping[str, Any] = field(default_factory=dict)

    @classmethod
    def of(cls, connection: HTTPConnection) -> ClientInfo:
        scope = connection.scope
        notes = scope.setdefault("state", {})
        request_id = notes.get("request_id")
        agent = connection.headers.get("user-agent")
        peer = scope.get("client")
        return cls(
            ip=peer[0][:45] if peer else None,
            user_agent=agent[:MAX_USER_AGENT] if agent else None,
            request_id=request_id if isinstance(request_id, str) else None,
            path=scope.get("path"),
            notes=notes,
        )

    @classmethod
    def none(cls) -> ClientInfo:
        """No network client: the CLI, a background task."""
        return cls()
