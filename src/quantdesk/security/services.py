"""The security objects an app builds once: signing keys, PII cipher, password hashing, the
rate limiter and the credential store.  ``install_security`` runs in ``create_app`` (so a prod
start with a bad key fails at once) and in the admin CLI; everything else reaches them
through ``security_services(ctx)``.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from quantdesk.platform.context import AppContext
from quantdesk.platform.ratelimit import RateLimiter
from quantdesk.security.credentials import CredentialStore
from quantdesk.security.passwords import PasswordHashing
from quantdesk.security.pii import PiiCipher
from quantdesk.security.tokens import KeyRing
from quantdesk.settings import ConfigurationError, Profile, Settings

EXTENSION_KEY = "security"


@dataclass(frozen=True, slots=True)
class SecurityServices:
    keys: KeyRing
    pii: PiiCipher
    passwords: PasswordHashing
    limiter: RateLimiter
    secret: bytes
    credentials: CredentialStore

    def derived_key(self, purpose: str) -> bytes:
        """A key for one purpose (CSRF tokens, recovery codes) derived from the app secret."""
        return hmac.new(self.secret, b"quantdesk:" + purpose.encode(), hashlib.sha256).digest()


def app_secret(settings: Settings) -> bytes:
    """``QUANTDESK_SECRET_KEY``; in dev/test a random one generated once under ``var/``."""
    if settings.secret_key is not None and settings.secret_key.get_secret_value():
        return settings.secret_key.get_secret_value().encode()
    if settings.profile is Profile.PROD:
        raise ConfigurationError("QUANTDESK_SECRET_KEY is required in prod")
    path: Path = settings.var_dir / "keys" / "app-secret"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass
        else:
            with os.fdopen(fd, "w") as handle:
                handle.write(secrets.token_urlsafe(48))
    return path.read_text().strip().encode()


def install_security(ctx: AppContext, credentials: CredentialStore) -> SecurityServices:
    """Build the security objects for ``ctx``; ``credentials`` reads the stored keys/sessions."""
    settings = ctx.settings
    services = SecurityServices(
        keys=KeyRing.from_settings(settings),
        pii=PiiCipher.from_settings(settings),
        passwords=PasswordHashing.from_settings(settings),
        limiter=RateLimiter.from_settings(
            settings, redis=ctx.redis, metrics=ctx.metrics, guard=ctx.redis_guard
        ),
        secret=app_secret(settings),
        credentials=credentials,
    )
    ctx.extensions[EXTENSION_KEY] = services
    return services


def security_services(ctx: AppContext) -> SecurityServices:
    services = ctx.extensions.get(EXTENSION_KEY)
    if isinstance(services, SecurityServices):
        return services
    raise RuntimeError("install_security(ctx, credentials) was not called for this context")
