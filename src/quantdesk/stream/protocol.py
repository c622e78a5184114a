"""The stream's wire protocol: client operations, server frames, close and error codes.

Pure: no web framework, database or settings.  ``parse_operation`` turns one client frame
into a typed operation (pydantic, so every refusal names the field); the ``*_frame``
functions build server frames as JSON text, once per event or tick however many clients
receive it.  ``docs/stream.md`` is the prose version of this module.
"""

from __future__ import annotations

import datetime as dt
from enum import IntEnum, StrEnum
from typing import Annotated, Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, field_validator

from quantdesk.marketdata.domain import make_key, parse_key


class CloseCode(IntEnum):
    """WebSocket close codes (4000-4999 are the application's, RFC 6455 section 7.4.2)."""

    NORMAL = 1000
    SERVER_RESTART = 1012  # the process is stopping: reconnect (elsewhere) and resume
    AUTH = 4001  # no, a bad, a late or a revoked credential
    FORBIDDEN = 4003  # a browser from an origin that is not allowed
    SLOW_CONSUMER = 4008  # its queue of private events overflowed: reconnect and resume
    RATE_LIMITED = 4029  # too many connections, or a flood of frames


class ErrorCode(StrEnum):
    SYNTAX = "syntax"  # not JSON, not an object, an unknown op, a bad field
    AUTH = "auth"
    FORBIDDEN = "forbidden"  # an account that is not yours (or does not exist: same answer)
    LIMITS = "limits"  # instruments per connection, connections per user, frame size
    SLOW_CLIENT = "slow_client"
    RATE = "rate"  # subscribe/unsubscribe/resume operations too fast


class Channel(StrEnum):
    TICKS = "ticks"
    ORDERS = "orders"
    FILLS = "fills"
    POSITIONS = "positions"
    ACCOUNT = "account"
    STATUS = "status"  # trading halts and resumptions (the kill switch), for everyone
    SIGNALS = "signals"  # a model's live values as bars close (signals.live), for its owner


PRIVATE_CHANNELS = frozenset({Channel.ORDERS, Channel.FILLS, Channel.POSITIONS, Channel.ACCOUNT})


class TickMode(StrEnum):
    LTP = "ltp"
    QUOTE = "quote"
    FULL = "full"


# The outbox's event types (trading.events) and the channel each is delivered on.
CHANNEL_OF_EVENT: dict[str, Channel] = {
    "order_update": Channel.ORDERS,
    "fill": Channel.FILLS,
    "position": Channel.POSITIONS,
    "account": Channel.ACCOUNT,
    "account_reset": Channel.ACCOUNT,
}
EVENT_TYPES_OF: dict[Channel, tuple[str, ...]] = {
    channel: tuple(kind for kind, c in CHANNEL_OF_EVENT.items() if c is channel)
    for channel in PRIVATE_CHANNELS
}

# Order transitions as Alpaca's trade_updates name them (docs.alpaca.markets, "Streaming
# trade updates"); trading records "accepted" for new and "fill" for both kinds of fill.
_ORDER_EVENT_NAMES = {"accepted": "new"}


def order_event_name(kind: str, status: str | None) -> str:
    if kind == "fill":
        return "partial_fill" if status == "partially_filled" else "fill"
    return _ORDER_EVENT_NAMES.get(kind, kind)


def instrument_key(text: str) -> str:
    """``EXCHANGE:SYMBOL`` in its canonical spelling, or ``ValueError``."""
    exchange, symbol = parse_key(text)
    return make_key(exchange, symbol)


class _Op(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: Annotated[str, Field(min_length=1, max_length=64)] | None = None


class AuthOp(_Op):
    op: Literal["auth"]
    ticket: Annotated[str, Field(min_length=1, max_length=128)]


class PingOp(_Op):
    op: Literal["ping"]


class Cursor(BaseModel):
    """One private subscription and where to start it (``from_seq``, inclusive)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    channel: Literal["orders", "fills", "positions", "account"]
    account_id: Annotated[str, Field(min_length=1, max_length=64)]
    from_seq: Annotated[int, Field(ge=1)] | None = None


class SubscribeOp(_Op):
    op: Literal["subscribe", "unsubscribe"]
    channel: Channel
    mode: TickMode = TickMode.QUOTE
    instruments: Annotated[list[str], Field(max_length=5000)] = Field(default_factory=list)
    account_id: Annotated[str, Field(min_length=1, max_length=64)] | None = None
    from_seq: Annotated[int, Field(ge=1)] | None = None
    model: Annotated[str, Field(min_length=1, max_length=80)] | None = None

    @field_validator("instruments")
    @classmethod
    def _canonical(cls, values: list[str]) -> list[str]:
        return list(dict.fromkeys(instrument_key(value) for value in values))

    def check(self) -> None:
        """Field combinations pydantic's types do not express."""
        if (self.model is not None) != (self.channel is Channel.SIGNALS):
            raise ValueError("model is required on signals, and taken by signals only")
        if self.channel is Channel.SIGNALS:
            if not self.instruments and self.op == "subscribe":
                raise ValueError("instruments: at least one EXCHANGE:SYMBOL")
            if self.account_id is not None or self.from_seq is not None:
                raise ValueError("signals take model and instruments, not account_id/from_seq")
        elif self.channel is Channel.STATUS:
            if self.instruments or self.account_id is not None or self.from_seq is not None:
                raise ValueError("status takes no instruments, account_id or from_seq")
        elif self.channel is Channel.TICKS:
            if not self.instruments and self.op == "subscribe":
                raise ValueError("instruments: at least one EXCHANGE:SYMBOL")
            if self.account_id is not None or self.from_seq is not None:
                raise ValueError("ticks take instruments, not account_id/from_seq")
        else:
            if self.account_id is None:
                raise ValueError(f"account_id is required on {self.channel.value}")
            if self.instruments:
                raise ValueError(f"{self.channel.value} takes account_id, not instruments")


class ResumeOp(_Op):
    op: Literal["resume"]
    cursors: Annotated[list[Cursor], Field(min_length=1, max_length=100)]


Operation = Annotated[AuthOp | PingOp | SubscribeOp | ResumeOp, Field(discriminator="op")]
_OPERATION: TypeAdapter[AuthOp | PingOp | SubscribeOp | ResumeOp] = TypeAdapter(Operation)


class ProtocolError(Exception):
    def __init__(self, code: ErrorCode, message: str, op_id: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.op_id = op_id


def parse_operation(text: str | bytes) -> AuthOp | PingOp | SubscribeOp | ResumeOp:
    """One client frame as an operation, or ``ProtocolError(SYNTAX)`` saying what is wrong."""
    try:
        document = orjson.loads(text)
    except orjson.JSONDecodeError:
        raise ProtocolError(ErrorCode.SYNTAX, "a frame must be one JSON object") from None
    if not isinstance(document, dict):
        raise ProtocolError(ErrorCode.SYNTAX, "a frame must be one JSON object")
    raw_id = document.get("id")
    op_id = raw_id if isinstance(raw_id, str) and len(raw_id) <= 64 else None
    if "op" not in document:
        raise ProtocolError(ErrorCode.SYNTAX, "missing op", op_id)
    try:
        operation = _OPERATION.validate_python(document)
        if isinstance(operation, SubscribeOp):
            operation.check()
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        where = ".".join(str(part) for part in first["loc"]) or "frame"
        raise ProtocolError(ErrorCode.SYNTAX, f"{where}: {first['msg']}", op_id) from None
    except ValueError as exc:
        raise ProtocolError(ErrorCode.SYNTAX, str(exc), op_id) from None
    return operation


# --- server frames -------------------------------------------------------------------------


def frame(document: dict[str, Any]) -> str:
    return orjson.dumps(document).decode()


def error_frame(code: ErrorCode, message: str, op_id: str | None = None) -> str:
    return frame({"type": "error", "id": op_id, "code": code.value, "message": message})


def utc_text(at: dt.datetime) -> str:
    return at.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


_LTP_FIELDS = ("last", "ts")
_QUOTE_FIELDS = ("last", "bid", "bid_size", "ask", "ask_size", "volume", "ts")


def _market_head(kind: str, instrument: str, snapshot: bool, **fields: str) -> dict[str, Any]:
    head: dict[str, Any] = {"type": kind, "instrument": instrument, **fields}
    if snapshot:
        head["snapshot"] = True
    return head


def tick_frame(quote: dict[str, Any], mode: TickMode, *, snapshot: bool = False) -> str:
    """One quote document (``marketdata.quotes.quote_document``) as a ``tick`` frame.

    ``ltp``: last price; ``quote``: top of book and volume; ``full``: everything the quote
    carries (open interest, change, previous close).  Decimals stay the exact strings they
    are on the bus."""
    document = _market_head("tick", quote["key"], snapshot, mode=mode.value)
    if mode is TickMode.FULL:
        document.update((name, value) for name, value in quote.items() if name != "key")
    else:
        names = _LTP_FIELDS if mode is TickMode.LTP else _QUOTE_FIELDS
        document.update((name, quote.get(name)) for name in names)
    return frame(document)


def depth_frame(book: dict[str, Any], *, snapshot: bool = False) -> str:
    """One order book (``kite.feed.depth_document``) as a ``depth`` frame, for ``full`` mode
    as in Kite's full mode: ``bids`` and ``asks``, best first, each level ``price``,
    ``quantity`` (the exact decimal strings they are on the bus) and ``orders``."""
    document = _market_head("depth", book["key"], snapshot)
    document.update(ts=book["ts"], bids=book["bids"], asks=book["asks"])
    return frame(document)


def private_frame(
    kind: str, account_id: str, seq: int, at: dt.datetime, payload: dict[str, Any]
) -> str:
    """The frame of one outbox event: ``order_update``, ``fill``, ``position`` or ``account``."""
    head: dict[str, Any] = {"account_id": account_id, "seq": seq, "ts": utc_text(at)}
    if kind == "order_update":
        order = payload.get("order") or {}
        return frame(
            {
                "type": "order_update",
                **head,
                "event": order_event_name(str(payload.get("event")), order.get("status")),
                "execution_id": payload.get("execution_id"),
                "reason": payload.get("reason"),
                "order": order,
            }
        )
    if kind == "fill":
        return frame({"type": "fill", **head, "fill": payload})
    if kind == "position":
        return frame({"type": "position", **head, "position": payload})
    event = "reset" if kind == "account_reset" else "update"
    return frame({"type": "account", **head, "event": event, "account": payload})


def halt_document(
    halt_id: str, scope: str, target: str | None, reason: str, at: dt.datetime | str
) -> dict[str, Any]:
    return {
        "halt_id": halt_id,
        "scope": scope,
        "target": target,
        "reason": reason,
        "at": at.replace("+00:00", "Z") if isinstance(at, str) else utc_text(at),
    }


def halts_frame(halts: list[dict[str, Any]]) -> str:
    """The ``status`` channel's snapshot, sent right after its ack: the halts in force."""
    return frame({"type": "trading_status", "halts": halts})


def halt_frame(event: str, halt: dict[str, Any]) -> str:
    """A halt put in force (``event: halted``) or lifted (``resumed``); ``at`` is when."""
    return frame({"type": "trading_halt", "event": event, **halt})
