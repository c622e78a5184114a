"""HTTP hardening as pure-ASGI middleware: security headers, body-size limits and CSRF.

Pure ASGI (not ``BaseHTTPMiddleware``) so the stack adds no task or body copy per request.
CORS and trusted hosts use Starlette's own middleware (``install_http_hardening``).

- ``SecurityHeaders`` puts the OWASP secure-headers set on every response, error
  or not, including responses produced by other middleware (413, 400 bad host, 500): a strict
  ``Content-Security-Policy`` for JSON, a relaxed one only for the HTML of ``/docs`` and
  ``/redoc`` (inline styles for Swagger UI and ReDoc; scripts only from the app), HSTS in
  prod, and the ``RateLimit-*`` headers of the request's tightest rate-limit decision.
- ``RequestGuardMiddleware`` applies, as one layer, the body-size limits and the CSRF check:

  - body limits: the body is counted as it is read, so a request that lies in its
    ``Content-Length`` or streams chunked is cut off at the limit, and answers 413;
  - ``CsrfCheck``: when a request carries the dashboard's session cookies, unsafe
    methods need an ``Origin`` (or ``Referer``) on the allow-list and an ``X-CSRF-Token``
    header equal to the ``qd_csrf`` cookie, whose value is HMAC-signed by the server and
    bound to the session ("signed double submit cookie", OWASP CSRF Prevention Cheat
    Sheet).  Only requests without session cookies are exempt (programs with a bearer
    token or API key): an ``Authorization`` header proves nothing by being there, since
    ``Basic``, ``Token x`` or an empty ``Bearer`` leave the cookie to authenticate.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Iterable
from urllib.parse import urlsplit

import orjson
from fastapi import FastAPI
from starlette.exceptions import HTTPException
from starlette.middleware.cors import CORSMiddleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import cookie_parser
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from quantdesk.platform.errors import problem_body, problem_response
from quantdesk.platform.ratelimit import RateLimitDecision
from quantdesk.security.authn import ACCESS_COOKIE, CSRF_COOKIE, CSRF_HEADER, REFRESH_COOKIE
from quantdesk.security.ratelimiting import SCOPE_STATE_KEY
from quantdesk.settings import Settings

API_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
# Swagger UI and ReDoc as quantdesk serves them (platform/apidocs.py): scripts, styles,
# fonts and images from the app itself only.  Styles keep 'unsafe-inline' for the style
# attributes and <style> blocks both UIs write at run time; ReDoc's search runs in a web
# worker it starts from a blob: URL.
DOCS_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "font-src 'self'; img-src 'self' data:; connect-src 'self'; worker-src blob:; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
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


class SecurityHeaders:
    """Adds the security headers to every HTTP response that does not set them itself.

    Not a middleware of its own: the request-context middleware calls ``add`` from the one send
    wrapper that also adds the request id, so the headers reach every response, including
    the 413, 400 (bad host) and 500 answers other layers make, without a second layer per
    request.  The header sets are encoded once per kind of response, and ASGI response
    header names are lower-case, so one pass over the response's headers is all it costs.
    """

    def __init__(self, *, hsts: bool) -> None:
        common = [
            ("X-Content-Type-Options", "nosniff"),
            ("X-Frame-Options", "DENY"),
            ("Referrer-Policy", "no-referrer"),
            ("Permissions-Policy", PERMISSIONS_POLICY),
            ("Cross-Origin-Resource-Policy", "same-origin"),
        ]
        if hsts:
            common.append(("Strict-Transport-Security", HSTS))
        # COOP isolates browsing contexts; it only means something on documents.
        html_only = [("Cross-Origin-Opener-Policy", "same-origin")]
        # Answers under /api/ carry tokens and personal data: no shared or browser cache
        # keeps them unless a route says otherwise.
        api_only = [("Cache-Control", "no-store")]
        self._sets: dict[tuple[str, bool], list[tuple[bytes, bytes]]] = {}
        for csp in (API_CSP, DOCS_CSP, DASHBOARD_CSP):
            html = csp != API_CSP
            for api in (False, True):
                pairs = [("Content-Security-Policy", csp), *common]
                pairs += html_only if html else []
                pairs += api_only if api else []
                self._sets[csp, api] = _encode(pairs)
        self._names = frozenset(name for pairs in self._sets.values() for name, _ in pairs)

    def add(self, scope: Scope, headers: list[tuple[bytes, bytes]]) -> None:
        html = False
        overlap = False
        ours = self._names
        for name, value in headers:
            if name in ours:
                overlap = True
            elif name == b"content-type":
                html = value.startswith(b"text/html")
        path: str = scope["path"]
        csp = (DOCS_CSP if path.startswith(DOCS_PATHS) else DASHBOARD_CSP) if html else API_CSP
        additions = self._sets[csp, path.startswith("/api/")]
        decision = scope["state"].get(SCOPE_STATE_KEY)
        if isinstance(decision, RateLimitDecision):
            additions = [*additions, *_encode(list(decision.headers().items()))]
            overlap = True
        if not overlap:
            headers.extend(additions)
            return
        present = {name for name, _ in headers}
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


class RequestGuardMiddleware:
    """The inbound checks, as one layer: body-size limits, then CSRF.

    One layer rather than one each because most requests are GETs without a body, which
    neither check concerns: they pass through after a single scan of the headers.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        json_limit: int,
        upload_limit: int,
        batch_limit: int | None = None,
        csrf: CsrfCheck,
    ) -> None:
        self.app = app
        self.json_limit = json_limit
        self.upload_limit = upload_limit
        self.batch_limit = batch_limit or json_limit
        self.csrf = csrf

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = scope["headers"]
        # HTTP/1.1 (RFC 9112 §6.3): without Content-Length or Transfer-Encoding a request
        # has no body, so there is nothing to count.
        has_body = False
        for name, _ in headers:
            if name in _BODY_HEADERS:
                has_body = True
                break
        unsafe = scope["method"] not in SAFE_METHODS
        if not (has_body or unsafe):
            await self.app(scope, receive, send)
            return
        limit = self._limit_for(scope) if has_body else 0
        if has_body:
            rejection = _declared_length_problem(headers, limit)
            if rejection is not None:
                await _reject(scope, receive, send, *rejection)
                return
        if unsafe:
            problem = self.csrf.problem(scope)
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
        if not has_body:
            await self.app(scope, receive, send)
            return
        await self._call_counting_body(scope, receive, send, limit)

    def _limit_for(self, scope: Scope) -> int:
        if scope["path"].startswith(BATCH_PATH_PREFIXES):
            return self.batch_limit
        for name, value in scope["headers"]:
            if name == b"content-type":
                media = value.decode("latin-1").split(";")[0].strip().lower()
                if media in UPLOAD_CONTENT_TYPES:
                    return self.upload_limit
        return self.json_limit

    async def _call_counting_body(
        self, scope: Scope, receive: Receive, send: Send, limit: int
    ) -> None:
        """Count the body as it is read: a request that lies in its Content-Length or
        streams chunked is cut off at the limit."""
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
            await _reject(scope, receive, send, 413, exc.detail)


def _declared_length_problem(
    headers: Iterable[tuple[bytes, bytes]], limit: int
) -> tuple[int, str] | None:
    for name, value in headers:
        if name == b"content-length":
            try:
                declared = int(value)
            except ValueError:
                return 400, "invalid Content-Length"
            if declared > limit:
                return 413, BodyTooLarge(limit).detail
    return None


async def _reject(scope: Scope, receive: Receive, send: Send, status: int, detail: str) -> None:
    body = problem_body(
        status, detail=detail, instance=scope["path"], request_id=_request_id(scope)
    )
    headers = {"Connection": "close"} if status == 413 else None
    await problem_response(status, body, headers)(scope, receive, send)


# -- CSRF ----------------------------------------------------------------------------------


def new_csrf_token(key: bytes, session_id: object) -> str:
    """``<session id>.<nonce>.<HMAC>``: signed by the server, valid for one session only.

    Binding to the session is what stops a token of one session (an attacker's own, planted
    as a cookie) from passing with another session's cookies.
    """
    session = str(session_id)
    nonce = secrets.token_urlsafe(24)
    return f"{session}.{nonce}.{_csrf_signature(key, session, nonce)}"


def _csrf_signature(key: bytes, session: str, nonce: str) -> str:
    message = b"csrf\x00" + session.encode() + b"\x00" + nonce.encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def csrf_token_session(key: bytes, token: str) -> str | None:
    """The session a server-issued token is bound to, or None for a token we did not sign."""
    session, _, rest = token.partition(".")
    nonce, sep, signature = rest.partition(".")
    if not (session and nonce and sep):
        return None
    if not hmac.compare_digest(signature, _csrf_signature(key, session, nonce)):
        return None
    return session


def access_cookie_session(token: str) -> str | None:
    """The ``sid`` claim of the access cookie's JWT, read without verifying it.

    Sound for the CSRF binding because the request can only succeed if authentication, which
    runs afterwards on this very cookie, verifies the signature: a forged cookie naming
    another session gets a 401, not a pass.  Reading the claim here keeps the key ring and
    the session store out of the middleware.
    """
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        payload = orjson.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except (ValueError, orjson.JSONDecodeError):
        return None
    sid = payload.get("sid") if isinstance(payload, dict) else None
    return sid if isinstance(sid, str) else None


def origin_of(url: str) -> str | None:
    parts = urlsplit(url)
    if not parts.scheme or not parts.netloc:
        return None
    return f"{parts.scheme}://{parts.netloc}".lower()


class CsrfCheck:
    """The signed double-submit check for unsafe requests that authenticate with cookies."""

    def __init__(self, *, key: bytes, allowed_origins: Iterable[str]) -> None:
        self.key = key
        self.allowed_origins = {o for o in (origin_of(url) for url in allowed_origins) if o}

    def problem(self, scope: Scope) -> str | None:
        """Why this request fails the check, or None when it passes or does not need it."""
        headers = dict(scope["headers"])
        # Any session cookie means the browser may be authenticating on its own, whatever
        # Authorization header came with it: only cookie-less requests are exempt.
        cookie_header = headers.get(b"cookie")
        if cookie_header is None:
            return None
        cookies = cookie_parser(cookie_header.decode("latin-1"))
        if ACCESS_COOKIE not in cookies and REFRESH_COOKIE not in cookies:
            return None
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
        bound_to = csrf_token_session(self.key, cookie_token)
        if bound_to is None:
            return "the CSRF token is not one this server issued"
        # The access cookie outlives its token (users/router.py) so that it names the
        # session on the refresh call too; no access cookie means no session to bind to.
        if bound_to != access_cookie_session(cookies.get(ACCESS_COOKIE, "")):
            return "the CSRF token belongs to another session"
        return None


def install_http_hardening(app: FastAPI, settings: Settings, *, csrf_key: bytes) -> None:
    """Add the request guard (body limits, CSRF), CORS and trusted hosts (innermost first).

    ``SecurityHeaders`` is handed to the request-context middleware by the app factory: that
    middleware is the outermost layer, so the headers also reach responses these layers make.
    """
    app.add_middleware(
        RequestGuardMiddleware,
        json_limit=settings.max_json_body_bytes,
        upload_limit=settings.max_upload_body_bytes,
        batch_limit=settings.max_batch_body_bytes,
        csrf=CsrfCheck(
            key=csrf_key, allowed_origins=[settings.public_base_url, *settings.cors_origins]
        ),
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
    if settings.trusted_proxies:
        # Outermost of these layers, so the body limits, CSRF (its same-origin test uses the
        # scheme), rate limits and the security log all see the client's address, and the
        # access log too (uvicorn rewrites the shared scope in place).  `quantdesk serve`
        # turns uvicorn's own handling off: it trusted 127.0.0.1 by default, so anything on
        # the host, or any proxy that passes the header through, could pick the address.
        app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=settings.trusted_proxies)
