"""Typed builders of test objects, made the way a client or an operator makes them.

Every object goes through the public API (registration, sign-in, API keys) or, where the
API has no self-service path (an admin, a viewer when registration makes traders), through
the same service ``quantdesk admin create-user`` calls.  Nothing is inserted behind the
code's back, so a test's user has exactly the rows, events and cache entries a real one has.

``Users(app, client)`` is the ``users`` fixture of ``tests/conftest.py``; ``make_user`` is its
``logged_in`` method.  Accounts and orders get their builders here as those features land.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

import httpx
from fastapi import FastAPI

from quantdesk.platform.context import AppContext
from quantdesk.security.principal import Role, Scope
from quantdesk.users.auth import create_user


@dataclass(frozen=True)
class RegisteredUser:
    """An account that exists and has never signed in."""

    id: uuid.UUID
    email: str
    password: str
    role: str

    @property
    def credentials(self) -> dict[str, str]:
        return {"email": self.email, "password": self.password}


@dataclass
class TestUser:
    """A user registered through the public API and signed in: ``headers`` authenticate."""

    __test__ = False  # not a test class, whatever its name says

    id: uuid.UUID
    email: str
    password: str
    role: str
    access_token: str
    refresh_token: str
    session_id: uuid.UUID

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.access_token}"}

    @property
    def credentials(self) -> dict[str, str]:
        return {"email": self.email, "password": self.password}


@dataclass(frozen=True)
class ApiKey:
    """An API key created by its signed-in owner; ``headers`` authenticate with the key."""

    id: uuid.UUID
    key: str
    prefix: str
    scopes: tuple[str, ...]
    owner: TestUser

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}


UserFactory = Callable[..., Awaitable[TestUser]]


def _expect(response: httpx.Response, status: int) -> httpx.Response:
    # A builder that fails says why, in the test that used it, not three calls later.
    assert response.status_code == status, f"{response.request.url}: {response.text}"
    return response


class Users:
    """Builders of users on one app, through one client."""

    def __init__(self, app: FastAPI, client: httpx.AsyncClient) -> None:
        self.app = app
        self.client = client

    @property
    def _ctx(self) -> AppContext:
        ctx: AppContext = self.app.state.ctx
        return ctx

    async def registered(
        self, role: str = "trader", *, email: str | None = None, password: str | None = None
    ) -> RegisteredUser:
        """A new account of ``role``: self-registered when registration gives that role,
        otherwise created by the operator's service (there is no self-service admin)."""
        email = email or f"user-{uuid.uuid4().hex[:12]}@example.com"
        password = password or f"correct horse battery {uuid.uuid4().hex[:8]}"
        ctx = self._ctx
        if role == ctx.settings.registration_role:
            response = _expect(
                await self.client.post(
                    "/api/v1/auth/register", json={"email": email, "password": password}
                ),
                201,
            )
            user_id = uuid.UUID(response.json()["id"])
        else:
            async with ctx.database.session(immediate=True) as db:
                user = await create_user(ctx, db, email=email, password=password, role=Role(role))
                user_id = user.id
        return RegisteredUser(id=user_id, email=email, password=password, role=role)

    async def sign_in(self, user: RegisteredUser | TestUser) -> TestUser:
        """A new session of ``user`` (``POST /auth/login``), with its own tokens."""
        tokens = _expect(
            await self.client.post("/api/v1/auth/login", json=user.credentials), 200
        ).json()
        return TestUser(
            id=user.id,
            email=user.email,
            password=user.password,
            role=user.role,
            access_token=tokens["access_token"],
            refresh_token=tokens["refresh_token"],
            session_id=uuid.UUID(tokens["session_id"]),
        )

    async def logged_in(
        self, role: str = "trader", *, email: str | None = None, password: str | None = None
    ) -> TestUser:
        """``await make_user(role="viewer" | "trader" | "admin")``: a new, signed-in user."""
        user = await self.sign_in(await self.registered(role, email=email, password=password))
        me = _expect(await self.client.get("/api/v1/users/me", headers=user.headers), 200)
        assert me.json()["id"] == str(user.id)
        return user

    async def admin(self) -> TestUser:
        return await self.logged_in("admin")

    async def api_key(
        self,
        owner: TestUser | None = None,
        *,
        scopes: Sequence[Scope | str] = (Scope.READ,),
        name: str = "bot",
    ) -> ApiKey:
        """An API key of ``owner`` (a new trader when None), created through the API."""
        owner = owner or await self.logged_in()
        wanted = [str(scope) for scope in scopes]
        body = _expect(
            await self.client.post(
                "/api/v1/api-keys", headers=owner.headers, json={"name": name, "scopes": wanted}
            ),
            201,
        ).json()
        return ApiKey(
            id=uuid.UUID(body["id"]),
            key=body["key"],
            prefix=body["prefix"],
            scopes=tuple(body["scopes"]),
            owner=owner,
        )
