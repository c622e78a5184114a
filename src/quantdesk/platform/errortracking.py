"""Optional error tracking: unhandled errors go to Sentry when ``QUANTDESK_SENTRY_DSN`` is set.

Off by default, and then sentry-sdk is not even imported.  On, the request middleware (the
one place that turns unhandled errors into 500s) reports each one with the request's method,
route, path and id.  None of sentry-sdk's library integrations is enabled, so it patches
nothing in the process (no logging, HTTP client or database hooks).

Nothing personal leaves the process: sentry-sdk's PII collection stays off, no request bodies, no
local variables of stack frames, and every event passes through :func:`scrub_event` before
it is sent: only a few harmless request headers and the user's id are kept, and the log's
own redaction (``platform.logging.redact``) masks credential-like fields and scrubs bearer
tokens, JWTs, API keys and e-mail addresses from every string, exception messages included.
"""

from __future__ import annotations

import sys
from collections.abc import MutableMapping
from typing import Any

from quantdesk import __version__
from quantdesk.platform.logging import redact
from quantdesk.settings import Settings

# Request headers that tell an engineer what kind of request failed and hold nothing personal.
KEPT_HEADERS = frozenset({"accept", "content-type", "content-length", "user-agent", "x-request-id"})


def scrub_event(event: MutableMapping[str, Any], _hint: object = None) -> dict[str, Any]:
    """Sentry's ``before_send`` (and ``before_send_transaction``): the event without PII."""
    request = event.get("request")
    if isinstance(request, dict):
        for field in ("data", "cookies", "query_string", "env"):
            request.pop(field, None)
        url = request.get("url")
        if isinstance(url, str):
            request["url"] = url.split("?", 1)[0]
        headers = request.get("headers")
        if isinstance(headers, dict):
            request["headers"] = {
                name: value for name, value in headers.items() if name.lower() in KEPT_HEADERS
            }
    user = event.get("user")
    if isinstance(user, dict):
        event["user"] = {"id": user["id"]} if "id" in user else {}
    redacted = redact(None, "", event)
    return dict(redacted)


def init_error_tracking(settings: Settings) -> bool:
    """Start the Sentry client when a DSN is configured; True when it did.

    sentry-sdk keeps one client per process (its own global): apps built in the same
    process share it, which is what a served process (one app) wants.
    """
    if settings.sentry_dsn is None or not settings.sentry_dsn.get_secret_value():
        return False
    import sentry_sdk
    from sentry_sdk.integrations.atexit import AtexitIntegration
    from sentry_sdk.integrations.dedupe import DedupeIntegration
    from sentry_sdk.integrations.excepthook import ExcepthookIntegration

    sentry_sdk.init(
        dsn=settings.sentry_dsn.get_secret_value(),
        environment=settings.sentry_environment or settings.profile.value,
        release=f"quantdesk@{__version__}",
        # send_default_pii stays at its default, off (deprecated for data_collection in
        # recent releases, whose defaults collect no PII either).
        include_local_variables=False,
        max_request_body_size="never",
        traces_sample_rate=settings.sentry_traces_sample_rate,
        before_send=scrub_event,  # type: ignore[arg-type]
        before_send_transaction=scrub_event,  # type: ignore[arg-type]
        # Flush at exit, one event per exception, crashes outside requests: nothing else.
        default_integrations=False,
        auto_enabling_integrations=False,
        integrations=[AtexitIntegration(), DedupeIntegration(), ExcepthookIntegration()],
    )
    return True


def report_unhandled(exc: BaseException, scope: MutableMapping[str, Any], request_id: str) -> None:
    """Send an unhandled request error to Sentry, when error tracking is on (else a no-op)."""
    sdk: Any = sys.modules.get("sentry_sdk")
    if sdk is None or not sdk.get_client().dsn:
        return
    route = scope.get("route")
    headers = {
        name.decode("latin-1"): value.decode("latin-1")
        for name, value in scope.get("headers", ())
        if name.decode("latin-1").lower() in KEPT_HEADERS
    }
    request = {"method": scope.get("method"), "url": scope.get("path"), "headers": headers}
    with sdk.new_scope() as error_scope:
        error_scope.set_tag("request_id", request_id)
        error_scope.set_tag("route", getattr(route, "path", None) or "<unmatched>")
        error_scope.set_context("request_info", request)

        def add_request(event: dict[str, Any], _hint: object) -> dict[str, Any]:
            event["request"] = request
            return event

        error_scope.add_event_processor(add_request)
        sdk.capture_exception(exc)
