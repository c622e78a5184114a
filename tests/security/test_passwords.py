"""Password policy and argon2id parameters, including rehash-on-login."""

from __future__ import annotations

import httpx
import pytest
from argon2 import PasswordHasher
from argon2.low_level import Type
from fastapi import FastAPI
from hypothesis import given, settings
from hypothesis import strategies as st

from quantdesk.app import create_app
from quantdesk.platform.context import AppContext
from quantdesk.security.passwords import PasswordHashing, common_passwords, password_problems
from quantdesk.settings import Settings
from quantdesk.users.models import User


def test_dev_and_prod_use_the_owasp_parameters(tmp_path: object) -> None:
    for profile in ("dev", "prod"):
        configured = Settings(profile=profile, _env_file=None)
        time_cost, memory_kib, parallelism = configured.argon2_parameters
        assert memory_kib >= 19 * 1024
        assert time_cost >= 2
        assert parallelism == 1
        hashing = PasswordHashing.from_settings(configured)
        encoded = hashing.hash_sync("a sufficiently long passphrase")
        assert encoded.startswith(f"$argon2id$v=19$m={memory_kib},t={time_cost},p=1$")
        assert hashing.verify_sync(encoded, "a sufficiently long passphrase")
        assert not hashing.verify_sync(encoded, "a sufficiently long passphrasE")


def test_weaker_parameters_are_refused_outside_tests() -> None:
    with pytest.raises(ValueError, match="OWASP"):
        Settings(profile="prod", argon2_memory_kib=4096, _env_file=None)
    with pytest.raises(ValueError, match="OWASP"):
        Settings(profile="dev", argon2_time_cost=1, _env_file=None)
    assert Settings(profile="test", _env_file=None).argon2_parameters == (1, 64, 1)


async def test_login_rehashes_when_parameters_change(settings: Settings) -> None:
    email, password = "rehash@example.com", "a sufficiently long passphrase"
    first = create_app(settings)
    async with first.router.lifespan_context(first):
        transport = httpx.ASGITransport(app=first)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            await client.post("/api/v1/auth/register", json={"email": email, "password": password})
        before = await _stored_hash(first)
    assert "m=64,t=1,p=1" in before

    stronger = create_app(
        settings.model_copy(update={"argon2_time_cost": 2, "argon2_memory_kib": 128})
    )
    async with stronger.router.lifespan_context(stronger):
        transport = httpx.ASGITransport(app=stronger)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            wrong = await client.post(
                "/api/v1/auth/login", json={"email": email, "password": "not it at all!!"}
            )
            assert wrong.status_code == 401
            assert await _stored_hash(stronger) == before  # no rehash on a failed login
            ok = await client.post(
                "/api/v1/auth/login", json={"email": email, "password": password}
            )
            assert ok.status_code == 200
        after = await _stored_hash(stronger)
    assert "m=128,t=2,p=1" in after
    assert PasswordHasher(time_cost=2, memory_cost=128, parallelism=1, type=Type.ID).verify(
        after, password
    )


async def _stored_hash(app: FastAPI) -> str:
    from sqlalchemy import select

    ctx: AppContext = app.state.ctx
    async with ctx.database.session() as db:
        return str((await db.execute(select(User.password_hash))).scalar_one())


@pytest.mark.parametrize(
    ("password", "ok"),
    [
        ("twelve chars", True),
        ("ĉu vi parolas esperanton?", True),  # any characters, spaces included
        ("🔑🔑🔑🔑🔑🔑🔑🔑🔑🔑🔑🔑", True),
        ("elevenchars", False),
        ("QWERTYUIOPASDF", False),  # common, in any case
        ("x" * 128, True),
        ("x" * 129, False),
    ],
)
def test_policy_cases(password: str, ok: bool) -> None:
    assert (password_problems(password) == []) is ok


def test_password_equal_to_email_is_refused() -> None:
    assert password_problems("me@example.com", email="Me@Example.com")


def test_common_list_is_bundled_and_large() -> None:
    passwords = common_passwords()
    assert len(passwords) > 10_000
    assert {"password", "123456", "qwertyuiop", "password1234"} <= passwords


@settings(max_examples=60, deadline=None)
@given(st.text(min_size=12, max_size=40).filter(lambda p: p.casefold() not in common_passwords()))
def test_no_composition_rules(password: str) -> None:
    """Any 12+ character password not on the list passes: no 'needs a digit' rules."""
    from quantdesk.security.passwords import normalise_password

    if 12 <= len(normalise_password(password)) <= 128:
        assert password_problems(password) == []
