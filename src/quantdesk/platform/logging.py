"""structlog configuration: JSON lines in prod, readable console in dev, secrets never logged.

What a log line may hold (docs/security.md, "What is logged"): the fields we pass, never
frame locals, headers, request bodies or settings values.  Three steps make sure of it:

- exceptions are rendered into the event *before* redaction, and without locals: structlog's
  defaults (``dict_tracebacks`` in JSON, rich tracebacks in the console) print every frame's
  local variables, and rendered after ``redact`` they carried passwords, JWTs, API keys and
  ``QUANTDESK_SECRET_KEY`` straight into the log (issue 20);
- ``redact`` then masks any key that names a secret (password, token, authorization, cookie,
  api key, ...) and scrubs bearer tokens, JWTs, our API keys and e-mail addresses from
  free-text values, the rendered traceback included;
- the rendered line is scrubbed once more for tokens, keys and e-mail addresses, so a
  renderer or a third-party logger that formats something we did not foresee still leaves
  no credential behind.
"""

from __future__ import annotations

import asyncio
import logging
import re
import sys
import time
from collections.abc import Mapping, MutableMapping
from contextvars import ContextVar
from typing import Any

import orjson
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
    # e-mail addresses are personal data: user ids are logged instead.
    r"|[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}"
    # key=value in query strings and key: value in reprs of dicts or JSON
    r"|([\"']?(?:password|passwd|token|secret|api[_-]?key|apikey|authorization|otp|code)"
    r"[\"']?\s*[:=]\s*[\"']?)[^\"'&\s,}]+"
)
MASK = "[redacted]"
# Fields we fill ourselves with values that cannot hold a secret: skipping them keeps the
# per-request cost of redaction low.  "event" is not among them: stdlib messages land there.
_SAFE_KEYS = frozenset(
    {
        "level",
        "timestamp",
        "logger",
        "request_id",
        "method",
        "route",
        "status",
        "duration_ms",
        "client",
    }
)


# The final pass over a rendered line: only what is recognisable on its own (no key=value
# rule, which would turn a JSON number into bare text and break the line).
_CREDENTIAL_IN_LINE = re.compile(
    r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]+"
    r"|eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*"
    r"|qd_[A-Za-z0-9_-]{16,}"
    r"|[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}"
)


def _may_hold_secret(text: str) -> bool:
    """False only when ``_SECRET_IN_TEXT`` cannot match: every alternative needs one of these."""
    lowered = text.lower()
    return (
        "=" in text
        or ":" in text
        or "@" in text
        or "eyj" in lowered
        or "qd_" in lowered
        or "bearer" in lowered
    )


def _scrub_text(value: str) -> str:
    def replace(match: re.Match[str]) -> str:
        prefix = match.group(1) or match.group(2) or ""
        return prefix + MASK

    return _SECRET_IN_TEXT.sub(replace, value)


def _redact_value(key: str, value: Any) -> Any:
    if key in _SAFE_KEYS:
        return value
    if SENSITIVE_KEY.search(key):
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


def _scrub_line(text: str) -> str:
    def replace(match: re.Match[str]) -> str:
        return (match.group(1) or "") + MASK

    return _CREDENTIAL_IN_LINE.sub(replace, text)


class _ScrubbedRenderer:
    """The renderer, followed by the last pass over the rendered line (see the docstring)."""

    def __init__(self, renderer: Any) -> None:
        self._renderer = renderer

    def __call__(self, logger: Any, method: str, event: MutableMapping[str, Any]) -> str:
        rendered = self._renderer(logger, method, event)
        text = rendered if isinstance(rendered, str) else bytes(rendered).decode()
        return _scrub_line(text)


def _exception_renderer(*, json: bool) -> Any:
    """Exceptions as data without locals: frames (file, line, function) and the message.

    JSON logs keep structlog's structured traceback, with ``show_locals`` off; the console
    gets the standard library's plain traceback text, which never shows locals either.
    Either way the result is an ordinary ``exception`` field that ``redact`` goes over.
    """
    if json:
        return structlog.processors.ExceptionRenderer(
            structlog.tracebacks.ExceptionDictTransformer(show_locals=False)
        )
    return structlog.processors.format_exc_info


def configure_logging(level: str = "INFO", *, json: bool = False) -> None:
    """Configure structlog and the standard library (uvicorn, alembic) to share one format.

    quantdesk's own events go through structlog's native pipeline: level filtering before any
    processing, orjson rendering, one write per event.  That keeps the per-request access log
    cheap enough for the HTTP stack to stay close to a bare app.  Third-party stdlib logging is
    rendered by the same processors through ``ProcessorFormatter``.  Logging is process-wide
    by nature; calling this again simply reconfigures it.
    """
    numeric_level = logging.getLevelName(level.upper())
    if not isinstance(numeric_level, int):
        raise ValueError(f"unknown log level {level!r}")
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        _add_request_id,
        structlog.processors.add_log_level,
        _add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: Any = (
        structlog.processors.JSONRenderer(serializer=_orjson_dumps)
        if json
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    # Order matters: everything that turns objects into text (stack, exception) runs before
    # redaction, so redaction sees what will be written.
    finish: list[Any] = [
        structlog.processors.StackInfoRenderer(),
        _exception_renderer(json=json),
        redact,
        _ScrubbedRenderer(renderer),
    ]
    structlog.configure(
        processors=[*shared, *finish],
        logger_factory=_StderrLogger,
        wrapper_class=structlog.make_filtering_bound_logger(numeric_level),
        cache_logger_on_first_use=False,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[structlog.stdlib.add_logger_name, *shared],
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *finish],
    )
    handler = _StderrHandler()
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(numeric_level)
    # uvicorn's own access log would duplicate ours (and log query strings): silence it.
    logging.getLogger("uvicorn.access").handlers = []
    logging.getLogger("uvicorn.access").propagate = False
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers = []
        logging.getLogger(name).propagate = True


REQUEST_ID: ContextVar[str | None] = ContextVar("quantdesk_request_id", default=None)
"""The current request's id, set by the HTTP middleware and put on every log event.

A plain ``ContextVar`` rather than ``structlog.contextvars.bind_contextvars``: it is set on
every request, and binding cost five times as much.  Each request runs in its own task with a
copy of the context, so a value never leaks into another request."""


def _add_request_id(
    _logger: Any, _method: str, event: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    if "request_id" not in event:
        request_id = REQUEST_ID.get()
        if request_id is not None:
            event["request_id"] = request_id
    return event


def _orjson_dumps(event: Any, **_kwargs: Any) -> str:
    return orjson.dumps(event, default=str).decode()


class _StderrLogger:
    """structlog's output: one line to whatever ``sys.stderr`` is at write time (test
    runners and daemonisers swap it), named so events carry their logger."""

    def __init__(self, name: str = "quantdesk", *_args: Any) -> None:
        self.name = name

    def msg(self, message: str) -> None:
        sys.stderr.write(message + "\n")

    log = debug = info = warn = warning = error = critical = exception = fatal = msg


def _add_logger_name(
    logger: Any, _method: str, event: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    name = getattr(logger, "name", None)
    if name and "logger" not in event:
        event["logger"] = name
    return event


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """The stdlib twin of ``_StderrLogger``: resolves ``sys.stderr`` at write time."""

    def __init__(self) -> None:
        super().__init__()

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, _value: Any) -> None:
        return


def get_logger(name: str) -> Any:
    return structlog.get_logger(name)


ACCESS_LOG_FLUSH_INTERVAL_S = 0.5
ACCESS_LOG_BUFFER_BYTES = 64 * 1024


class AccessLog:
    """The per-request access-log writer.

    In JSON mode (prod) lines are written in batches, like nginx's ``access_log … buffer=
    flush=``: when 64 KiB are waiting, half a second after the first of them, and on shutdown
    (``flush``).  A write per request was a system call per request, and a full log pipe
    would block the event loop.  A process killed with SIGKILL loses at most the last half
    second of access lines; other log events are never buffered.  This runs once per request,
    so it skips structlog's processor chain: every field is one the HTTP middleware fills
    itself (only ``path`` carries user text, and it is scrubbed like any other value).

    In console mode (dev) structlog renders each line at once, for people watching a terminal.
    """

    def __init__(
        self,
        level: str,
        *,
        json: bool,
        flush_interval_s: float = ACCESS_LOG_FLUSH_INTERVAL_S,
        buffer_bytes: int = ACCESS_LOG_BUFFER_BYTES,
    ) -> None:
        self.enabled = logging.getLevelName(level.upper()) <= logging.INFO
        self.flush_interval_s = flush_interval_s
        self.buffer_bytes = buffer_bytes
        self._console = None if json else structlog.get_logger("quantdesk.access")
        self._clock = UtcClock()
        # One growing buffer rather than a list of lines: a list kept every line's bytes
        # object alive until the flush, and those scattered allocations made the JSON
        # encoding of a line cost twice as much.
        self._buffer = bytearray()
        self._timer: asyncio.TimerHandle | None = None

    def write(
        self,
        *,
        request_id: str,
        method: str,
        route: str,
        path: str,
        status: int,
        seconds: float,
        client: str | None,
        user_id: str | None,
    ) -> None:
        if not self.enabled:
            return
        duration_ms = int(seconds * 1_000_000) / 1000
        if self._console is not None:
            self._console.info(
                "request",
                request_id=request_id,
                method=method,
                route=route,
                path=path,
                status=status,
                duration_ms=duration_ms,
                client=client,
                user_id=user_id,
            )
            return
        # A path equal to its route template is our own text, which holds no secret.
        if path != route and _may_hold_secret(path):
            path = _scrub_text(path)
        fields = {
            "event": "request",
            "level": "info",
            "logger": "quantdesk.access",
            "timestamp": self._clock.now(),
            "request_id": request_id,
            "method": method,
            "route": route,
            "path": path,
            "status": status,
            "duration_ms": duration_ms,
            "client": client,
        }
        if user_id is not None:
            fields["user_id"] = user_id
        self._buffer += orjson.dumps(fields, option=orjson.OPT_APPEND_NEWLINE)
        if len(self._buffer) >= self.buffer_bytes:
            self.flush()
        elif self._timer is None:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                self.flush()
                return
            self._timer = loop.call_later(self.flush_interval_s, self.flush)

    def flush(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if not self._buffer:
            return
        text = self._buffer.decode()
        self._buffer.clear()
        sys.stderr.write(text)


class UtcClock:
    """ISO 8601 UTC timestamps with microseconds, as structlog's ``TimeStamper`` writes them.

    The date and time of day are formatted once per second; the access log asks for a
    timestamp on every request, and ``datetime.isoformat`` was a tenth of its cost.
    """

    def __init__(self) -> None:
        self._second = -1
        self._prefix = ""

    def now(self) -> str:
        second, fraction_ns = divmod(time.time_ns(), 1_000_000_000)
        if second != self._second:
            self._prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
            self._second = second
        return "%s.%06dZ" % (self._prefix, fraction_ns // 1000)  # noqa: UP031 - faster here
