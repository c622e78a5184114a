"""Domain errors with meaning.

Services and the pure core raise these; ``platform.errors`` maps each class once to an
RFC 7807 problem response.  Nothing here imports a web framework, so the pure core may raise
them too.
"""

from __future__ import annotations

from typing import Any, ClassVar


class QuantdeskError(Exception):
    """Base of every error the API turns into a problem response."""

    status: ClassVar[int] = 500
    type_slug: ClassVar[str] = "internal-error"
    title: ClassVar[str] = "Internal server error"

    def __init__(self, detail: str = "", **extra: Any) -> None:
        super().__init__(detail or self.title)
        self.detail = detail or self.title
        self.extra = extra
        # Response headers that belong with this error (e.g. RateLimit-* on a 429).
        self.headers: dict[str, str] = {}


class InvalidInput(QuantdeskError):
    status = 422
    type_slug = "invalid-input"
    title = "Invalid input"


class BadRequest(QuantdeskError):
    status = 400
    type_slug = "bad-request"
    title = "Bad request"


class Unauthenticated(QuantdeskError):
    status = 401
    type_slug = "unauthenticated"
    title = "Authentication required"


class PermissionDenied(QuantdeskError):
    status = 403
    type_slug = "forbidden"
    title = "Forbidden"


class NotFound(QuantdeskError):
    status = 404
    type_slug = "not-found"
    title = "Not found"


class Conflict(QuantdeskError):
    status = 409
    type_slug = "conflict"
    title = "Conflict"


class PayloadTooLarge(QuantdeskError):
    status = 413
    type_slug = "payload-too-large"
    title = "Payload too large"


class RateLimited(QuantdeskError):
    status = 429
    type_slug = "rate-limited"
    title = "Too many requests"

    def __init__(self, detail: str = "", *, retry_after: int = 1, **extra: Any) -> None:
        super().__init__(detail, **extra)
        self.retry_after = retry_after


class InsufficientFunds(QuantdeskError):
    status = 422
    type_slug = "insufficient-funds"
    title = "Insufficient funds"


class MarketClosed(QuantdeskError):
    status = 409
    type_slug = "market-closed"
    title = "Market closed"


class UpstreamError(QuantdeskError):
    """An external provider answered badly (malformed, wrong symbol, 4xx we cannot fix)."""

    status = 502
    type_slug = "upstream-error"
    title = "Upstream provider error"

    def __init__(self, detail: str = "", *, provider: str = "", **extra: Any) -> None:
        super().__init__(detail, provider=provider, **extra)
        self.provider = provider


class ServiceUnavailable(QuantdeskError):
    """A dependency (database, Redis, a provider) is down; retrying later may work."""

    status = 503
    type_slug = "service-unavailable"
    title = "Service unavailable"

    def __init__(
        self,
        detail: str = "",
        *,
        dependency: str = "",
        retry_after: int | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail, dependency=dependency, **extra)
        self.dependency = dependency
        self.retry_after = retry_after
