"""HTTP hardening as pure-ASGI middleware: security headers, body-size limits and CSRF.

Pure ASGI (not ``BaseHTTPMiddleware``) so the stack adds no task or body copy per request.
CORS and trusted hosts use Starlette's own middleware (``install_http_hardening``).

- ``SecurityHeadersMiddleware`` puts the OWASP secure-headers set on every response, error
  or not, including responses produced by other middleware (413, 400 bad host, 500): a strict
  ``Content-Security-Policy`` for JSON, a relaxed one only for the HTML of ``/docs`` and
  ``/redoc`` (Swagger UI and ReDoc load from a CDN), HSTS in prod, and the ``RateLimit-*``
  headers of the request's tightest rate-limit decision.
- ``BodySizeLimitMiddleware`` counts the body as it is read, so a request that lies in its
  ``Content-Length`` or streams chunked is cut off at the limit, and answers 413.
- ``CsrfMiddleware``: when a request authenticates with the dashboard's cookies, unsafe
  methods need an ``Origin`` (or ``Referer``) on the allow-list and an ``X-CSRF-Token`` header
  equal to the ``qd_csrf`` cookie, whose value is HMAC-signed by the server ("signed double
  submit cookie", OWASP CSRF Prevention Cheat Sheet).  Bearer-token requests are exempt:
  a browser never attaches an ``Authorization`` header on its own.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterable
from urllib.parse import urlsplit

from fastapi import FastAPI
from starlette.exceptions import HTTPException
from starlette.middleware.cors import CORSMiddleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import cookie_parser
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from quantdesk.platform.errors import problem_body, problem_response
from quantdesk.platform.ratelimit import RateLimitDecision
from quantdesk.security.authn import ACCESS_COOKIE, CSRF_COOKIE, CSRF_HEADER, REFRESH_COOKIE
from quantdesk.security.ratelimiting import SCOPE_STATE_KEY
from quantdesk.settings import Settings

API_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
# Swagger UI and ReDoc as FastAPI serves them: bundles from jsDelivr, one inline start-up
# script, ReDoc's web worker and fonts.
DOCS_CSP = (
    "default-src 'none'; script-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; "
    "style-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net https://fonts.googleapis.com; "
    "font-src https://fonts.gstatic.com; img-src 'self' data: https://fastapi.tiangolo.com "
    "https://cdn.redoc.ly; connect-src 'self'; worker-src blob:; frame-ancestors 'none'; "
    "base-uri 'none'; form-action 'self'"
)
DASHBOARD_CSP = (
    "default-src 'self'; img-src 'self' data:; connect-src 'self' ws: wss:; object-src 'none'; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)
PERMISSIONS_POLICY = (
    "accelerometer=(), camera=(), geolocation=(), gyroscope=(), magnetometer=(), "
    "microphone=(), payment=(), usb=()"
)
HSTS = "max-age=63072000; includeSubDomains"
DOCS_PATHS = ("/docs", "/redoc")
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
UPLOAD_CONTENT_TYPES = ("multipart/form-data", "text/csv", "application/octet-stream")


def _request_id(scope: Scope) -> str | None:
    value = scope.get("state", {}).get("request_id")
    return value if isinstance(value, str) else None


class SecurityHeadersMiddleware:
    """Adds the security headers to every HTTP response that does not set them itself.

    The headers are pre-encoded once and appended to the raw header list after one pass
    over the names already present: this runs on every response, so it avoids
    ``MutableHeaders.setdefault``'s repeated scans.
    """

    def __init__(self, app: ASGIApp, *, hsts: bool) -> None:
        self.app = app
        common = [
            ("X-Content-Type-Options", "nosniff"),
            ("X-Frame-Options", "DENY"),
            ("Referrer-Policy", "no-referrer"),
            ("Permissions-Policy", PERMISSIONS_POLICY),
            ("Cross-Origin-Resource-Policy", "same-origin"),
        ]
        if hsts:
            common.append(("Strict-Transport-Security", HSTS))
        self._common = _encode(common)
        self._no_store = _encode([("Cache-Control", "no-store")])
        # COOP isolates browsing contexts; it only means something on documents.
        self._html_only = _encode([("Cross-Origin-Opener-Policy", "same-origin")])
        self._csp = {
            csp: _encode([("Content-Security-Policy", csp)])
            for csp in (API_CSP, DOCS_CSP, DASHBOARD_CSP)
        }

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", ()))
                self._apply(scope, path, headers)
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)

    def _apply(self, scope: Scope, path: str, headers: list[tuple[bytes, bytes]]) -> None:
        present = {name.lower() for name, _ in headers}
        html = any(
            name.lower() == b"content-type" and value.startswith(b"text/html")
            for name, value in headers
        )
        csp = (DOCS_CSP if path.startswith(DOCS_PATHS) else DASHBOARD_CSP) if html else API_CSP
        additions = [*self._csp[csp], *self._common]
        if html:
            additions.extend(self._html_only)
        if path.startswith("/api/"):
            # Answers carry tokens and personal data: no shared or browser cache keeps them
            # unless a route says otherwise.
            additions.extend(self._no_store)
        decision = scope.get("state", {}).get(SCOPE_STATE_KEY)
        if isinstance(decision, RateLimitDecision):
            additions.extend(_encode(list(decision.headers().items())))
        headers.extend(pair for pair in additions if pair[0] not in present)


def _encode(pairs: list[tuple[str, str]]) -> list[tuple[bytes, bytes]]:
    return [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in pairs]


class BodyTooLarge(HTTPException):
    """Raised from ``receive``: FastAPI passes HTTP exceptions through to the problem mapper."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"the request body exceeds the limit of {limit} bytes")


_BODY_HEADERS = frozenset({b"content-length", b"transfer-encoding"})
# Columnar batch endpoints (100,000 options per request) legitimately exceed the JSON limit.
BATCH_PATH_PREFIXES = ("/api/v1/analytics/options/",)


class BodySizeLimitMiddleware:
    def __init__(
        self, app: ASGIApp, *, json_limit: int, upload_limit: int, batch_limit: int | None = None
    ) -> None:
        self.app = app
        self.json_limit = json_limit
        self.upload_limit = upload_limit
        self.batch_limit = batch_limit or json_limit

    def _limit_for(self, scope: Scope) -> int:
        if scope["path"].startswith(BATCH_PATH_PREFIXES):
            return self.batch_limit
        for name, value in scope.get("headers", ()):
            if name == b"content-type":
                media = value.decode("latin-1").split(";")[0].strip().lower()
                if media in UPLOAD_CONTENT_TYPES:
                    return self.upload_limit
        return self.json_limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = scope.get("headers", ())
        if not any(name in _BODY_HEADERS for name, _ in headers):
            # HTTP/1.1 (RFC 9112 §6.3): without Content-Length or Transfer-Encoding a request
            # has no body, so there is nothing to count (most GETs take this path).
            await self.app(scope, receive, send)
            return
        limit = self._limit_for(scope)
        for name, value in headers:
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    await self._reject(scope, receive, send, 400, "invalid Content-Length")
                    return
                if declared > limit:
                    await self._reject(scope, receive, send, 413, BodyTooLarge(limit).detail)
                    return
        received = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except BodyTooLarge as exc:
            if started:
                raise
            await self._reject(scope, receive, send, 413, exc.detail)

    async def _reject(
        self, scope: Scope, receive: Receive, send: Send, status: int, detail: str
    ) -> None:
        body = problem_body(
            status, detail=detail, instance=scope["path"], request_id=_request_id(scope)
        )
        headers = {"Connection": "close"} if status == 413 else None
        await problem_response(status, body, headers)(scope, receive, send)


# -- CSRF ----------------------------------------------------------------------------------


def new_csrf_token(key: bytes) -> str:
    nonce = secrets.token_urlsafe(24)
    return f"{nonce}.{_csrf_signature(key, nonce)}"


def _csrf_signature(key: bytes, nonce: str) -> str:
    return hmac.new(key, b"csrf\x00" + nonce.encode(), hashlib.sha256).hexdigest()


def csrf_token_valid(key: bytes, token: str) -> bool:
    nonce, sep, signature = token.partition(".")
    return bool(sep) and hmac.compare_digest(signature, _csrf_signature(key, nonce))


def origin_of(url: str) -> str | None:
    parts = urlsplit(url)
    if not parts.scheme or not parts.netloc:
        return None
    return f"{parts.scheme}://{parts.netloc}".lower()


class CsrfMiddleware:
    def __init__(self, app: ASGIApp, *, key: bytes, allowed_origins: Iterable[str]) -> None:
        self.app = app
        self.key = key
        self.allowed_origins = {o for o in (origin_of(url) for url in allowed_origins) if o}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in SAFE_METHODS:
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers", ()))
        cookies = cookie_parser(headers.get(b"cookie", b"").decode("latin-1"))
        cookie_auth = b"authorization" not in headers and (
            ACCESS_COOKIE in cookies or REFRESH_COOKIE in cookies
        )
        if cookie_auth:
            problem = self._problem(scope, headers, cookies)
            if problem is not None:
                body = problem_body(
                    403,
                    slug="csrf-failed",
                    title="CSRF check failed",
                    detail=problem,
                    instance=scope["path"],
                    request_id=_request_id(scope),
                )
                await problem_response(403, body)(scope, receive, send)
                return
        await self.app(scope, receive, send)

    def _problem(
        self, scope: Scope, headers: dict[bytes, bytes], cookies: dict[str, str]
    ) -> str | None:
        origin = headers.get(b"origin") or headers.get(b"referer")
        if origin is None:
            return "an Origin or Referer header is required with cookie authentication"
        claimed = origin_of(origin.decode("latin-1"))
        own = None
        host = headers.get(b"host")
        if host is not None:
            own = f"{scope.get('scheme', 'http')}://{host.decode('latin-1')}".lower()
        if claimed is None or (claimed not in self.allowed_origins and claimed != own):
            return "the request's origin is not allowed"
        cookie_token = cookies.get(CSRF_COOKIE, "")
        header_token = headers.get(CSRF_HEADER.lower().encode(), b"").decode("latin-1")
        if not cookie_token or not hmac.compare_digest(cookie_token, header_token):
            return f"the {CSRF_HEADER} header must repeat the {CSRF_COOKIE} cookie"
        if not csrf_token_valid(self.key, cookie_token):
            return "the CSRF token is not one this server issued"
        return None


def install_http_hardening(app: FastAPI, settings: Settings, *, csrf_key: bytes) -> None:
    """Add CSRF, body limits, CORS and trusted hosts (innermost first).

    ``SecurityHeadersMiddleware`` is added by the app factory as the outermost layer, so its
    headers also reach responses made by the request-context middleware.
    """
    app.add_middleware(
        CsrfMiddleware,
        key=csrf_key,
        allowed_origins=[settings.public_base_url, *settings.cors_origins],
    )
    app.add_middleware(
        BodySizeLimitMiddleware,
        json_limit=settings.max_json_body_bytes,
        upload_limit=settings.max_upload_body_bytes,
        batch_limit=settings.max_batch_body_bytes,
    )
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_credentials=True,
            allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
            allow_headers=[
                "Authorization",
                "Content-Type",
                CSRF_HEADER,
                "Idempotency-Key",
                "X-Request-ID",
            ],
            expose_headers=[
                "RateLimit-Limit",
                "RateLimit-Remaining",
                "RateLimit-Reset",
                "Retry-After",
                "X-Request-ID",
            ],
            max_age=600,
        )
    if "*" not in settings.trusted_hosts:
        app.add_middleware(TrustedHostMiddleware, allowed_hosts=settings.trusted_hosts)
