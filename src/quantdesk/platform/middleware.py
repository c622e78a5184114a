"""The request-context middleware: request id, response headers, access log, metrics, 500s.

Written as pure ASGI rather than ``BaseHTTPMiddleware``: it adds no task or stream copy per
request, which is what keeps the full stack close to a bare FastAPI app's throughput.  For
the same reason it is one layer with one send wrapper: the response headers other modules
need on every response (security headers) are hooks it calls, not layers of their own.
"""

from __future__ import annotations

import itertools
import os
import re
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from quantdesk.platform.errors import internal_error_response
from quantdesk.platform.errortracking import report_unhandled
from quantdesk.platform.logging import REQUEST_ID, AccessLog
from quantdesk.platform.metrics import Metrics

REQUEST_ID_HEADER = b"x-request-id"
_VALID_REQUEST_ID = re.compile(rb"^[A-Za-z0-9._:-]{1,128}$")
UNMATCHED_ROUTE = "<unmatched>"

log = structlog.get_logger("quantdesk.http")

ResponseHeaders = Callable[[Scope, list[tuple[bytes, bytes]]], None]
"""A hook that adds headers to a response as it starts: given the request's scope and the
response's raw (lower-case name, value) header list, which it extends in place."""


class RequestIds:
    """32-hex-digit request ids: a random per-process prefix and a counter.

    Correlation ids need to be unique, not unpredictable; ``uuid4`` asks the kernel for
    randomness on every request, which was the single largest cost of this middleware.
    """

    def __init__(self) -> None:
        self._prefix = os.urandom(6).hex()
        self._counter = itertools.count(1)

    def next(self) -> str:
        return "%s%020x" % (self._prefix, next(self._counter))  # noqa: UP031 - faster here


def caller_request_id(headers: Iterable[tuple[bytes, bytes]]) -> str | None:
    """The caller's ``X-Request-ID`` when it is well formed."""
    for name, value in headers:
        if name == REQUEST_ID_HEADER:
            return value.decode("ascii") if _VALID_REQUEST_ID.match(value) else None
    return None


def route_template(scope: Scope) -> str:
    """The matched route's template, so metric labels stay bounded whatever the paths."""
    route = scope.get("route")
    path = getattr(route, "path_format", None) or getattr(route, "path", None)
    if isinstance(path, str):
        return path
    # Plain Starlette routes (/docs, /openapi.json) leave only their endpoint behind; without
    # path parameters the path itself is the template.
    if "endpoint" in scope and not scope.get("path_params"):
        return str(scope["path"])
    return UNMATCHED_ROUTE


class RequestContextMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        metrics: Metrics | None,
        access_log: AccessLog | None = None,
        response_headers: Sequence[ResponseHeaders] = (),
    ) -> None:
        self.app = app
        self.stats = metrics.http if metrics is not None else None
        self.access_log = access_log or AccessLog("INFO", json=True)
        self.response_headers = tuple(response_headers)
        self.request_ids = RequestIds()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            if scope["type"] == "websocket":
                self._bind_request_id(scope)
            await self.app(scope, receive, send)
            return
        # Straight-line on purpose: this runs for every request, and each Python call it
        # avoids is measurable against a bare app (docs/benchmarks.md).  For the same reason
        # the access log and header hooks are bound methods, not callable objects: calling
        # an object goes through ``__call__``'s slot, which packs keywords into a dict.
        started = time.perf_counter()
        request_id = self._bind_request_id(scope)
        status = 500
        response_started = False
        request_id_header = (REQUEST_ID_HEADER, request_id.encode("ascii"))
        hooks = self.response_headers

        async def send_with_context(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                response_started = True
                status = message["status"]
                headers = [*message.get("headers", ()), request_id_header]
                for add_headers in hooks:
                    add_headers(scope, headers)
                message = {**message, "headers": headers}
            await send(message)

        stats = self.stats
        if stats is not None:
            stats.in_flight += 1
        try:
            await self.app(scope, receive, send_with_context)
        except Exception as exc:
            log.exception("unhandled_error", method=scope["method"], path=scope["path"])
            report_unhandled(exc, scope, request_id)  # Sentry, when QUANTDESK_SENTRY_DSN is set
            status = 500
            if not response_started:
                response = internal_error_response(scope["path"], request_id)
                await response(scope, receive, send_with_context)
        finally:
            elapsed = time.perf_counter() - started
            route = route_template(scope)
            if stats is not None:
                stats.in_flight -= 1
                stats.observe(scope["method"], route, status, elapsed)
            access_log = self.access_log
            if access_log.enabled:
                client: Any = scope.get("client")
                # Set by the security layer's authentication; read by duck type, as platform
                # sits below security.
                principal = scope["state"].get("principal")
                access_log.write(
                    request_id=request_id,
                    method=scope["method"],
                    route=route,
                    path=scope["path"],
                    status=status,
                    seconds=elapsed,
                    client=client[0] if client else None,
                    user_id=str(principal.user_id) if principal is not None else None,
                )

    def _bind_request_id(self, scope: Scope) -> str:
        request_id = caller_request_id(scope["headers"]) or self.request_ids.next()
        scope.setdefault("state", {})["request_id"] = request_id
        REQUEST_ID.set(request_id)
        return request_id
