"""Passwords: the policy (NIST SP 800-63B / OWASP ASVS 5 V6) and argon2id hashing.

Policy: 12 to 128 characters after NFKC normalisation, any characters, no composition rules,
refused when in the bundled list of common and breached passwords (``data/``, compared
case-insensitively).  Hashing: argon2id via argon2-cffi with the OWASP parameters from
settings (m = 19 MiB, t = 2, p = 1 by default); each hash or verify runs in a worker thread
so the event loop keeps serving while it burns its ~20 ms.  ``needs_rehash`` tells the login
to re-hash when the parameters have been raised since the hash was made.
"""

from __future__ import annotations

import asyncio
import functools
import secrets
import unicodedata
from importlib import resources

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from quantdesk.settings import Settings

MIN_LENGTH = 12
MAX_LENGTH = 128
COMMON_PASSWORDS_FILE = "common-passwords.txt"


@functools.cache
def common_passwords() -> frozenset[str]:
    """The bundled list, case-folded; read once per process (it is a constant)."""
    text = resources.files("quantdesk.security").joinpath("data", COMMON_PASSWORDS_FILE)
    lines = text.read_text(encoding="utf-8").splitlines()
    return frozenset(
        line.strip().casefold() for line in lines if line.strip() and not line.startswith("#")
    )


def normalise_password(password: str) -> str:
    return unicodedata.normalize("NFKC", password)


def password_problems(password: str, *, email: str | None = None) -> list[str]:
    """Why ``password`` is refused (empty list: acceptable)."""
    candidate = normalise_password(password)
    problems: list[str] = []
    if len(candidate) < MIN_LENGTH:
        problems.append(f"must be at least {MIN_LENGTH} characters")
    if len(candidate) > MAX_LENGTH:
        problems.append(f"must be at most {MAX_LENGTH} characters")
    folded = candidate.casefold()
    if folded in common_passwords() or folded.strip() in common_passwords():
        problems.append("is too common (it appears in lists of breached passwords)")
    if email and folded == email.strip().casefold():
        problems.append("must not be your e-mail address")
    return problems


class PasswordHashing:
    def __init__(self, *, time_cost: int, memory_kib: int, parallelism: int) -> None:
        self._hasher = PasswordHasher(
            time_cost=time_cost,
            memory_cost=memory_kib,
            parallelism=parallelism,
            hash_len=32,
            salt_len=16,
            type=Type.ID,
        )
        # Made once up front, so the first unknown-account login is not slower than the rest.
        self._dummy_hash = self.hash_sync(secrets.token_urlsafe(24))

    @classmethod
    def from_settings(cls, settings: Settings) -> PasswordHashing:
        time_cost, memory_kib, parallelism = settings.argon2_parameters
        return cls(time_cost=time_cost, memory_kib=memory_kib, parallelism=parallelism)

    @property
    def parameters(self) -> tuple[int, int, int]:
        return self._hasher.time_cost, self._hasher.memory_cost, self._hasher.parallelism

    def hash_sync(self, password: str) -> str:
        return self._hasher.hash(normalise_password(password))

    def verify_sync(self, password_hash: str, password: str) -> bool:
        try:
            return self._hasher.verify(password_hash, normalise_password(password))
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    async def hash(self, password: str) -> str:
        return await asyncio.to_thread(self.hash_sync, password)

    async def verify(self, password_hash: str, password: str) -> bool:
        return await asyncio.to_thread(self.verify_sync, password_hash, password)

    async def verify_dummy(self, password: str) -> None:
        """Spend the time of a real verification, for unknown accounts (no timing oracle)."""
        await self.verify(self._dummy_hash, password)

    def needs_rehash(self, password_hash: str) -> bool:
        try:
            return self._hasher.check_needs_rehash(password_hash)
        except InvalidHashError:
            return True
