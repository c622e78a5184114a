"""RFC 7807 problem responses: the one place errors become HTTP.

Every error the API returns is ``application/problem+json`` with a stable ``type`` URN,
``title``, ``status``, ``detail``, ``instance`` (the path) and ``request_id``.  Domain
exceptions are mapped here once; routers never build error responses by hand.
"""

from __future__ import annotations

from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from quantdesk.platform.exceptions import QuantdeskError, RateLimited, ServiceUnavailable

PROBLEM_CONTENT_TYPE = "application/problem+json"
TYPE_PREFIX = "urn:quantdesk:problem:"

_SLUG_BY_STATUS = {
    400: "bad-request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not-found",
    405: "method-not-allowed",
    406: "not-acceptable",
    409: "conflict",
    413: "payload-too-large",
    415: "unsupported-media-type",
    422: "invalid-input",
    429: "rate-limited",
    500: "internal-error",
    502: "upstream-error",
    503: "service-unavailable",
}


def problem_body(
    status: int,
    *,
    slug: str | None = None,
    title: str | None = None,
    detail: str | None = None,
    instance: str | None = None,
    request_id: str | None = None,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    phrase = HTTPStatus(status).phrase
    body: dict[str, Any] = {
        "type": TYPE_PREFIX + (slug or _SLUG_BY_STATUS.get(status, "error")),
        "title": title or phrase,
        "status": status,
        "detail": detail or title or phrase,
    }
    if instance is not None:
        body["instance"] = instance
    if request_id is not None:
        body["request_id"] = request_id
    if extra:
        body.update({k: v for k, v in extra.items() if k not in body})
    return body


def problem_response(
    status: int, body: dict[str, Any], headers: Mapping[str, str] | None = None
) -> Response:
    return Response(
        content=orjson.dumps(body, default=str),
        status_code=status,
        media_type=PROBLEM_CONTENT_TYPE,
        headers=dict(headers or {}),
    )


def request_id_of(request: Request) -> str | None:
    value = request.scope.get("state", {}).get("request_id")
    return value if isinstance(value, str) else None


def _problem_for(request: Request, status: int, **kwargs: Any) -> dict[str, Any]:
    return problem_body(
        status, instance=request.url.path, request_id=request_id_of(request), **kwargs
    )


async def handle_domain_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, QuantdeskError)  # noqa: S101 - registered for this class only
    headers = dict(exc.headers)
    if isinstance(exc, RateLimited | ServiceUnavailable) and exc.retry_after is not None:
        headers["Retry-After"] = str(exc.retry_after)
    body = _problem_for(
        request,
        exc.status,
        slug=exc.type_slug,
        title=exc.title,
        detail=exc.detail,
        extra=exc.extra,
    )
    return problem_response(exc.status, body, headers)


async def handle_http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)  # noqa: S101
    detail = exc.detail if isinstance(exc.detail, str) else None
    if exc.status_code == 404 and detail == "Not Found":
        detail = f"no resource at {request.url.path}"
    if exc.status_code == 405:
        detail = f"{request.method} is not allowed on {request.url.path}"
    body = _problem_for(request, exc.status_code, detail=detail)
    return problem_response(exc.status_code, body, exc.headers)


async def handle_validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)  # noqa: S101
    errors = [
        {
            "loc": list(error.get("loc", ())),
            "field": ".".join(str(part) for part in error.get("loc", ())[1:]) or None,
            "message": error.get("msg", ""),
            "type": error.get("type", ""),
        }
        for error in exc.errors()
    ]
    fields = ", ".join(sorted({e["field"] or e["loc"][0] for e in errors if e["loc"]}))
    body = _problem_for(
        request,
        422,
        detail=f"request validation failed: {fields}" if fields else "request validation failed",
        extra={"errors": errors},
    )
    return problem_response(422, body)


async def handle_redis_outage(request: Request, exc: Exception) -> Response:
    """Redis unreachable in code that has no per-process fallback: a 503, never a 500.

    The cache, bus and rate limits degrade by themselves (``platform.redisguard``); this is
    the answer for any other use that meets an outage.
    """
    body = _problem_for(
        request,
        503,
        detail="a dependency is unreachable: redis",
        extra={"dependency": "redis"},
    )
    return problem_response(503, body, {"Retry-After": "2"})


def internal_error_response(path: str, request_id: str | None) -> Response:
    """The 500 body: nothing internal, only what lets support find the log line."""
    body = problem_body(
        500,
        detail="an unexpected error occurred; quote the request_id when reporting it",
        instance=path,
        request_id=request_id,
    )
    return problem_response(500, body)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(QuantdeskError, handle_domain_error)
    app.add_exception_handler(StarletteHTTPException, handle_http_error)
    app.add_exception_handler(RequestValidationError, handle_validation_error)
    app.add_exception_handler(RedisConnectionError, handle_redis_outage)
    app.add_exception_handler(RedisTimeoutError, handle_redis_outage)
