"""Route policies: every endpoint states in its signature who may call it.

How a router uses them::

    from fastapi import APIRouter
    from quantdesk.security.policy import (
        CurrentUser, Public, RequireAdmin, RequireTrader, RequireViewer, SessionUser, rate_limit,
    )

    router = APIRouter(prefix="/api/v1/things", tags=["things"])

    @router.get("/catalogue", dependencies=[Public])          # anyone, no credential
    async def catalogue() -> ...: ...

    @router.get("")                                          # any signed-in user or API key
    async def list_things(principal: CurrentUser, db: DbSession) -> ...:
        return await ThingRepository(db).list(owner_id=principal.user_id)  # tenancy!

    @router.get("/quotes")                                   # role >= viewer, scope "read"
    async def quotes(principal: RequireViewer) -> ...: ...

    @router.post("/orders", dependencies=[rate_limit("orders")])  # role >= trader, "trade"
    async def place(principal: RequireTrader) -> ...: ...

    @router.get("/admin/stats")                              # admins (API key: "admin" scope)
    async def stats(principal: RequireAdmin) -> ...: ...

    @router.post("/me/password")                             # a person, not an API key
    async def change_password(principal: SessionUser) -> ...: ...

A whole router can carry one policy: ``APIRouter(dependencies=[Public])`` or
``dependencies=[Depends(require_role("admin"))]``; ``mark_public(router)`` wraps a router
whose module should not import this one (health, metrics).

Each policy dependency is stamped with a ``PolicySpec``; ``route_policies(route)`` finds them
by walking the route's dependency tree, and the access-control matrix test
(``tests/security/test_access_matrix.py``) fails for any route that declares none.

Credentials: ``Authorization: Bearer <JWT access token>``, ``Authorization: Bearer qd_...``
(an API key), or the dashboard's ``qd_access`` cookie (then the CSRF middleware in
``security.http`` guards unsafe methods).  WebSockets authenticate with
``WebSocketUser`` or by calling ``security.authn.authenticate_credential`` themselves.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated, Any, TypeVar

import structlog
from fastapi import APIRouter, Depends, FastAPI, Request, WebSocket, WebSocketException, status
from fastapi.dependencies.models import Dependant
from fastapi.openapi.models import HTTPBearer as HTTPBearerModel
from fastapi.params import Depends as DependsParam
from fastapi.routing import APIRoute, APIWebSocketRoute, iter_route_contexts
from fastapi.security.base import SecurityBase
from fastapi.security.utils import get_authorization_scheme_param
from starlette.routing import BaseRoute

from quantdesk.platform.client import ClientInfo
from quantdesk.platform.context import AppContext, context_of
from quantdesk.platform.exceptions import PermissionDenied, QuantdeskError, Unauthenticated
from quantdesk.security.audit import SecurityEventType, record_security_event
from quantdesk.security.authn import ACCESS_COOKIE, authenticate_credential
from quantdesk.security.principal import Principal, Role, Scope
from quantdesk.security.ratelimiting import (
    enforce_rate_limit,
    enforce_rate_limits,
    refuse_if_known_exhausted,
)

__all__ = [
    "CurrentUser",
    "PolicyKind",
    "PolicySpec",
    "Principal",
    "Public",
    "RequireAdmin",
    "RequireTrader",
    "RequireViewer",
    "Role",
    "RouteInfo",
    "Scope",
    "SessionUser",
    "WebSocketUser",
    "api_routes",
    "authenticated",
    "mark_public",
    "public",
    "rate_limit",
    "require_role",
    "require_scope",
    "require_session",
    "route_policies",
    "routes_without_policy",
]

POLICY_ATTRIBUTE = "__quantdesk_policy__"
# On a ``rate_limit(...)`` dependency: its class.  On a route: the classes it declares.
RATE_LIMIT_ATTRIBUTE = "__quantdesk_rate_limit__"
# In the request's scope state: the classes ``_authenticate`` has decided for the route.
_DECIDED_LIMITS = "ratelimit-decided"


class PolicyKind(StrEnum):
    PUBLIC = "public"
    AUTHENTICATED = "authenticated"
    SESSION = "session"
    ROLE = "role"
    SCOPE = "scope"


@dataclass(frozen=True, slots=True)
class PolicySpec:
    kind: PolicyKind
    role: Role | None = None
    scope: Scope | None = None


_F = TypeVar("_F", bound=Callable[..., Any])


def _stamp(function: _F, spec: PolicySpec) -> _F:
    setattr(function, POLICY_ATTRIBUTE, spec)
    return function


async def public() -> None:
    """No credential needed (health, docs, login, registration, JWKS, public catalogues)."""


_stamp(public, PolicySpec(PolicyKind.PUBLIC))
Public = Depends(public)


async def _authenticate(request: Request) -> Principal:
    """The caller's principal, or 401.  Also spends one unit of the general API budget.

    Failed authentications count against the client address (``unauthenticated_ip``); an
    address this process knows to be past that budget gets 429 before its credential is even
    looked at, so a flood of invalid tokens costs neither verification nor database lookups.

    A verified principal's rate limits are one decision, one round trip to Redis: the
    ``api`` budget, every class the route declares with ``rate_limit(...)`` (which then
    counts nothing itself) and the address's failure budget (tested, not counted), all or
    nothing.
    """
    ctx = context_of(request)
    client = ClientInfo.of(request)
    address_key = f"ip:{client.ip or 'unknown'}"
    await refuse_if_known_exhausted(ctx, client, "unauthenticated_ip", address_key)
    credential = _bearer_credential(request.headers.get("authorization"))
    if credential is None:
        credential = request.cookies.get(ACCESS_COOKIE)
    try:
        if not credential:
            raise _unauthenticated("a bearer token or API key is required")
        principal = await authenticate_credential(ctx, credential)
    except Unauthenticated:
        await enforce_rate_limit(ctx, client, "unauthenticated_ip", address_key)
        raise
    request.state.principal = principal
    structlog.contextvars.bind_contextvars(user_id=str(principal.user_id))
    key = principal.rate_limit_key
    declared = _declared_limits(request.scope.get("route"))
    await enforce_rate_limits(
        ctx,
        client,
        [("api", key), *((limit_class, key) for limit_class in declared)],
        tested=[("unauthenticated_ip", address_key)],
        principal=principal,
    )
    client.notes[_DECIDED_LIMITS] = declared
    return principal


def _declared_limits(route: object) -> tuple[str, ...]:
    """The ``rate_limit(...)`` classes in ``route``'s dependency tree, found once per route.

    FastAPI puts the matched route in the scope; for a route of an included router that is
    the route as its own router declared it, so a ``rate_limit`` given only to
    ``include_router(dependencies=...)`` is not seen here and counts in its own dependency
    (a second round trip, the same budget).
    """
    if route is None:
        return ()
    declared = getattr(route, RATE_LIMIT_ATTRIBUTE, None)
    if isinstance(declared, tuple):
        return declared
    dependant = getattr(route, "dependant", None)
    found: tuple[str, ...] = ()
    if isinstance(dependant, Dependant):
        classes = (getattr(node.call, RATE_LIMIT_ATTRIBUTE, None) for node in _walk(dependant))
        found = tuple(dict.fromkeys(c for c in classes if isinstance(c, str)))
    setattr(route, RATE_LIMIT_ATTRIBUTE, found)
    return found


def _bearer_credential(authorization: str | None) -> str | None:
    """The credential of an ``Authorization: Bearer <credential>`` header, read as
    ``HTTPBearer`` reads it; None for no header or another scheme."""
    scheme, credential = get_authorization_scheme_param(authorization)
    if scheme.lower() != "bearer" or not credential:
        return None
    return credential


class BearerAuthentication(SecurityBase):
    """The ``authenticated`` dependency: a security scheme FastAPI calls with the request only.

    Being a ``SecurityBase`` (with ``HTTPBearer``'s model and name) is what puts the bearer
    scheme and the "Authorize" button in the OpenAPI document, as ``HTTPBearer`` did.  As a
    single dependency that reads the header and the app's context from the request, rather
    than one depending on ``HTTPBearer`` and ``get_context``, FastAPI resolves one node per
    request instead of three: its dependency resolution was the largest cost of an
    authenticated read after the rate limiter (docs/benchmarks.md, "authenticated reads").
    """

    def __init__(self) -> None:
        self.model = HTTPBearerModel(description="JWT access token or API key (qd_...)")
        self.scheme_name = "HTTPBearer"
        self.__name__ = "authenticated"

    async def __call__(self, request: Request) -> Principal:
        return await _authenticate(request)


authenticated = _stamp(BearerAuthentication(), PolicySpec(PolicyKind.AUTHENTICATED))
CurrentUser = Annotated[Principal, Depends(authenticated)]


async def require_session(
    request: Request, principal: Annotated[Principal, Depends(authenticated)]
) -> Principal:
    """A person signed in interactively; API keys are refused (key management, passwords)."""
    if principal.session_id is None:
        await _deny(request, principal, "this endpoint needs a signed-in user, not an API key")
    return principal


_stamp(require_session, PolicySpec(PolicyKind.SESSION))
SessionUser = Annotated[Principal, Depends(require_session)]


def require_role(role: Role | str) -> Callable[..., Awaitable[Principal]]:
    """Role at least ``role``; an API key also needs the scope that stands for the role."""
    return _require_role(Role(role))


@functools.cache  # one callable per role, so FastAPI resolves it once per request
def _require_role(needed: Role) -> Callable[..., Awaitable[Principal]]:
    async def role_dependency(
        request: Request, principal: Annotated[Principal, Depends(authenticated)]
    ) -> Principal:
        if not principal.has_role(needed):
            await _deny(request, principal, f"requires the {needed.value} role")
        return principal

    role_dependency.__name__ = f"require_role_{needed.value}"
    return _stamp(role_dependency, PolicySpec(PolicyKind.ROLE, role=needed))


def require_scope(scope: Scope | str) -> Callable[..., Awaitable[Principal]]:
    """The credential carries ``scope`` (people: every scope their role grants)."""
    return _require_scope(Scope(scope))


@functools.cache
def _require_scope(needed: Scope) -> Callable[..., Awaitable[Principal]]:
    async def scope_dependency(
        request: Request, principal: Annotated[Principal, Depends(authenticated)]
    ) -> Principal:
        if not principal.has_scope(needed):
            await _deny(request, principal, f"requires the {needed.value} scope")
        return principal

    scope_dependency.__name__ = f"require_scope_{needed.value}"
    return _stamp(scope_dependency, PolicySpec(PolicyKind.SCOPE, scope=needed))


RequireViewer = Annotated[Principal, Depends(require_role(Role.VIEWER))]
RequireTrader = Annotated[Principal, Depends(require_role(Role.TRADER))]
RequireAdmin = Annotated[Principal, Depends(require_role(Role.ADMIN))]


@functools.cache
def rate_limit(limit_class: str) -> DependsParam:
    """A named per-principal limit (e.g. ``"orders"``), for ``dependencies=[...]``.

    It authenticates too (FastAPI resolves ``authenticated`` once per request), so it also
    counts as the route's policy when nothing stricter is declared.  The hit is counted by
    ``authenticated``, together with the route's other limits (``_authenticate``).
    """

    async def limit_dependency(
        request: Request, principal: Annotated[Principal, Depends(authenticated)]
    ) -> Principal:
        if limit_class not in request.scope.get("state", {}).get(_DECIDED_LIMITS, ()):
            await enforce_rate_limit(
                context_of(request),
                ClientInfo.of(request),
                limit_class,
                principal.rate_limit_key,
                principal=principal,
            )
        return principal

    limit_dependency.__name__ = f"rate_limit_{limit_class}"
    setattr(limit_dependency, RATE_LIMIT_ATTRIBUTE, limit_class)
    marker: DependsParam = Depends(limit_dependency)
    return marker


async def websocket_authenticated(websocket: WebSocket) -> Principal:
    """For WebSocket routes: the token comes as ``?access_token=``, or the session cookie.

    A failure closes the handshake with 1008 (policy violation): no WebSocket is ever
    accepted without a verified principal.
    """
    ctx = websocket.app.state.ctx
    assert isinstance(ctx, AppContext)  # noqa: S101 - set by create_app
    credential = websocket.query_params.get("access_token") or websocket.cookies.get(ACCESS_COOKIE)
    if not credential:
        raise WebSocketException(status.WS_1008_POLICY_VIOLATION, "authentication required")
    try:
        return await authenticate_credential(ctx, credential)
    except QuantdeskError:
        raise WebSocketException(status.WS_1008_POLICY_VIOLATION, "authentication failed") from None


_stamp(websocket_authenticated, PolicySpec(PolicyKind.AUTHENTICATED))
WebSocketUser = Annotated[Principal, Depends(websocket_authenticated)]


def mark_public(router: APIRouter) -> APIRouter:
    """``router`` with the ``Public`` policy on every route (for modules below security).

    The policy is stamped on the endpoints rather than added as a dependency: these are the
    probes and scrapes hit most often (``/health/live``, ``/metrics``), and a no-op
    dependency plus a wrapping router cost more per request than the endpoint itself.
    """
    spec = getattr(public, POLICY_ATTRIBUTE)
    for route in router.routes:
        if isinstance(route, APIRoute | APIWebSocketRoute):
            _stamp(route.endpoint, spec)
    return router


def _unauthenticated(detail: str) -> Unauthenticated:
    error = Unauthenticated(detail)
    error.headers["WWW-Authenticate"] = 'Bearer realm="quantdesk"'
    return error


async def _deny(request: Request, principal: Principal, detail: str) -> None:
    await record_security_event(
        context_of(request),
        SecurityEventType.PERMISSION_DENIED,
        user_id=principal.user_id,
        client=ClientInfo.of(request),
        details={"route": request.url.path, "method": request.method, "reason": detail},
    )
    raise PermissionDenied(detail)


# -- introspection: the access-control matrix test and start-up checks use these ----------


def _walk(dependant: Dependant) -> Iterator[Dependant]:
    yield dependant
    for child in dependant.dependencies:
        yield from _walk(child)


@dataclass(frozen=True, slots=True)
class RouteInfo:
    """One endpoint as the app serves it (router prefixes and dependencies applied)."""

    path: str
    methods: frozenset[str]
    websocket: bool
    dependant: Dependant | None
    endpoint: Callable[..., Any] | None


def api_routes(app: FastAPI) -> list[RouteInfo]:
    """Every FastAPI HTTP and WebSocket endpoint, flattened through included routers."""
    found: list[RouteInfo] = []
    for context in iter_route_contexts(app.routes):
        original = context.original_route
        if not isinstance(original, APIRoute | APIWebSocketRoute):
            continue
        dependant = getattr(context, "dependant", None)
        found.append(
            RouteInfo(
                path=str(context.path_format or context.path),
                methods=frozenset(context.methods or ()),
                websocket=isinstance(original, APIWebSocketRoute),
                dependant=dependant if isinstance(dependant, Dependant) else None,
                endpoint=context.endpoint,
            )
        )
    return found


def route_policies(route: RouteInfo | BaseRoute) -> list[PolicySpec]:
    """Every policy stamped on ``route``'s endpoint or dependency tree (empty: none declared)."""
    found: list[PolicySpec] = []
    stamped = getattr(getattr(route, "endpoint", None), POLICY_ATTRIBUTE, None)
    if isinstance(stamped, PolicySpec):
        found.append(stamped)
    dependant = getattr(route, "dependant", None)
    if not isinstance(dependant, Dependant):
        return found
    for node in _walk(dependant):
        spec = getattr(node.call, POLICY_ATTRIBUTE, None)
        if isinstance(spec, PolicySpec) and spec not in found:
            found.append(spec)
    return found


def routes_without_policy(app: FastAPI) -> list[str]:
    """``METHOD path`` of every API or WebSocket route that declares no policy."""
    missing: list[str] = []
    for route in api_routes(app):
        if not route_policies(route):
            methods = sorted(route.methods) if not route.websocket else ["WEBSOCKET"]
            missing.extend(f"{method} {route.path}" for method in methods)
    return missing
