"""The access-control matrix, generated from the application's route table.

Every FastAPI route must declare a policy (``security.policy``); then every protected route
is called as anonymous, a viewer, a trader, an admin, a read-only API key, a revoked session
and, where the route names a user-owned object, as a user of another tenant.  The expected
answer follows from the declared policy alone, so routes added by later features are covered
without touching this file; a feature with user-owned path parameters adds a factory to
``OWNED_OBJECTS`` so the cross-tenant column covers it too.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi import APIRouter, FastAPI

from quantdesk.security.policy import (
    PolicyKind,
    PolicySpec,
    RouteInfo,
    api_routes,
    route_policies,
    routes_without_policy,
)
from quantdesk.security.principal import ROLE_DEFINING_SCOPE, ROLE_SCOPES, Role, Scope
from quantdesk.settings import Settings
from tests.conftest import TestUser, UserFactory

DENIED = {401, 403}


@dataclass
class Caller:
    name: str
    headers: dict[str, str]
    role: Role | None = None
    scopes: frozenset[Scope] = frozenset()
    api_key: bool = False


OwnedObjectFactory = Callable[[httpx.AsyncClient, TestUser], Awaitable[str]]


async def _own_session(client: httpx.AsyncClient, owner: TestUser) -> str:
    response = await client.post(
        "/api/v1/auth/login", json={"email": owner.email, "password": owner.password}
    )
    return str(response.json()["session_id"])


async def _own_api_key(client: httpx.AsyncClient, owner: TestUser) -> str:
    response = await client.post(
        "/api/v1/api-keys", headers=owner.headers, json={"name": "k", "scopes": ["read"]}
    )
    return str(response.json()["id"])


# Path parameter name -> how to make such an object owned by a given user.
OWNED_OBJECTS: dict[str, OwnedObjectFactory] = {
    "session_id": _own_session,
    "key_id": _own_api_key,
}


def expected_allowed(policies: list[PolicySpec], caller: Caller) -> bool:
    kinds = {policy.kind for policy in policies}
    if PolicyKind.PUBLIC in kinds and len(kinds) == 1:
        return True
    if caller.role is None:
        return False
    for policy in policies:
        if policy.kind is PolicyKind.SESSION and caller.api_key:
            return False
        if policy.kind is PolicyKind.ROLE:
            assert policy.role is not None
            if not caller.role.at_least(policy.role):
                return False
            if ROLE_DEFINING_SCOPE[policy.role] not in caller.scopes:
                return False
        if policy.kind is PolicyKind.SCOPE and policy.scope not in caller.scopes:
            return False
    return True


def _path(route: RouteInfo, values: dict[str, str]) -> str:
    path = route.path
    assert route.dependant is not None
    for param in route.dependant.path_params:
        annotation = getattr(param.field_info, "annotation", None)
        default = "1" if annotation is int else str(uuid.uuid4())
        path = path.replace("{" + param.name + "}", values.get(param.name, default))
    return path


async def _call(
    client: httpx.AsyncClient, method: str, path: str, headers: dict[str, str]
) -> httpx.Response:
    body: dict[str, Any] | None = {} if method in {"POST", "PUT", "PATCH", "DELETE"} else None
    return await client.request(method, path, headers=headers, json=body)


@pytest.fixture
def settings(settings: Settings) -> Settings:
    # The matrix signs the same people in again for every route.
    return settings.model_copy(update={"rate_limit_login_account": "100000/minute"})


async def _read_only_key(client: httpx.AsyncClient, trader_headers: dict[str, str]) -> str:
    response = await client.post(
        "/api/v1/api-keys", headers=trader_headers, json={"name": "matrix", "scopes": ["read"]}
    )
    assert response.status_code == 201, response.text
    return str(response.json()["key"])


async def _still_valid(client: httpx.AsyncClient, callers: list[Caller]) -> bool:
    """Whether every signed-in caller is still signed in: a route may end the session that
    calls it (logout) or revoke the trader's keys (logout-all)."""
    for caller in callers:
        if caller.role is not None:
            probe = await client.get("/api/v1/users/me", headers=caller.headers)
            if probe.status_code != 200:
                return False
    return True


async def _callers(client: httpx.AsyncClient, users: dict[str, TestUser]) -> list[Caller]:
    """Fresh sessions, and a new key when the last route revoked the trader's keys."""
    callers = [Caller("anonymous", {})]
    for name in ("viewer", "trader", "admin"):
        user = users[name]
        login = await client.post(
            "/api/v1/auth/login", json={"email": user.email, "password": user.password}
        )
        token = login.json()["access_token"]
        role = Role(name)
        callers.append(Caller(name, {"Authorization": f"Bearer {token}"}, role, ROLE_SCOPES[role]))
    key = users["key"].access_token  # the read-only API key of the trader (see below)
    probe = await client.get("/api/v1/users/me", headers={"Authorization": f"Bearer {key}"})
    if probe.status_code == 401:
        trader = next(caller for caller in callers if caller.name == "trader")
        key = await _read_only_key(client, trader.headers)
        users["key"] = dataclasses.replace(users["key"], access_token=key)
    # Called before the trader, whose logout-all would revoke it.
    callers.insert(
        1,
        Caller(
            "read-only API key",
            {"Authorization": f"Bearer {key}"},
            Role.TRADER,
            frozenset({Scope.READ}),
            api_key=True,
        ),
    )
    return callers


async def test_every_route_declares_a_policy(app: FastAPI) -> None:
    assert routes_without_policy(app) == []
    assert api_routes(app), "the route table is empty"


async def test_a_route_without_policy_is_caught(app: FastAPI) -> None:
    router = APIRouter()

    @router.get("/api/v1/forgotten")
    async def forgotten() -> dict[str, str]:
        return {}

    app.include_router(router)
    assert routes_without_policy(app) == ["GET /api/v1/forgotten"]


async def test_access_matrix(
    app: FastAPI, client: httpx.AsyncClient, make_user: UserFactory
) -> None:
    users = {name: await make_user(name) for name in ("viewer", "trader", "admin")}
    key = await _read_only_key(client, users["trader"].headers)
    users["key"] = TestUser(uuid.uuid4(), "", "", "key", key, "", uuid.uuid4())
    tenant_a, tenant_b = await make_user("trader"), await make_user("trader")
    problems: list[str] = []
    checked = 0
    callers = await _callers(client, users)
    # A revoked session: its unexpired token must be refused everywhere.
    revoked = await client.post(
        "/api/v1/auth/login",
        json={"email": users["trader"].email, "password": users["trader"].password},
    )
    revoked_headers = {"Authorization": f"Bearer {revoked.json()['access_token']}"}
    assert (await client.post("/api/v1/auth/logout", headers=revoked_headers)).status_code < 300

    for route in api_routes(app):
        if route.websocket:
            continue
        policies = route_policies(route)
        public = {p.kind for p in policies} == {PolicyKind.PUBLIC}
        for method in sorted(route.methods - {"HEAD", "OPTIONS"}):
            path = _path(route, {})
            for caller in callers:
                response = await _call(client, method, path, caller.headers)
                checked += 1
                allowed = expected_allowed(policies, caller)
                if response.status_code >= 500:
                    problems.append(f"{method} {route.path} as {caller.name}: 500")
                elif allowed and response.status_code in DENIED and not public:
                    problems.append(
                        f"{method} {route.path} as {caller.name}: {response.status_code}, "
                        "expected access"
                    )
                elif not allowed and response.status_code != (401 if caller.role is None else 403):
                    problems.append(
                        f"{method} {route.path} as {caller.name}: {response.status_code}, "
                        f"expected {401 if caller.role is None else 403}"
                    )
            # Signing in afresh for every route cost most of this test's time; a GET never
            # ends a session, anything else may.
            if method != "GET" and not await _still_valid(client, callers):
                callers = await _callers(client, users)
            if public:
                continue
            response = await _call(client, method, path, revoked_headers)
            checked += 1
            if response.status_code != 401:
                problems.append(f"{method} {route.path} as revoked session: {response.status_code}")
            # Another tenant: tenant B asks for tenant A's object and must get 404.
            assert route.dependant is not None
            names = [param.name for param in route.dependant.path_params]
            if names and all(name in OWNED_OBJECTS for name in names):
                owned = {name: await OWNED_OBJECTS[name](client, tenant_a) for name in names}
                response = await _call(client, method, _path(route, owned), tenant_b.headers)
                checked += 1
                if response.status_code != 404:
                    problems.append(
                        f"{method} {route.path} as another tenant: {response.status_code}"
                    )
    assert not problems, "\n".join(problems)
    assert checked > 100
