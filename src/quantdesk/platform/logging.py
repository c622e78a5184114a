"""structlog configuration: JSON lines in prod, readable console in dev, secrets never logged.

``redact`` runs on every event before rendering: any key that names a secret (password,
token, authorization, cookie, api key, ...) is masked, and bearer tokens, JWTs and our API
keys are scrubbed from free-text values too, so a secret passed by mistake still leaves no
trace.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Mapping, MutableMapping
from typing import Any

import structlog

SENSITIVE_KEY = re.compile(
    r"pass(word|wd|phrase)?|secret|token|authori[sz]ation|cookie|api[-_]?key|apikey|otp|"
    r"totp|recovery|credential|private|signature|session[-_]?id",
    re.IGNORECASE,
)
_SECRET_IN_TEXT = re.compile(
    r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]+"
    r"|eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*"
    r"|qd_[A-Za-z0-9_-]{16,}"
    # key=value in query strings and key: value in reprs of dicts or JSON
    r"|([\"']?(?:password|passwd|token|secret|api[_-]?key|apikey|authorization|otp|code)"
    r"[\"']?\s*[:=]\s*[\"']?)[^\"'&\s,}]+"
)
MASK = "[redacted]"
# Fields structlog itself adds; never treat them as secrets.
_SAFE_KEYS = frozenset({"event", "level", "timestamp", "logger", "request_id"})


def _scrub_text(value: str) -> str:
    def replace(match: re.Match[str]) -> str:
        prefix = match.group(1) or match.group(2) or ""
        return prefix + MASK

    return _SECRET_IN_TEXT.sub(replace, value)


def _redact_value(key: str, value: Any) -> Any:
    if key not in _SAFE_KEYS and SENSITIVE_KEY.search(key):
        return MASK
    if isinstance(value, str):
        return _scrub_text(value)
    if isinstance(value, Mapping):
        return {str(k): _redact_value(str(k), v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_redact_value(key, v) for v in value]
    return value


def redact(_logger: Any, _method: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    for key in list(event.keys()):
        event[key] = _redact_value(key, event[key])
    return event


def configure_logging(level: str = "INFO", *, json: bool = False) -> None:
    """Configure structlog and the standard library (uvicorn, alembic) to share one format.

    Logging is process-wide by nature; calling this again simply reconfigures it.
    """
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        redact,
    ]
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if json
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    structlog.configure(
        processors=[
            *shared,
            structlog.processors.StackInfoRenderer(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info if json else _identity,
            renderer,
        ],
    )
    handler = _StderrHandler()
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(level.upper())
    # uvicorn's own access log would duplicate ours (and log query strings): silence it.
    logging.getLogger("uvicorn.access").handlers = []
    logging.getLogger("uvicorn.access").propagate = False
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers = []
        logging.getLogger(name).propagate = True


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is now, not to the one present at configuration time
    (test runners and daemonisers swap it)."""

    def __init__(self) -> None:
        super().__init__()

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, _value: Any) -> None:
        return


def _identity(_logger: Any, _method: str, event: MutableMapping[str, Any]) -> Any:
    return event


def get_logger(name: str) -> Any:
    return structlog.get_logger(name)
